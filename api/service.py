"""Use cases: load a run's stream, let the state machine decide, append with the expected version.

No aiohttp here: the HTTP handlers translate requests into commands and outcomes into answers,
so these functions are tested against a real database without HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from api.clock import Clock
from api.run_locks import RunLocks
from api.stream_cache import StreamCache
from eventstore import (
    ANY,
    NO_STREAM,
    EventStore,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    WrongExpectedVersion,
)
from statemachine import (
    ApplyApifyWebhook,
    Command,
    Event,
    KickoffRun,
    RejectionReason,
    RunState,
    UpdateRejected,
    decide,
    decode,
    delivery_event_id,
    encode,
    kickoff_event_id,
    replay,
    results_event_id,
    run_stream,
    stream_for,
)

_log = logging.getLogger(__name__)

DEAD_LETTER_STREAM = "dead-letters"
DEAD_LETTER_TYPE = "DeliveryDeadLettered"
_DEAD_LETTER_NAMESPACE = uuid.UUID("0b7f4f0e-2d55-5d7e-9a61-3c1c8c0b9d42")

# Commands on one run are serialised inside the process (see RunLocks), so conflicts come only
# from other processes; a few retries absorb them.
MAX_ATTEMPTS = 12
DEFAULT_CACHED_RUNS = 20_000
"""Runs whose streams stay in memory between commands (a few kB each; see StreamCache)."""


RecordedHook = Callable[[str, "RejectionReason | None"], None]


def _ignore_recorded(event_type: str, reason: RejectionReason | None) -> None:
    """The default `on_recorded`: nobody is counting."""


class RunContendedError(Exception):
    """Other processes wrote the run at every attempt: nothing was recorded, try again."""


def _retry_pause_s(attempt: int) -> float:
    """Full jitter over a doubling ceiling (1 ms, 2 ms, … capped at 50 ms): spreads retries."""
    return random.uniform(0, min(0.001 * 2 ** (attempt - 1), 0.05))  # noqa: S311 — not a secret


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What a command did to its run: the outcome, the event and where it is in the log."""

    outcome: Outcome
    run_id: str
    position: int
    event_type: str
    reason: RejectionReason | None
    state: RunState | None
    """The run after the command (None when the run does not exist)."""
    version: int
    """The run stream's version after the command (0 when the run does not exist)."""

    def record(self) -> dict[str, Any] | None:
        if self.state is None:
            return None
        return {**self.state.to_record(), "version": self.version}


def fingerprint(value: Any) -> str:
    """A stable digest of a JSON value (keys sorted), naming a request that has no key."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def command_event_id(command: Command) -> uuid.UUID:
    """The id the command's outcome gets on the run stream: how a repeat is recognised."""
    if isinstance(command, KickoffRun):
        return kickoff_event_id(command.run_id, command.request_key)
    if isinstance(command, ApplyApifyWebhook):
        return delivery_event_id(command.delivery.delivery_key)
    return results_event_id(command.run_id, command.request_key)


class RunService:
    """The three commands and the dead-letter record, on top of the event store."""

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        *,
        cached_runs: int = DEFAULT_CACHED_RUNS,
        on_recorded: RecordedHook = _ignore_recorded,
    ) -> None:
        """`cached_runs`: how many runs' streams are kept in memory between commands (0: none);
        `on_recorded(event_type, rejection_reason)` hears of every event this service appends
        (a repeat appends none), for the metrics."""
        self._store = store
        self._clock = clock
        self._on_recorded = on_recorded
        self._locks = RunLocks()
        self._streams = StreamCache(cached_runs)

    async def execute(self, command: Command) -> Decision:
        """Decide and record `command`; retry when another process wrote the run meanwhile."""
        async with self._locks.hold(command.run_id):
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    # The first attempt may trust the cache; a retry reads the stream again.
                    decision = await self._execute_once(command, cached=attempt == 1)
                    if decision.outcome is not Outcome.DUPLICATE:
                        self._on_recorded(decision.event_type, decision.reason)
                    return decision
                except WrongExpectedVersion:
                    if attempt == MAX_ATTEMPTS:
                        raise RunContendedError(
                            f"run {command.run_id} kept changing in another process while this "
                            f"command was decided ({MAX_ATTEMPTS} attempts); retry shortly"
                        ) from None
                    if attempt > 1 or not isinstance(command, KickoffRun):  # see above
                        _log.info(
                            "run changed while deciding; retrying",
                            extra={"run_id": command.run_id, "attempt": attempt},
                        )
                        # Two processes taking turns on one run would otherwise collide again
                        # and again in lockstep: a random, growing pause lets one slip through.
                        await asyncio.sleep(_retry_pause_s(attempt))
                except BaseException:
                    # The append may have been written or not (a lost connection, a timeout,
                    # a cancellation): forget the run, the next command reads it afresh.
                    self._streams.forget(command.run_id)
                    raise
        raise AssertionError("unreachable")

    async def _execute_once(self, command: Command, *, cached: bool) -> Decision:
        stream = run_stream(command.run_id)
        known = self._streams.get(command.run_id) if cached else None
        if known is not None:
            history = known
        elif cached and isinstance(command, KickoffRun):
            # A kickoff is nearly always for a new run: decide on an empty stream and let the
            # append's NO_STREAM check it; a run that exists fails it and the retry reads.
            history = []
        else:
            self._streams.forget(command.run_id)
            history = await self._history(stream)
            if history:
                self._streams.put(command.run_id, history)
        recorded = len(history)
        events = decide(history, command, now=self._clock())
        if not events:
            if known is not None and await self._store.stream_version(stream) != recorded:
                # A repeat appends nothing, so no expected version would catch a cached
                # history that another process has moved on: its answer (the run record)
                # would be stale. Repeats are rare; read the run again.
                self._streams.forget(command.run_id)
                return await self._execute_once(command, cached=False)
            # Histories only grow: an event id seen in a cached one is in the log.
            return await self._repeat(command, history, recorded)
        [event] = events  # every command yields exactly one event, or none for a repeat
        target = stream_for(event)
        expected: ExpectedVersion = ANY
        if target == stream:
            # Also what keeps the cache honest: had another process written the run since,
            # this append fails with WrongExpectedVersion and the retry reads the stream.
            expected = recorded if recorded else NO_STREAM
        event_type, data = encode(event)
        result = await self._store.append(
            target,
            [NewEvent(event_id=event.event_id, type=event_type, data=data)],
            expected_version=expected,
        )
        on_run = target == stream
        state = replay([*history, event]) if on_run else replay(history)
        version = recorded + (1 if on_run and not result.was_duplicate else 0)
        if result.was_duplicate and on_run:
            # The event was stored already (an identical command raced us into the same batch,
            # or a kickoff repeated after its run left the cache): answer as its repeat.
            self._streams.forget(command.run_id)
            fresh = await self._history(stream)
            return await self._repeat(command, fresh, len(fresh))
        if on_run:
            self._streams.put(command.run_id, [*history, event])
        return _decision(event, result.last_position, state, version)

    async def _history(self, stream: str) -> list[Event]:
        return [decode(r.event_id, r.type, r.data) for r in await self._store.read_stream(stream)]

    async def _repeat(self, command: Command, history: list[Event], version: int) -> Decision:
        """The answer to a command seen before: its original event, found by its id."""
        event_id = command_event_id(command)
        [original] = await self._store.find_events([event_id])
        event = decode(original.event_id, original.type, original.data)
        state = replay(history)
        return _as_repeat(_decision(event, original.position, state, version))

    async def dead_letter(
        self,
        *,
        reason: str,
        message: str,
        body: bytes,
        parsed: Any,
        headers: Mapping[str, str],
        details: Any = None,
    ) -> int:
        """Keep an authenticated delivery that could not be understood; return its position.

        The same bytes with the same dispatch id are kept once (Apify retries a 422 too).
        """
        dispatch = headers.get("X-Apify-Webhook-Dispatch-Id", "")
        event_id = uuid.uuid5(
            _DEAD_LETTER_NAMESPACE, f"{dispatch}|{hashlib.sha256(body).hexdigest()}"
        )
        data = {
            "reason": reason,
            "message": message,
            "details": details,
            "headers": dict(headers),
            "received_at": self._clock().isoformat(),
            **_body_fields(body, parsed),
        }
        result = await self._store.append(
            DEAD_LETTER_STREAM,
            [NewEvent(event_id=event_id, type=DEAD_LETTER_TYPE, data=data)],
            expected_version=ANY,
        )
        if not result.was_duplicate:
            self._on_recorded(DEAD_LETTER_TYPE, None)
        return result.last_position


def _body_fields(body: bytes, parsed: Any) -> dict[str, Any]:
    """The body as JSON when jsonb can hold it, else its exact bytes in base64."""
    if parsed is not None and b"\\u0000" not in body:
        return {"body": parsed}
    return {
        "body": None,
        "body_base64": base64.b64encode(body).decode(),
        "body_preview": body[:512].decode("utf-8", "replace").replace("\x00", "\ufffd"),
    }


def _decision(event: Event, position: int, state: RunState | None, version: int) -> Decision:
    if isinstance(event, UpdateRejected):
        outcome, reason = Outcome.REJECTED, event.reason
    else:
        outcome, reason = Outcome.APPLIED, None
    return Decision(
        outcome=outcome,
        run_id=event.run_id,
        position=position,
        event_type=type(event).__name__,
        reason=reason,
        state=state,
        version=version if state is not None else 0,
    )


def _as_repeat(decision: Decision) -> Decision:
    """The same decision, as the answer to a repeat (the reason, if any, is kept)."""
    return Decision(
        outcome=Outcome.DUPLICATE,
        run_id=decision.run_id,
        position=decision.position,
        event_type=decision.event_type,
        reason=decision.reason,
        state=decision.state,
        version=decision.version,
    )


def recorded_to_json(event: RecordedEvent) -> dict[str, Any]:
    """An event as the API shows it (`GET /runs/{id}/events`)."""
    return {
        "position": event.position,
        "stream": event.stream_id,
        "version": event.version,
        "event_id": str(event.event_id),
        "type": event.type,
        "data": event.data,
        "metadata": event.metadata,
        "recorded_at": event.recorded_at.isoformat(),
    }

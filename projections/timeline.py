"""A run's timeline: its stream and its orphan stream, in log order, folded step by step.

Each stored event becomes one step: where it is in the log, what caused it (the kickoff, the
Apify delivery, the results report), the state before and after, and for a rejection why and
what was received. The fold is `statemachine.evolve`, the code that decided the events, so the
timeline shows what the service itself concluded. Orphan-stream events (updates rejected with
`missing_run_record` because they arrived before the kickoff) are shown in their place but are
not part of the run's history: they change nothing, and are never given to `evolve` (which
would count them).

`build_timeline` is pure (stored events in, steps out); `read_timeline` reads the two streams.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventstore import EventStore, RecordedEvent
from projections.causes import Cause, cause_of
from statemachine import (
    CorruptHistory,
    Event,
    RunState,
    RunStatus,
    UpdateRejected,
    decode,
    evolve,
    orphan_stream,
    run_stream,
)


class InvalidAsOfError(ValueError):
    """An `as_of` that is neither a log position nor an ISO 8601 time with a zone."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AsOf:
    """Where a timeline stops: at a log position, or at a recording time (inclusive)."""

    position: int | None = None
    time: datetime | None = None

    def includes(self, event: RecordedEvent) -> bool:
        if self.position is not None:
            return event.position <= self.position
        assert self.time is not None
        return event.recorded_at <= self.time

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "time": None if self.time is None else self.time.isoformat(),
        }


def parse_as_of(text: str) -> AsOf:
    """`42` (a position) or `2026-03-14T09:00:05+00:00` (a time with its zone)."""
    given = text.strip()
    if given.isascii() and given.isdigit():  # isdigit() alone accepts "²", which int() refuses
        if len(given) > 18:
            raise InvalidAsOfError(f"as_of position {given} is out of range")
        return AsOf(position=int(given))
    try:
        moment = datetime.fromisoformat(given)
    except ValueError:
        raise InvalidAsOfError(
            f"as_of {text!r} is neither a log position (a whole number) nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        raise InvalidAsOfError(f"as_of {text!r} has no time zone (add Z or +00:00)")
    return AsOf(time=moment)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    reason: str
    message: str
    received: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One stored event and what it did to the run."""

    position: int
    recorded_at: datetime
    stream: str
    version: int
    event_id: str
    type: str
    at: datetime
    """The moment the service decided it (the `now` given to `decide`)."""
    in_history: bool
    """False for an orphan-stream event: shown, but not folded."""
    cause: Cause
    status_before: str | None
    status_after: str | None
    changes: Mapping[str, tuple[Any, Any]]
    """Each run-record field the event changed: (before, after), JSON-ready."""
    rejection: Rejection | None
    error: str | None = None
    """Why the event could not be read or folded (a corrupt history); the state is unchanged."""

    def to_json(self) -> dict[str, Any]:
        rejection = self.rejection
        return {
            "position": self.position,
            "recorded_at": self.recorded_at.isoformat(),
            "stream": self.stream,
            "version": self.version,
            "event_id": self.event_id,
            "type": self.type,
            "at": self.at.isoformat(),
            "in_history": self.in_history,
            "cause": self.cause.to_json(),
            "status_before": self.status_before,
            "status_after": self.status_after,
            "changes": {name: list(pair) for name, pair in self.changes.items()},
            "rejection": None
            if rejection is None
            else {
                "reason": rejection.reason,
                "message": rejection.message,
                "received": rejection.received,
            },
            "error": self.error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """A run's steps up to `as_of`, and its record as it was then (None before its kickoff)."""

    run_id: str
    as_of: AsOf | None
    steps: tuple[Step, ...]
    state: RunState | None
    version: int
    """The run stream's version after the last step shown (0 before the kickoff)."""

    def record(self) -> dict[str, Any] | None:
        """The run record as of then, in the shape of GET /runs/{run_id}."""
        if self.state is None:
            return None
        return {**self.state.to_record(), "version": self.version}

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": None if self.as_of is None else self.as_of.to_json(),
            "steps": [step.to_json() for step in self.steps],
            "state": self.record(),
        }


def build_timeline(
    run_id: str, recorded: Sequence[RecordedEvent], *, as_of: AsOf | None = None
) -> Timeline:
    """Fold the run's and its orphan stream's stored events (in log order) into steps.

    An event that cannot be read or cannot follow the ones before (a corrupt history, which
    `decide` never writes) becomes a step with its `error`, and leaves the state as it was.
    """
    own = run_stream(run_id)
    state: RunState | None = None
    version = 0
    steps: list[Step] = []
    for stored in recorded:
        if as_of is not None and not as_of.includes(stored):
            continue  # not `break`: recording times need not rise exactly with positions
        in_history = stored.stream_id == own
        try:
            event = decode(stored.event_id, stored.type, stored.data)
        except CorruptHistory as err:
            steps.append(_unreadable(stored, in_history, state, str(err)))
            continue
        before, error = state, None
        if in_history:
            try:
                state = evolve(state, event)
            except CorruptHistory as err:
                error = str(err)
            else:
                version = stored.version
        step = _step(stored, event, in_history, before, state)
        steps.append(step if error is None else _with_error(step, error))
    return Timeline(run_id=run_id, as_of=as_of, steps=tuple(steps), state=state, version=version)


async def read_timeline(
    store: EventStore, run_id: str, *, as_of: AsOf | None = None
) -> Timeline | None:
    """The run's timeline; None when neither of its streams holds any event."""
    recorded = await store.read_streams([run_stream(run_id), orphan_stream(run_id)])
    if not recorded:
        return None
    return build_timeline(run_id, recorded, as_of=as_of)


def _step(
    stored: RecordedEvent,
    event: Event,
    in_history: bool,
    before: RunState | None,
    after: RunState | None,
) -> Step:
    rejection = None
    if isinstance(event, UpdateRejected):
        rejection = Rejection(
            reason=event.reason.value, message=event.message, received=event.received
        )
    return Step(
        position=stored.position,
        recorded_at=stored.recorded_at,
        stream=stored.stream_id,
        version=stored.version,
        event_id=str(stored.event_id),
        type=stored.type,
        at=event.at,
        in_history=in_history,
        cause=cause_of(event),
        status_before=None if before is None else before.status.value,
        status_after=None if after is None else after.status.value,
        changes=_changes(before, after) if in_history and after is not None else {},
        rejection=rejection,
    )


def _unreadable(
    stored: RecordedEvent, in_history: bool, state: RunState | None, error: str
) -> Step:
    status = None if state is None else state.status.value
    return Step(
        position=stored.position, recorded_at=stored.recorded_at, stream=stored.stream_id,
        version=stored.version, event_id=str(stored.event_id), type=stored.type,
        at=stored.recorded_at, in_history=in_history, cause=Cause(command="unknown"),
        status_before=status, status_after=status, changes={}, rejection=None, error=error,
    )  # fmt: skip


def _with_error(step: Step, error: str) -> Step:
    return dataclasses.replace(step, status_after=step.status_before, changes={}, error=error)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _status(status: RunStatus) -> str:
    return status.value


def _metrics(metrics: tuple[tuple[str, float], ...]) -> dict[str, float]:
    return dict(metrics)


# The run record's fields (RunState.to_record's keys, in its order) and how each becomes JSON.
# Steps compare the states field by field and convert only what changed: to_record() for
# every step would be most of a replay's time.
RECORD_FIELDS: tuple[tuple[str, Callable[[Any], Any] | None], ...] = (
    ("run_id", None), ("client_id", None), ("actor_id", None), ("task_id", None),
    ("status", _status), ("apify_status", None), ("status_message", None),
    ("created_at", _iso), ("started_at", _iso), ("finished_at", _iso), ("duration_s", None),
    ("dataset_id", None), ("usage_usd", None), ("resurrect_count", None),
    ("metrics", _metrics), ("event_count", None), ("updated_at", _iso),
)  # fmt: skip


_NAMES = tuple(name for name, _ in RECORD_FIELDS)
_CONVERTERS = tuple(convert for _, convert in RECORD_FIELDS)
_values = operator.attrgetter(*_NAMES)  # one C call for all 17 fields


def _changes(before: RunState | None, after: RunState) -> dict[str, tuple[Any, Any]]:
    """The record fields whose value differs (JSON-ready); at the creation, those with one."""
    new_values = _values(after)
    if before is None:
        return {
            name: (None, new if convert is None else convert(new))
            for name, convert, new in zip(_NAMES, _CONVERTERS, new_values, strict=True)
            if new is not None
        }
    return {
        name: (old, new) if convert is None else (convert(old), convert(new))
        for name, convert, old, new in zip(
            _NAMES, _CONVERTERS, _values(before), new_values, strict=True
        )
        if old is not new and old != new
    }

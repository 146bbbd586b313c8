"""The log folded run by run, and a folded run compared with its `run_records` row.

Pure (no I/O): `check` feeds it pages of the log and reads the differences. Kept lean in
memory, ~1 KiB a run, because a check holds every run of the log at once.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

import orjson

from eventstore import RecordedEvent
from projections.run_records import state_from_row
from statemachine import (
    CorruptHistory,
    Event,
    RunCreated,
    RunState,
    decode,
    evolve,
    kickoff_event_id,
    orphan_stream,
    run_stream,
)

_RUN_PREFIX = run_stream("")
_ORPHAN_PREFIX = orphan_stream("")
_STATE_FIELDS = tuple(f.name for f in fields(RunState))


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One disagreement: which run (None for the log as a whole), which field, both sides."""

    run_id: str | None
    field: str
    log: str
    projection: str

    def __str__(self) -> str:
        where = f"run {self.run_id}" if self.run_id is not None else "log"
        return f"{where}: {self.field}: log says {self.log}, projection says {self.projection}"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "field": self.field,
            "log": self.log,
            "projection": self.projection,
        }


def show(value: Any) -> str:
    """A value as JSON text, the way differences print it."""
    if isinstance(value, _Json):
        return value.text
    if isinstance(value, tuple) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        value = dict(value)  # metrics
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_NO_INPUT: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class _Json:
    """Text that is JSON already (shown as it is)."""

    text: str


@dataclass(slots=True)
class Folded:
    """One run as the log makes it, kept lean: its input as canonical JSON, not as objects."""

    state: RunState
    """The folded state, with `input` replaced by an empty mapping (see `input_json`)."""
    input_json: str
    version: int
    position: int


def _lean(created: RunState) -> tuple[RunState, str]:
    """The first state of a run, made smaller for the long wait until the comparison.

    A run's input is ~650 bytes of Python objects and ~150 of JSON text; the client, actor and
    requester names repeat across runs, so one copy of each is enough. `evolve` carries these
    fields over unchanged, so this is done once per run. Worth ~40 % of the fold's memory.
    """
    input_json = _canonical(created.input)
    lean = dataclasses.replace(
        created,
        client_id=sys.intern(created.client_id),
        actor_id=_intern(created.actor_id),
        requested_by=_intern(created.requested_by),
        input=_NO_INPUT,
    )
    return lean, input_json


def _canonical(value: Any) -> str:
    """JSON text with sorted keys: equal for equal objects (jsonb keeps numbers as written).

    A str, not orjson's bytes: those keep orjson's 4 KiB buffer (measured), a str its length.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


class LogFold:
    """The log folded run by run, with the problems of its streams.

    Pure: feed it pages of stored events in log order, then read `runs`, `orphans` and
    `differences`. Events above `fold_up_to` are only checked for how their streams begin.
    """

    def __init__(self, *, fold_up_to: int) -> None:
        self.fold_up_to = fold_up_to
        self.runs: dict[str, Folded] = {}
        self.orphans: dict[str, int] = {}
        """Each orphan stream's run id and the position of its first event."""
        self.broken: set[str] = set()
        self.differences: list[Difference] = []
        self.events = 0
        self._begun: set[str] = set()

    def feed(self, page: Iterable[RecordedEvent]) -> None:
        for stored in page:
            self.events += 1
            stream = stored.stream_id
            if stream.startswith(_RUN_PREFIX):
                self._run_event(stream[len(_RUN_PREFIX) :], stored)
            elif stream.startswith(_ORPHAN_PREFIX):
                self.orphans.setdefault(stream[len(_ORPHAN_PREFIX) :], stored.position)

    def _run_event(self, run_id: str, stored: RecordedEvent) -> None:
        if run_id in self.broken:
            return
        event: Event | None = None
        if run_id not in self._begun:
            self._begun.add(run_id)
            event = self._first_event(run_id, stored)
            if event is None:
                return
        if stored.position > self.fold_up_to:
            return
        folded = self.runs.get(run_id)
        try:
            if event is None:
                event = decode(stored.event_id, stored.type, stored.data)
            state = evolve(None if folded is None else folded.state, event)
        except CorruptHistory as err:
            self._break(run_id, "history", f"{err} (position {stored.position})", "-")
            return
        if folded is None:
            lean, input_json = _lean(state)
            self.runs[run_id] = Folded(lean, input_json, stored.version, stored.position)
        else:
            folded.state, folded.version, folded.position = state, stored.version, stored.position

    def _first_event(self, run_id: str, first: RecordedEvent) -> RunCreated | None:
        """The stream's first event if it is a kickoff's RunCreated for this run at version 1;
        else None, and the stream is reported and left out."""
        problem, event = None, None
        if first.type != RunCreated.__name__:
            problem = f"{first.type} at version {first.version}"
        elif first.version != 1:
            problem = f"RunCreated at version {first.version}"
        else:
            try:
                event = decode(first.event_id, first.type, first.data)
            except CorruptHistory as err:
                problem = f"an unreadable RunCreated ({err})"
            else:
                assert isinstance(event, RunCreated)
                if event.run_id != run_id:
                    problem = f"RunCreated of run {event.run_id}"
                elif event.event_id != kickoff_event_id(run_id, event.request_key):
                    problem = "a RunCreated that no kickoff decided (its event id is not the "
                    problem += "kickoff's)"
        if problem is not None:
            self._break(run_id, "first_event", f"{problem}, not a kickoff's RunCreated", "-")
            return None
        assert isinstance(event, RunCreated)
        return event

    def _break(self, run_id: str, field: str, log: str, projection: str) -> None:
        self.broken.add(run_id)
        self.runs.pop(run_id, None)
        self.differences.append(
            Difference(run_id=run_id, field=field, log=log, projection=projection)
        )


def compare_record(folded: Folded, row: Any) -> list[Difference]:
    """Each field where a run_records row differs from the folded run."""
    state = folded.state
    run_id = state.run_id
    try:
        projected = state_from_row(row)
    except (KeyError, TypeError, ValueError) as err:
        unreadable = f"an unreadable row ({err})"
        return [
            Difference(run_id=run_id, field="record", log="a run record", projection=unreadable)
        ]
    pairs = [
        (name, _Json(folded.input_json), _Json(_canonical(projected.input)))
        if name == "input"
        else (name, getattr(state, name), getattr(projected, name))
        for name in _STATE_FIELDS
    ]
    pairs += [
        ("version", folded.version, row["version"]),
        ("last_position", folded.position, row["last_position"]),
    ]
    return [
        Difference(run_id=run_id, field=name, log=show(ours), projection=show(theirs))
        for name, ours, theirs in pairs
        if ours != theirs
    ]

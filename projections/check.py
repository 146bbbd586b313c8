"""The consistency check: replay every run from the log and compare it with `run_records`.

What it checks:
- every run's record: each field of its folded state, the stream version and the last
  position, against its `run_records` row (a row for no run, or a run with no row, too);
- every run stream begins with `RunCreated` at version 1, decided from a kickoff (its event id
  is the one `kickoff_event_id` gives its request key), for the run the stream is named after;
- every orphan stream's run id has a `missing_records` row (when that table exists);
- no projection checkpoint is ahead of the log head.

A consistent cut while the service keeps writing: the projection rows and checkpoints are read
in one REPEATABLE READ snapshot, and the log is folded only up to the run_records checkpoint of
that snapshot. The log itself can be read on other connections: positions are handed out in
commit order (the store's ordering lock), so every event at or below a position that a
committed checkpoint names is committed, and events never change.

The fold keeps one (state, version, position) per run in memory, ~1 KiB a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

import asyncpg
import orjson

from eventstore import EventStore, RecordedEvent
from eventstore.pool import Connection
from projections import checkpoints
from projections.errors import ProjectionRebuiltDuringCheckError
from projections.rebuild import cyclic_gc_paused
from projections.registry import all_projections
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

RUN_RECORDS = "run_records"
MISSING_RECORDS = "missing_records"
PAGE_SIZE = 5000
_RUN_PREFIX = run_stream("")
_ORPHAN_PREFIX = orphan_stream("")
_STATE_FIELDS = tuple(f.name for f in fields(RunState))

_HEAD = "SELECT coalesce(max(position), 0) FROM events"
_TABLE_EXISTS = "SELECT to_regclass($1) IS NOT NULL"
_RUN_RECORDS = "SELECT * FROM run_records"
_MISSING_RECORDS_FOUND = "SELECT run_id FROM missing_records WHERE run_id = ANY($1::text[])"
_COMPARED_TABLES = ("run_records", "missing_records")
_TABLE_IDS = """
SELECT relname, oid::int8 AS oid FROM pg_class
 WHERE relname = ANY($1::text[]) AND relnamespace = 'public'::regnamespace ORDER BY relname
"""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """What a check found; `ok` when the log and the projections agree."""

    runs_checked: int
    events_read: int
    head_position: int
    checked_up_to: int
    """The run_records checkpoint: records are compared with the log up to this position."""
    differences: tuple[Difference, ...]
    notes: tuple[str, ...]
    """Checks that were skipped, and why."""

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "runs_checked": self.runs_checked,
            "events_read": self.events_read,
            "head_position": self.head_position,
            "checked_up_to": self.checked_up_to,
            "differences": [d.to_json() for d in self.differences],
            "notes": list(self.notes),
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


async def check(
    pool: asyncpg.Pool,
    store: EventStore,
    *,
    progress: Callable[[int, int], None] = lambda position, head: None,
    page_size: int = PAGE_SIZE,
    pause_gc: bool = False,
) -> CheckResult:
    """Replay the whole log and compare it with the projections; see the module docstring.

    `progress(position, head)` after each page. `pause_gc`: pause the cyclic garbage collector
    while folding (faster; process-wide, so for a command of its own, not the server).
    """
    tables_before = await _table_ids(pool)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        head = int(await conn.fetchval(_HEAD))
        marks = {c.name: c.position for c in await checkpoints.read_all(conn)}
        differences = [
            Difference(
                run_id=None,
                field=f"checkpoint {name}",
                log=f"head at {head}",
                projection=f"checkpoint at {position}",
            )
            for name, position in sorted(marks.items())
            if position > head
        ]
        notes: list[str] = []
        if RUN_RECORDS not in marks:
            notes.append("run_records has no checkpoint: the projection never ran")
        fold = LogFold(fold_up_to=min(marks.get(RUN_RECORDS, 0), head))
        with cyclic_gc_paused() if pause_gc else contextlib.nullcontext():
            await _read_log(store, fold, head, page_size, progress)
        differences += fold.differences
        differences += await _compare_run_records(conn, fold)
        differences += await _check_missing_records(conn, fold, marks, notes)
    if await _table_ids(pool) != tables_before:
        raise ProjectionRebuiltDuringCheckError(
            "a projection was rebuilt while the check ran (its tables were swapped); run the "
            "check again"
        )
    return CheckResult(
        runs_checked=len(fold.runs) + len(fold.broken),
        events_read=fold.events,
        head_position=head,
        checked_up_to=fold.fold_up_to,
        differences=tuple(differences),
        notes=tuple(notes),
    )


async def _table_ids(pool: asyncpg.Pool) -> list[tuple[str, int]]:
    """The compared tables' identities, read outside the check's snapshot.

    A rebuild swaps in new tables (another oid under the same name). Inside the check's
    REPEATABLE READ transaction a swapped table is found by name but read with the old
    snapshot, in which the new table's rows do not exist: every run would look missing. Taking
    a lock instead would make the swap, and every query queued behind it, wait for the check.
    """
    rows = await pool.fetch(_TABLE_IDS, list(_COMPARED_TABLES))
    return [(row["relname"], row["oid"]) for row in rows]


async def _read_log(
    store: EventStore,
    fold: LogFold,
    head: int,
    page_size: int,
    progress: Callable[[int, int], None],
) -> None:
    """Fold the log up to `head`; the next page is read (on another connection) meanwhile."""
    if head == 0:
        return
    reading = asyncio.create_task(store.read_all(after_position=0, limit=page_size))
    try:
        while page := await reading:
            position = page[-1].position
            if position < head:
                reading = asyncio.create_task(
                    store.read_all(after_position=position, limit=page_size)
                )
            fold.feed(e for e in page if e.position <= head)
            progress(min(position, head), head)
            if position >= head:
                return
    finally:
        if not reading.done():
            reading.cancel()
            await asyncio.wait([reading])


async def _compare_run_records(conn: Connection, fold: LogFold) -> list[Difference]:
    found: list[Difference] = []
    unseen = set(fold.runs)
    async for row in conn.cursor(_RUN_RECORDS, prefetch=PAGE_SIZE):
        run_id = row["run_id"]
        folded = fold.runs.get(run_id)
        if folded is None:
            if run_id not in fold.broken:
                found.append(Difference(run_id=run_id, field="record", log="no such run",
                                        projection="a run record"))  # fmt: skip
            continue
        unseen.discard(run_id)
        found += compare_record(folded, row)
    found += [
        Difference(run_id=run_id, field="record", log="a run record", projection="no row")
        for run_id in sorted(unseen)
    ]
    return found


async def _check_missing_records(
    conn: Connection, fold: LogFold, marks: Mapping[str, int], notes: list[str]
) -> list[Difference]:
    if not await conn.fetchval(_TABLE_EXISTS, MISSING_RECORDS):
        notes.append("missing_records does not exist yet: orphan streams were not checked")
        return []
    owner = next((p.name for p in all_projections() if MISSING_RECORDS in p.tables), None)
    if owner is None:
        notes.append("no projection owns missing_records: orphan streams were not checked")
        return []
    up_to = marks.get(owner, 0)
    due = [run_id for run_id, first in fold.orphans.items() if first <= up_to]
    present = {row["run_id"] for row in await conn.fetch(_MISSING_RECORDS_FOUND, due)}
    return [
        Difference(
            run_id=run_id,
            field="missing_records",
            log="an orphan update",
            projection="no missing_records row",
        )
        for run_id in sorted(set(due) - present)
    ]

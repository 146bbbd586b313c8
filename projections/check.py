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

The fold (projections/log_fold.py) keeps one (state, version, position) per run in memory,
~1 KiB a run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from eventstore import EventStore
from eventstore.pool import Connection
from projections import checkpoints
from projections.errors import ProjectionRebuiltDuringCheckError
from projections.log_fold import Difference, LogFold, compare_record
from projections.rebuild import cyclic_gc_paused
from projections.registry import all_projections

RUN_RECORDS = "run_records"
MISSING_RECORDS = "missing_records"
PAGE_SIZE = 5000

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

"""`projections.check.check`: the log replayed run by run against run_records (and more)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Collection

import asyncpg
import pytest

from eventstore import EventStore, RecordedEvent
from projections.check import check
from projections.errors import ProjectionRebuiltDuringCheckError
from projections.log_fold import Difference
from projections.rebuild import rebuild
from projections.registry import all_projections
from projections.run_records import RunRecordsProjection
from statemachine import RunCreated
from tests.builders import kickoff, new_run_id, webhook

from .helpers import write_runs
from .test_timeline import decided, insert_log, write_every_kind


async def project_everything(pool: asyncpg.Pool, store: EventStore) -> None:
    """Bring every projection up to the log head, as a live runner would."""
    for projection in all_projections():
        await rebuild(pool, store, projection)


async def consistent_log(pool: asyncpg.Pool, store: EventStore) -> list[str]:
    """Runs written through the service, one with every kind of event, all projected."""
    runs = [new_run_id() for _ in range(6)]
    await write_runs(store, runs[:5])
    await write_every_kind(pool, runs[5])
    await project_everything(pool, store)
    return runs


async def test_check_passes_when_the_projection_agrees_with_the_log(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = await consistent_log(pool, store)
    head = await store.head_position()
    result = await check(pool, store)
    assert (result.ok, result.differences) == (True, ())
    assert (result.runs_checked, result.events_read, result.head_position) == (
        len(runs),
        head,
        head,
    )
    assert result.checked_up_to == head


async def test_a_row_corrupted_by_hand_is_named_with_its_run_and_field(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = await consistent_log(pool, store)
    await pool.execute("UPDATE run_records SET status = 'failed' WHERE run_id = $1", runs[5])
    result = await check(pool, store)
    assert result.differences == (
        Difference(run_id=runs[5], field="status", log='"succeeded"', projection='"failed"'),
    )
    assert str(result.differences[0]) == (
        f'run {runs[5]}: status: log says "succeeded", projection says "failed"'
    )


async def test_every_field_and_the_version_are_compared(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = await consistent_log(pool, store)
    await pool.execute(
        "UPDATE run_records SET metrics = '{\"posts_harvested\": 1}', version = version + 1,"
        " input = '{}', duration_s = duration_s + 1 WHERE run_id = $1",
        runs[5],
    )
    result = await check(pool, store)
    assert [(d.run_id, d.field) for d in result.differences] == [
        (runs[5], "input"),
        (runs[5], "duration_s"),
        (runs[5], "metrics"),
        (runs[5], "version"),
    ]
    assert result.differences[3] == Difference(
        run_id=runs[5], field="version", log="9", projection="10"
    )


async def test_a_missing_row_and_a_row_for_no_run_are_reported(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = await consistent_log(pool, store)
    await pool.execute("UPDATE run_records SET run_id = 'no-such-run' WHERE run_id = $1", runs[0])
    result = await check(pool, store)
    assert set(result.differences) == {
        Difference(run_id="no-such-run", field="record", log="no such run",
                   projection="a run record"),
        Difference(run_id=runs[0], field="record", log="a run record", projection="no row"),
    }  # fmt: skip


async def test_a_run_stream_not_beginning_with_run_created_is_reported(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await consistent_log(pool, store)
    ghost = new_run_id()
    _, (_, _, started) = decided([kickoff(run_id=ghost), webhook("run-created", run_id=ghost)])
    await insert_log(pool, [(f"run-{ghost}", 1, started)])  # a raw event, no kickoff before it
    result = await check(pool, store)
    assert result.differences == (
        Difference(
            run_id=ghost,
            field="first_event",
            log="RunStarted at version 1, not a kickoff's RunCreated",
            projection="-",
        ),
    )


async def test_a_run_created_that_no_kickoff_decided_is_reported(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await consistent_log(pool, store)
    forged = new_run_id()
    [(stream, version, created)] = decided([kickoff(run_id=forged)])
    assert isinstance(created, RunCreated)
    # Written by hand, not by a kickoff: its event id is not the one its request key gives.
    await insert_log(pool, [(stream, version, dataclasses.replace(created, event_id=uuid.uuid4()))])
    result = await check(pool, store)
    [difference] = result.differences
    assert (difference.run_id, difference.field) == (forged, "first_event")
    assert "no kickoff decided" in difference.log


async def test_events_beyond_the_projection_checkpoint_are_lag_not_drift(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await consistent_log(pool, store)
    checked_up_to = await store.head_position()
    await write_runs(store, [new_run_id() for _ in range(2)], seed=7)  # not projected yet
    result = await check(pool, store)
    assert (result.ok, result.checked_up_to) == (True, checked_up_to)
    assert result.events_read == await store.head_position()


async def test_a_checkpoint_ahead_of_the_log_head_is_reported(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await consistent_log(pool, store)
    head = await store.head_position()
    await pool.execute(
        "UPDATE projection_checkpoints SET position = $1 WHERE name = 'run_records'", head + 5
    )
    result = await check(pool, store)
    assert result.differences == (
        Difference(
            run_id=None,
            field="checkpoint run_records",
            log=f"head at {head}",
            projection=f"checkpoint at {head + 5}",
        ),
    )


async def test_a_projection_that_never_ran_is_noted(pool: asyncpg.Pool, store: EventStore) -> None:
    result = await check(pool, store)
    assert (result.ok, result.runs_checked, result.events_read) == (True, 0, 0)
    assert "run_records has no checkpoint: the projection never ran" in result.notes


async def _has_missing_records(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT to_regclass('missing_records') IS NOT NULL"))


async def test_orphan_streams_are_checked_against_missing_records_when_it_exists(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = await consistent_log(pool, store)
    if not await _has_missing_records(pool):
        result = await check(pool, store)
        assert result.ok
        assert result.notes == (
            "missing_records does not exist yet: orphan streams were not checked",
        )
        pytest.skip("no missing_records table yet (sql/0005): checked that it is noted instead")
    await pool.execute("DELETE FROM missing_records WHERE run_id = $1", runs[5])
    result = await check(pool, store)
    assert result.differences == (
        Difference(
            run_id=runs[5],
            field="missing_records",
            log="an orphan update",
            projection="no missing_records row",
        ),
    )


class _GatedStore(EventStore):
    """A real store whose first log read waits for a gate: the check's snapshot exists then."""

    def __init__(self, pool: asyncpg.Pool, gate: asyncio.Event, reached: asyncio.Event) -> None:
        super().__init__(pool)
        self._gate, self._reached = gate, reached

    async def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int = 1000,
        data_of: Collection[str] | None = None,
        data_without: Collection[str] = (),
    ) -> list[RecordedEvent]:
        self._reached.set()
        await self._gate.wait()
        return await super().read_all(
            after_position=after_position,
            limit=limit,
            data_of=data_of,
            data_without=data_without,
        )


async def test_a_rebuild_swapping_tables_during_the_check_is_an_error_not_drift(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await consistent_log(pool, store)
    gate, reached = asyncio.Event(), asyncio.Event()
    gated = _GatedStore(pool, gate, reached)
    checking = asyncio.create_task(check(pool, gated))
    await reached.wait()  # the check's REPEATABLE READ snapshot is taken
    await rebuild(pool, store, RunRecordsProjection())  # documented as safe while serving
    gate.set()
    with pytest.raises(ProjectionRebuiltDuringCheckError):
        await checking
    await gated.aclose()
    assert (await check(pool, store)).ok  # run again: it agrees

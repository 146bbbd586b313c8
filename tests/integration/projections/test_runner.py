"""The projection runner: exactly once, one active runner, errors recorded and retried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from eventstore import EventStore, RecordedEvent, create_pool
from eventstore.pool import Connection
from projections import checkpoints
from projections.registry import all_projections
from projections.run_records import RunRecordsProjection
from projections.runner import Backoff, ProjectionRunner, Role
from projections.supervisor import ProjectionSupervisor, live_supervisor
from tests.builders import new_run_id

from .helpers import projected_records, replayed_records, running, write_runs

BOUND_S = 20.0  # a ceiling for a failing test, not a timing assumption


async def wait_for_role(runner: ProjectionRunner, role: Role) -> None:
    async with asyncio.timeout(BOUND_S):
        while runner.role is not role:
            await runner.role_changed.wait()


async def wait_to_leave_role(runner: ProjectionRunner, role: Role) -> None:
    async with asyncio.timeout(BOUND_S):
        while runner.role is role:
            await runner.role_changed.wait()


async def caught_up(pool: asyncpg.Pool, store: EventStore, name: str = "run_records") -> None:
    supervisor = ProjectionSupervisor(pool, store, [])
    head = await store.head_position()
    assert await supervisor.wait_for([name], head, within_s=BOUND_S)


class FailingOnce(RunRecordsProjection):
    """run_records that fails on the first batch containing `position` until `healed`."""

    def __init__(self, position: int) -> None:
        self.position = position
        self.healed = False
        self.failures = 0

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        await super().apply(conn, events)  # writes first, so a failure must roll them back
        if not self.healed and any(e.position == self.position for e in events):
            self.failures += 1
            raise RuntimeError(f"cannot project position {self.position}")


async def test_runner_applies_every_event_exactly_once_equal_to_a_fresh_replay(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = [new_run_id() for _ in range(15)]
    await write_runs(store, runs)
    runner = ProjectionRunner(pool, store, RunRecordsProjection(), page_size=7)
    async with running(runner):
        await caught_up(pool, store)
        more = [new_run_id() for _ in range(5)]
        await write_runs(store, more, seed=2)  # and it follows new commits
        await caught_up(pool, store)
    assert await projected_records(pool) == await replayed_records(store, runs + more)


async def test_failed_batch_rolls_back_records_the_error_and_is_retried_not_skipped(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = [new_run_id() for _ in range(3)]
    head = await write_runs(store, runs)
    projection = FailingOnce(position=head - 2)
    runner = ProjectionRunner(pool, store, projection, page_size=5, backoff=Backoff(0.01, 0.01))
    async with pool.acquire() as conn:
        await checkpoints.ensure(conn, projection.name)
        page = await store.read_all(after_position=0, limit=head)
        assert not await runner._apply_or_record(conn, page)
        [row] = await checkpoints.read_all(conn)
    assert (row.position, row.failing_position) == (0, 1)
    assert row.last_error == f"RuntimeError: cannot project position {head - 2}"
    assert await pool.fetchval("SELECT count(*) FROM run_records") == 0  # rolled back

    projection.healed = True
    async with running(runner):
        await caught_up(pool, store)
    async with pool.acquire() as conn:
        [row] = await checkpoints.read_all(conn)
    assert (row.position, row.last_error) == (head, None)
    assert await projected_records(pool) == await replayed_records(store, runs)


async def test_runner_retries_a_failing_batch_until_it_succeeds(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = [new_run_id() for _ in range(2)]
    head = await write_runs(store, runs)
    projection = FailingOnce(position=head)
    runner = ProjectionRunner(pool, store, projection, backoff=Backoff(0.001, 0.001))
    async with running(runner):
        async with asyncio.timeout(BOUND_S):
            while projection.failures < 3:  # fails, backs off, retries the same batch
                await runner.role_changed.wait() if runner.role is not Role.ACTIVE else None
                await asyncio.sleep(0)
        projection.healed = True
        await caught_up(pool, store)
    assert await projected_records(pool) == await replayed_records(store, runs)


def _run_records_runners(pools: Sequence[asyncpg.Pool]) -> list[ProjectionRunner]:
    """One run_records runner per pool, each backing off a whole minute after a failure (so a
    takeover the test sees is the election's doing, not a retry's)."""
    return [
        ProjectionRunner(p, EventStore(p), RunRecordsProjection(), backoff=Backoff(60, 60))
        for p in pools
    ]


async def test_only_one_runner_is_active_and_a_standby_takes_over_when_it_dies(
    dsn: str, store: EventStore, pool: asyncpg.Pool
) -> None:
    runs = [new_run_id() for _ in range(4)]
    await write_runs(store, runs)
    pools = [await create_pool(dsn, min_size=1, max_size=4) for _ in range(2)]
    first, second = _run_records_runners(pools)
    try:
        async with running(first):
            await wait_for_role(first, Role.ACTIVE)
            async with running(second):
                await wait_for_role(second, Role.STANDBY)
                await caught_up(pool, store)
                leader_pid = await pool.fetchval(
                    # pg_locks is cluster-wide: only this test's database counts.
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database"
                    "                  WHERE datname = current_database())"
                )
                await pool.execute("SELECT pg_terminate_backend($1)", leader_pid)
                await wait_for_role(second, Role.ACTIVE)  # took over
                await wait_to_leave_role(first, Role.ACTIVE)  # and the old leader knows it
                more = [new_run_id() for _ in range(3)]
                await write_runs(store, more, seed=5)
                await caught_up(pool, store)
        assert await projected_records(pool) == await replayed_records(store, runs + more)
    finally:
        for p in pools:
            await p.close()


async def test_batches_already_applied_are_not_applied_again(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    runs = [new_run_id() for _ in range(3)]
    head = await write_runs(store, runs)
    runner = ProjectionRunner(pool, store, RunRecordsProjection())
    page = await store.read_all(after_position=0, limit=head)
    async with pool.acquire() as conn:
        await checkpoints.ensure(conn, "run_records")
        await runner.apply_batch(conn, page)
        await runner.apply_batch(conn, page)  # e.g. a second runner, or a replayed page
    assert await projected_records(pool) == await replayed_records(store, runs)


@pytest.mark.parametrize("page_size", [1, 1000])
async def test_client_reports_equal_a_recount_from_run_records(
    pool: asyncpg.Pool, store: EventStore, page_size: int
) -> None:
    runs = [new_run_id() for _ in range(12)]
    await write_runs(store, runs, seed=page_size)
    async with running(ProjectionRunner(pool, store, RunRecordsProjection(), page_size=page_size)):
        await caught_up(pool, store)
    recount = await pool.fetch(
        "SELECT client_id, count(*) AS runs, sum((metrics->>'posts')::float) AS posts"
        " FROM run_records GROUP BY client_id ORDER BY client_id"
    )
    reports = await pool.fetch(
        "SELECT client_id, sum(runs) AS runs, sum((metrics->>'posts')::float) AS posts"
        " FROM client_reports GROUP BY client_id ORDER BY client_id"
    )
    assert [tuple(r) for r in reports] == [tuple(r) for r in recount]


_WAITING_LONGER_THAN = """
SELECT pid FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock'
   AND query LIKE '%pg_advisory_lock%'
   AND clock_timestamp() - query_start > make_interval(secs => $1)
"""


async def test_a_standby_waits_past_the_command_timeout_and_still_takes_over(
    dsn: str, store: EventStore, pool: asyncpg.Pool
) -> None:
    await write_runs(store, [new_run_id() for _ in range(2)])
    # A command timeout of 50 ms: a standby's wait for the lock must not be ended by it (it
    # once was, and the standby backed off for up to a minute at a time).
    pools = [await create_pool(dsn, min_size=1, max_size=4, command_timeout=0.05) for _ in "ab"]
    first, second = _run_records_runners(pools)
    try:
        async with running(first):
            await wait_for_role(first, Role.ACTIVE)
            async with running(second):
                await wait_for_role(second, Role.STANDBY)
                async with asyncio.timeout(BOUND_S):  # observed in the server, not slept
                    while True:
                        waiter = await pool.fetchval(_WAITING_LONGER_THAN, 0.5)
                        if waiter:
                            break
                        await asyncio.sleep(0.05)  # the server's clock decides, polled
                assert second.role is Role.STANDBY  # still waiting, ten timeouts later
                await pool.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND granted AND pid <> $1 AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())",
                    waiter,
                )
                await wait_for_role(second, Role.ACTIVE)  # took over at once
    finally:
        for p in pools:
            await p.close()


async def test_live_runners_are_paced_each_by_its_projections_batch_interval(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    """The pacing of `serve` and of `runledger projections run` (both build `live_supervisor`)."""
    supervisor = live_supervisor(pool, store, all_projections())
    intervals = {runner.projection.name: runner.batch_interval for runner in supervisor.runners}
    assert intervals == {
        "run_records": 0.05,
        "missing_records": 0.25,
        "rejections": 0.25,
        "dead_letters": 0.25,
    }

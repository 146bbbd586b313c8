"""Pipelined group commit: a second batch waits on the ordering lock while the first is written.

The interleavings are forced with a real connection that holds the ordering lock and with
observations of pg_locks, never with sleeps: while the lock is held outside the store, every
batch the store starts queues on it inside the server, so "two batches in flight" is a state
the test can reach and see.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    DuplicateEventIdError,
    EventStore,
    ExpectedVersion,
    StoreUnavailableError,
    WrongExpectedVersion,
    create_pool,
)
from eventstore.batching import ORDERING_LOCK_KEY, AppendRequest, versions_named_by, write_batch
from eventstore.pool import connect
from eventstore.store import _encode

from .builders import new_event, new_event_with_id, stream_name

# pg_locks is cluster-wide: only this test's database counts (other suites may share the server).
_WAITING_PIDS = """
SELECT pid FROM pg_locks
 WHERE locktype = 'advisory' AND NOT granted
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY pid
"""


async def _wait_for_lock_waiters(observer: asyncpg.Connection, count: int) -> list[int]:
    """Block until `count` sessions are queued on an advisory lock (observed, not timed)."""
    async with asyncio.timeout(10):
        while True:  # each query yields to the event loop, so the writers can progress
            pids = [r["pid"] for r in await observer.fetch(_WAITING_PIDS)]
            if len(pids) >= count:
                return pids


@pytest.fixture(name="lock_holder")
async def _lock_holder(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(dsn)
    yield conn
    await conn.close()


@pytest.fixture(name="observer")
async def _observer(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(dsn)
    yield conn
    await conn.close()


async def _hold_ordering_lock(conn: asyncpg.Connection) -> asyncpg.transaction.Transaction:
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute("SELECT pg_advisory_xact_lock($1)", ORDERING_LOCK_KEY)
    return transaction


async def test_batch_queued_behind_another_sees_its_events_when_checking_versions(
    store: EventStore, lock_holder: asyncpg.Connection, observer: asyncpg.Connection
) -> None:
    stream = stream_name()
    held = await _hold_ordering_lock(lock_holder)
    first = asyncio.create_task(store.append(stream, [new_event()], expected_version=NO_STREAM))
    await _wait_for_lock_waiters(observer, 1)
    # The first batch is in flight (waiting for the lock), so a second writer takes these.
    follows = asyncio.create_task(store.append(stream, [new_event()], expected_version=1))
    stale = asyncio.create_task(store.append(stream, [new_event()], expected_version=NO_STREAM))
    await _wait_for_lock_waiters(observer, 2)  # two batches in flight at once

    await held.commit()
    outcomes = await asyncio.gather(first, follows, stale, return_exceptions=True)
    assert [type(o) for o in outcomes] == [AppendResult, AppendResult, WrongExpectedVersion]
    assert store.batches_written == 2
    assert [e.version for e in await store.read_stream(stream)] == [1, 2]


async def test_positions_follow_commit_order_when_batches_are_pipelined(
    store: EventStore, lock_holder: asyncpg.Connection, observer: asyncpg.Connection
) -> None:
    held = await _hold_ordering_lock(lock_holder)
    first = asyncio.create_task(
        store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
    )
    await _wait_for_lock_waiters(observer, 1)
    second = asyncio.create_task(
        store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
    )
    await _wait_for_lock_waiters(observer, 2)
    assert await store.read_all(after_position=0) == []  # neither batch has a visible event

    await held.commit()
    results = await asyncio.gather(first, second)
    positions = sorted(r.positions[0] for r in results)
    assert [e.position for e in await store.read_all(after_position=0)] == positions
    assert store.batches_written == 2  # two transactions, handed the lock one after the other


async def test_writer_connection_lost_while_queued_fails_its_batch_and_the_next_append_works(
    store: EventStore, lock_holder: asyncpg.Connection, observer: asyncpg.Connection
) -> None:
    held = await _hold_ordering_lock(lock_holder)
    doomed = asyncio.create_task(
        store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
    )
    [writer_pid] = await _wait_for_lock_waiters(observer, 1)
    await observer.execute("SELECT pg_terminate_backend($1)", writer_pid)
    with pytest.raises(StoreUnavailableError):
        await doomed
    await held.commit()

    result = await store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
    assert [e.position for e in await store.read_all(after_position=0)] == list(result.positions)


async def test_writers_leave_half_the_pool_to_readers(
    dsn: str, lock_holder: asyncpg.Connection, observer: asyncpg.Connection
) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with EventStore(pool, writers=4) as store:  # capped at 1 writer for 2 connections
            held = await _hold_ordering_lock(lock_holder)
            appends = [
                asyncio.create_task(
                    store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
                )
            ]
            await _wait_for_lock_waiters(observer, 1)
            appends.append(
                asyncio.create_task(
                    store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
                )
            )
            async with asyncio.timeout(10):  # would hang if a second writer held the other one
                assert await store.read_all(after_position=0) == []
            assert len(await observer.fetch(_WAITING_PIDS)) == 1
            await held.commit()
            assert all(isinstance(r, AppendResult) for r in await asyncio.gather(*appends))
    finally:
        await pool.close()


async def test_a_writer_task_that_died_is_replaced_and_appends_go_on(store: EventStore) -> None:
    await store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
    writers = list(store._committer._tasks)  # white box: the only way to make one die
    for writer in writers:
        writer.cancel()
    await asyncio.gather(*writers, return_exceptions=True)
    async with asyncio.timeout(10):  # hung forever on its future before
        result = await store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
    assert result.positions


# --- the fast path: planned before the lock, checked and written under it ----------------------


async def _write_under_held_lock(
    conn: asyncpg.Connection, stream: str, event_id: uuid.UUID
) -> None:
    """Another writer's batch, holding the ordering lock, not yet committed."""
    await conn.execute("BEGIN")
    request = AppendRequest(
        stream_id=stream, events=(_encode(new_event_with_id(event_id)),), expected_version=ANY
    )
    [result] = await write_batch(conn, [request])
    assert isinstance(result, AppendResult)


async def test_fast_path_planned_before_another_batch_committed_replans_under_the_lock(
    store: EventStore, lock_holder: asyncpg.Connection, observer: asyncpg.Connection
) -> None:
    stream = stream_name()
    await _write_under_held_lock(lock_holder, stream, uuid.uuid4())  # version 1, not visible
    late = asyncio.create_task(store.append(stream, [new_event()], expected_version=ANY))
    await _wait_for_lock_waiters(observer, 1)  # planned version 1 from its read, now queued
    await lock_holder.execute("COMMIT")

    result = await late
    assert result.versions == (2,)  # the server saw the stream move and the batch re-planned
    assert store.slow_batches == 1
    assert [e.version for e in await store.read_stream(stream)] == [1, 2]


async def test_fast_path_refusal_is_decided_under_the_lock_when_the_id_was_stored_meanwhile(
    store: EventStore, lock_holder: asyncpg.Connection, observer: asyncpg.Connection
) -> None:
    event = new_event()
    await _write_under_held_lock(lock_holder, stream_name(), event.event_id)
    elsewhere = asyncio.create_task(
        store.append(stream_name(), [event], expected_version=NO_STREAM)
    )
    await _wait_for_lock_waiters(observer, 1)
    await lock_holder.execute("COMMIT")

    with pytest.raises(DuplicateEventIdError):
        await elsewhere
    assert store.slow_batches == 1


async def test_fast_path_writes_nothing_when_a_stream_moved_since_the_read(
    store: EventStore, observer: asyncpg.Connection
) -> None:
    stream = stream_name()
    await store.append(stream, [new_event()], expected_version=NO_STREAM)
    rows = await observer.fetch(
        "SELECT * FROM eventstore_append_if_unchanged($1, 'unheard', $2, $3, $2, $4, $5,"
        " $6, $7, $7)",
        ORDERING_LOCK_KEY,
        [stream],
        [0],  # the caller's stale read: the stream was empty
        [1],
        [uuid.uuid4()],
        ["ThingHappened"],
        [{}],
    )
    assert rows == []
    assert [e.version for e in await store.read_stream(stream)] == [1]


async def test_appends_to_distinct_streams_take_the_fast_path(store: EventStore) -> None:
    results = await asyncio.gather(
        *(store.append(stream_name(), [new_event()], expected_version=NO_STREAM) for _ in range(20))
    )
    assert all(r.versions == (1,) for r in results)
    assert store.slow_batches == 0


# --- exact expected versions: the plan needs no read ------------------------------------------


async def test_a_batch_of_exact_expected_versions_is_planned_without_reading(
    store: EventStore,
) -> None:
    streams = [stream_name() for _ in range(10)]
    await asyncio.gather(
        *(store.append(s, [new_event()], expected_version=NO_STREAM) for s in streams)
    )
    results = await asyncio.gather(
        *(store.append(s, [new_event()], expected_version=1) for s in streams)
    )
    assert [r.versions for r in results] == [(2,)] * 10
    assert (store.state_reads, store.slow_batches) == (0, 0)

    await store.append(stream_name(), [new_event()], expected_version=ANY)  # ANY must read
    assert store.state_reads == 1


async def test_an_exact_version_that_is_stale_is_still_refused_under_the_lock(
    store: EventStore,
) -> None:
    stream = stream_name()
    await store.append(stream, [new_event(), new_event()], expected_version=NO_STREAM)
    for stale in (NO_STREAM, 1, 3):
        with pytest.raises(WrongExpectedVersion):
            await store.append(stream, [new_event()], expected_version=stale)
    assert store.slow_batches == 3  # the server's check refused each plan; the lock decided
    assert [e.version for e in await store.read_stream(stream)] == [1, 2]


async def test_a_repeat_with_an_exact_version_gets_the_original_result(
    store: EventStore,
) -> None:
    stream, event = stream_name(), new_event()
    first = await store.append(stream, [event], expected_version=NO_STREAM)
    again = await store.append(stream, [event], expected_version=NO_STREAM)
    assert again.was_duplicate
    assert (again.positions, again.versions) == (first.positions, first.versions)
    assert len(await store.read_stream(stream)) == 1
    assert store.slow_batches == 0  # the read's plan found the stored id: no lock needed


async def test_a_repeat_in_a_batch_of_exact_versions_leaves_the_others_on_the_fast_path(
    store: EventStore,
) -> None:
    repeated, event = stream_name(), new_event()
    first = await store.append(repeated, [event], expected_version=NO_STREAM)
    others = [stream_name() for _ in range(5)]
    again, *fresh = await asyncio.gather(  # queued together: one batch
        store.append(repeated, [event], expected_version=NO_STREAM),
        *(store.append(s, [new_event()], expected_version=NO_STREAM) for s in others),
    )
    assert again.was_duplicate
    assert again.positions == first.positions
    assert [r.versions for r in fresh] == [(1,)] * 5
    assert store.slow_batches == 0
    assert store.batches_written == 2


async def test_two_exact_appends_to_one_stream_in_a_batch_are_planned_from_a_read(
    store: EventStore, lock_holder: asyncpg.Connection, observer: asyncpg.Connection
) -> None:
    stream = stream_name()
    held = await _hold_ordering_lock(lock_holder)
    blocker = asyncio.create_task(
        store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
    )
    await _wait_for_lock_waiters(observer, 1)  # one writer waits; the other takes what follows
    both = [
        asyncio.create_task(store.append(stream, [new_event()], expected_version=NO_STREAM)),
        asyncio.create_task(store.append(stream, [new_event()], expected_version=1)),
    ]
    await _wait_for_lock_waiters(observer, 2)
    await held.commit()
    await blocker
    first, second = await asyncio.gather(*both)
    # The second's base is the first's version, not a stored one: it was read, then planned.
    assert (first.versions, second.versions) == ((1,), (2,))
    assert store.state_reads >= 1


async def test_only_requests_with_events_and_exact_versions_on_distinct_streams_skip_the_read() -> (
    None
):
    def request(stream: str, expected: ExpectedVersion, events: int = 1) -> AppendRequest:
        encoded = tuple(_encode(new_event()) for _ in range(events))
        return AppendRequest(stream_id=stream, events=encoded, expected_version=expected)

    assert versions_named_by([request("a", NO_STREAM), request("b", 3)]) == {"a": 0, "b": 3}
    assert versions_named_by([request("a", 1), request("b", ANY)]) is None
    assert versions_named_by([request("a", 1), request("b", STREAM_EXISTS)]) is None
    assert versions_named_by([request("a", 1), request("a", 2)]) is None  # one stream twice
    assert versions_named_by([request("a", NO_STREAM), request("a", NO_STREAM)]) is None
    assert versions_named_by([request("a", 5), request("a", NO_STREAM)]) is None
    assert versions_named_by([request("a", 1, events=0)]) is None  # nothing for the server to check

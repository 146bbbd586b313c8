"""Commit-order safety: a reader that follows the global position never skips an event.

The interleavings are forced with real concurrent connections and asyncio events, not sleeps.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from eventstore import ANY, EventStore, create_pool
from eventstore.batching import AppendRequest, write_batch
from eventstore.pool import connect
from eventstore.store import _encode

from .builders import new_event, stream_name


async def _wait_until_a_writer_waits_for_the_ordering_lock(conn: asyncpg.Connection) -> None:
    """Block until some session is queued on an advisory lock (observed, not timed)."""
    async with asyncio.timeout(10):
        waiting = 0
        while not waiting:  # each query yields to the event loop, so the writer can progress
            waiting = await conn.fetchval(
                # pg_locks is cluster-wide: only this test's database counts.
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )


@pytest.fixture(name="raw_conns")
async def _raw_conns(dsn: str) -> AsyncIterator[list[asyncpg.Connection]]:
    conns = [await connect(dsn) for _ in range(2)]
    yield conns
    for conn in conns:
        await conn.close()


def _request(stream: str) -> AppendRequest:
    return AppendRequest(stream_id=stream, events=(_encode(new_event()),), expected_version=ANY)


async def test_reader_never_skips_event_when_earlier_transaction_commits_last(
    store: EventStore, raw_conns: list[asyncpg.Connection]
) -> None:
    writer_a, observer = raw_conns
    transaction_a = writer_a.transaction()
    await transaction_a.start()
    [result_a] = await write_batch(writer_a, [_request(stream_name())])  # A holds a position

    append_b = asyncio.create_task(store.append(stream_name(), [new_event()], expected_version=ANY))
    await _wait_until_a_writer_waits_for_the_ordering_lock(observer)
    assert await store.read_all(after_position=0) == []  # neither A nor B is visible yet

    await transaction_a.commit()
    result_b = await append_b
    assert not isinstance(result_a, Exception)
    seen = [e.position for e in await store.read_all(after_position=0)]
    assert seen == [result_a.positions[0], result_b.positions[0]]
    assert result_a.positions[0] < result_b.positions[0]


async def test_reader_never_skips_event_when_earlier_transaction_rolls_back(
    store: EventStore, raw_conns: list[asyncpg.Connection]
) -> None:
    writer_a, observer = raw_conns
    transaction_a = writer_a.transaction()
    await transaction_a.start()
    [result_a] = await write_batch(writer_a, [_request(stream_name())])
    append_b = asyncio.create_task(store.append(stream_name(), [new_event()], expected_version=ANY))
    await _wait_until_a_writer_waits_for_the_ordering_lock(observer)

    await transaction_a.rollback()
    result_b = await append_b
    assert not isinstance(result_a, Exception)
    assert [e.position for e in await store.read_all(after_position=0)] == [result_b.positions[0]]
    assert result_b.positions[0] > result_a.positions[0]  # the rolled-back position is a gap


async def test_without_the_ordering_lock_a_reader_would_skip_an_event(
    store: EventStore, raw_conns: list[asyncpg.Connection]
) -> None:
    """Why the lock exists: two plain INSERTs committing out of order make a reader skip."""
    writer_a, writer_b = raw_conns
    insert = (
        "INSERT INTO events (stream_id, version, event_id, event_type, data)"
        " VALUES ($1, 1, $2, 'ThingHappened', '{}') RETURNING position"
    )
    transaction_a = writer_a.transaction()
    await transaction_a.start()
    position_a = await writer_a.fetchval(insert, stream_name(), uuid.uuid4())
    position_b = await writer_b.fetchval(insert, stream_name(), uuid.uuid4())  # autocommit

    checkpoint = (await store.read_all(after_position=0))[-1].position
    assert checkpoint == position_b
    await transaction_a.commit()
    assert await store.read_all(after_position=checkpoint) == []  # A's event was skipped
    assert position_a < position_b


async def test_randomised_stress_reader_sees_every_committed_event_once(dsn: str) -> None:
    """Many appenders (several stores, as several processes would be) and writers that roll
    back at random, with a reader checkpointing as it goes: 0 skipped, 0 seen twice."""
    rng = random.Random(20261203)
    pools = [await create_pool(dsn, min_size=1, max_size=3) for _ in range(4)]
    stores = [EventStore(pool) for pool in pools]
    reader_pool = await create_pool(dsn, min_size=1, max_size=2)
    reader = EventStore(reader_pool)
    committed: set[uuid.UUID] = set()
    writers_done = asyncio.Event()

    async def appender(store: EventStore, count: int) -> None:
        for _ in range(count):
            event = new_event()
            await store.append(stream_name(), [event], expected_version=ANY)
            committed.add(event.event_id)

    async def rolling_back_writer(count: int) -> None:
        conn = await connect(dsn)
        try:
            for _ in range(count):
                request = _request(stream_name())
                transaction = conn.transaction()
                await transaction.start()
                await write_batch(conn, [request])
                if rng.random() < 0.5:
                    await transaction.rollback()
                else:
                    await transaction.commit()
                    committed.add(request.events[0].event_id)
        finally:
            await conn.close()

    seen: list[tuple[int, uuid.UUID]] = []

    async def follow() -> None:
        checkpoint = 0
        while True:
            finished = writers_done.is_set()  # read before the page: one last pass after
            page = await reader.read_all(after_position=checkpoint, limit=rng.randint(1, 50))
            seen.extend((e.position, e.event_id) for e in page)
            if page:
                checkpoint = page[-1].position
            elif finished:
                return

    following = asyncio.create_task(follow())
    await asyncio.gather(
        *(appender(stores[i % 4], 40) for i in range(16)),
        *(rolling_back_writer(30) for _ in range(4)),
    )
    writers_done.set()
    await following
    for store, pool in zip(stores, pools, strict=True):
        await store.aclose()
        await pool.close()
    await reader_pool.close()

    positions = [p for p, _ in seen]
    ids = [i for _, i in seen]
    assert positions == sorted(set(positions))  # in order, none twice
    assert len(ids) == len(set(ids))
    assert set(ids) == committed  # none skipped, nothing rolled back
    assert len(committed) >= 16 * 40

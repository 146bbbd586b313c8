"""Group commit: concurrent appends share transactions; each caller keeps its own outcome."""

from __future__ import annotations

import asyncio

import asyncpg

from eventstore import (
    ANY,
    NO_STREAM,
    AppendResult,
    EventStore,
    EventStoreError,
    WrongExpectedVersion,
)

from .builders import new_event, new_events, stream_name


async def _transactions_used(pool: asyncpg.Pool) -> int:
    # Rows written by one transaction carry the same xmin: the database's own proof of batching.
    return int(await pool.fetchval("SELECT count(DISTINCT xmin::text) FROM events"))


async def test_concurrent_appends_are_batched_into_shared_transactions(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    results = await asyncio.gather(
        *(
            store.append(stream_name(), [new_event()], expected_version=NO_STREAM)
            for _ in range(200)
        )
    )
    assert len({r.positions[0] for r in results}) == 200
    assert store.batches_written == 1
    assert await _transactions_used(pool) == 1


async def test_each_caller_gets_its_own_conflict_error_within_a_batch(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    taken = stream_name()
    await store.append(taken, new_events(2), expected_version=NO_STREAM)
    before = store.batches_written
    outcomes = await asyncio.gather(
        store.append(stream_name(), [new_event()], expected_version=NO_STREAM),
        store.append(taken, [new_event()], expected_version=NO_STREAM),
        store.append(stream_name(), [new_event()], expected_version=NO_STREAM),
        store.append(taken, [new_event()], expected_version=2),
        store.append(taken, [new_event()], expected_version=2),
        return_exceptions=True,
    )
    assert [type(o) for o in outcomes] == [
        AppendResult,
        WrongExpectedVersion,
        AppendResult,
        AppendResult,
        WrongExpectedVersion,  # the batch saw the one before it move the stream to 3
    ]
    assert store.batches_written == before + 1
    assert [e.version for e in await store.read_stream(taken)] == [1, 2, 3]


async def test_appends_to_one_stream_in_one_batch_get_consecutive_versions(
    store: EventStore,
) -> None:
    stream = stream_name()
    results = await asyncio.gather(
        *(store.append(stream, new_events(2), expected_version=ANY) for _ in range(10))
    )
    assert sorted(v for r in results for v in r.versions) == list(range(1, 21))


async def test_a_request_the_database_refuses_fails_alone_not_its_batch(
    store: EventStore,
) -> None:
    outcomes = await asyncio.gather(
        store.append(stream_name(), [new_event()], expected_version=ANY),
        store.append("bad\x00stream", [new_event()], expected_version=ANY),
        store.append(stream_name(), [new_event()], expected_version=ANY),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], AppendResult)
    assert isinstance(outcomes[1], EventStoreError)
    assert isinstance(outcomes[2], AppendResult)
    assert len(await store.read_all(after_position=0)) == 2


async def test_batches_respect_the_size_cap(pool: asyncpg.Pool) -> None:
    async with EventStore(pool, max_batch_events=10) as store:
        await asyncio.gather(
            *(store.append(stream_name(), new_events(3), expected_version=ANY) for _ in range(12))
        )
        assert store.batches_written >= 4  # 36 events, at most 3 requests (9 events) per batch


async def test_close_writes_what_is_queued(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    pending = [
        asyncio.create_task(store.append(stream_name(), [new_event()], expected_version=ANY))
        for _ in range(5)
    ]
    await asyncio.sleep(0)  # let the tasks queue their appends (a scheduling step, not a wait)
    await store.aclose()
    assert all(isinstance(t.result(), AppendResult) for t in pending)

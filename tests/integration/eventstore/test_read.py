"""Reading one stream, several streams, the whole log in pages, and the head position."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from eventstore import (
    ANY,
    NO_STREAM,
    EventStore,
    EventStoreError,
    StoreUnavailableError,
    create_pool,
)
from eventstore.pool import connect

from .builders import new_event, new_events, stream_name


async def test_read_stream_from_and_up_to_a_version(store: EventStore) -> None:
    stream = stream_name()
    await store.append(stream, new_events(6), expected_version=NO_STREAM)
    window = await store.read_stream(stream, after_version=2, up_to_version=5)
    assert [e.version for e in window] == [3, 4, 5]
    assert [e.data["n"] for e in window] == [2, 3, 4]
    assert [e.version for e in await store.read_stream(stream, limit=2)] == [1, 2]


async def test_read_stream_of_unknown_stream_is_empty(store: EventStore) -> None:
    assert await store.read_stream(stream_name()) == []
    assert await store.stream_version(stream_name()) == 0


async def test_recorded_event_keeps_everything_that_was_appended(store: EventStore) -> None:
    stream = stream_name()
    event = new_event("Thing", {"nested": {"list": [1, 2.5, None, "é"]}}, source="test")
    result = await store.append(stream, [event], expected_version=NO_STREAM)
    [recorded] = await store.read_stream(stream)
    assert (
        recorded.position,
        recorded.stream_id,
        recorded.version,
        recorded.event_id,
        recorded.type,
        recorded.data,
        recorded.metadata,
    ) == (result.positions[0], stream, 1, event.event_id, "Thing", event.data, {"source": "test"})
    assert recorded.recorded_at.tzinfo is not None


async def test_read_all_in_pages_returns_the_whole_log_in_order(store: EventStore) -> None:
    for _ in range(7):
        await store.append(stream_name(), new_events(3), expected_version=ANY)
    pages, position = [], 0
    while page := await store.read_all(after_position=position, limit=4):
        pages.append(page)
        position = page[-1].position
    positions = [e.position for page in pages for e in page]
    assert len(positions) == 21
    assert positions == sorted(positions)
    assert max(len(p) for p in pages) == 4
    assert await store.head_position() == positions[-1]


async def test_head_position_of_empty_log_is_zero(store: EventStore) -> None:
    assert await store.head_position() == 0


async def test_read_streams_interleaves_in_log_order(store: EventStore) -> None:
    first, second = stream_name(), stream_name()
    for stream in (first, second, first, second):
        await store.append(stream, [new_event()], expected_version=ANY)
    events = await store.read_streams([first, second])
    assert [e.stream_id for e in events] == [first, second, first, second]


async def test_find_events_by_id(store: EventStore) -> None:
    events = new_events(3)
    await store.append(stream_name(), events, expected_version=ANY)
    found = await store.find_events([events[2].event_id, new_event().event_id])
    assert [e.event_id for e in found] == [events[2].event_id]


async def test_an_argument_the_driver_refuses_is_a_store_error_not_unavailability(
    store: EventStore,
) -> None:
    with pytest.raises(EventStoreError) as caught:
        await store.read_stream(12345)  # type: ignore[arg-type]  # a caller's bug, on purpose
    assert not isinstance(caught.value, StoreUnavailableError)
    assert await store.head_position() == 0  # the pool is fine afterwards


async def test_read_all_with_data_of_keeps_every_event_but_data_only_of_those_types(
    store: EventStore,
) -> None:
    stream = stream_name()
    sent = [
        new_event("Wanted", {"n": 1}, source="a"),
        new_event("Other", {"big": "x" * 1000}, source="b"),
        new_event("Wanted", {"n": 2}, source="c"),
    ]
    await store.append(stream, sent, expected_version=NO_STREAM)
    full = await store.read_all(after_position=0)
    page = await store.read_all(after_position=0, data_of={"Wanted"})
    # Every event in its place (what a checkpoint needs), data only where it was asked for.
    assert [(e.position, e.type) for e in page] == [(e.position, e.type) for e in full]
    assert [(e.data, e.metadata) for e in page] == [
        ({"n": 1}, {"source": "a"}),
        ({}, {}),
        ({"n": 2}, {"source": "c"}),
    ]


async def test_read_all_data_without_leaves_those_keys_out_of_every_events_data(
    store: EventStore,
) -> None:
    stream = stream_name()
    sent = [
        new_event("Wanted", {"n": 1, "bulk": "x" * 1000, "kept": True}, source="a"),
        new_event("Other", {"bulk": [1, 2], "note": "n"}, source="b"),
    ]
    await store.append(stream, sent, expected_version=NO_STREAM)
    page = await store.read_all(after_position=0, data_without={"bulk", "absent"})
    assert [(e.data, e.metadata) for e in page] == [
        ({"n": 1, "kept": True}, {"source": "a"}),
        ({"note": "n"}, {"source": "b"}),
    ]
    both = await store.read_all(after_position=0, data_of={"Wanted"}, data_without={"bulk"})
    assert [e.data for e in both] == [{"n": 1, "kept": True}, {}]


async def test_whole_streams_read_together_share_a_query_and_each_gets_its_own(
    store: EventStore,
) -> None:
    streams = [stream_name() for _ in range(20)]
    for n, stream in enumerate(streams):
        await store.append(stream, new_events(n + 1), expected_version=NO_STREAM)
    queries_before = store.whole_stream_queries

    read = await asyncio.gather(*(store.read_stream(s) for s in [*streams, streams[3]]))

    assert [[e.version for e in events] for events in read[:20]] == [
        list(range(1, n + 2)) for n in range(20)
    ]
    assert read[20] == read[3]  # the same stream asked twice in one batch
    assert store.whole_stream_queries - queries_before <= 2  # not one query per stream
    assert await store.read_stream(stream_name()) == []


async def test_a_cancelled_whole_stream_read_leaves_the_others_of_its_batch_alone(
    store: EventStore,
) -> None:
    stream = stream_name()
    await store.append(stream, new_events(2), expected_version=NO_STREAM)
    doomed = asyncio.create_task(store.read_stream(stream))
    kept = asyncio.create_task(store.read_stream(stream))
    await asyncio.sleep(0)  # both have joined the batch
    doomed.cancel()
    assert [e.version for e in await kept] == [1, 2]
    with pytest.raises(asyncio.CancelledError):
        await doomed


async def test_reads_give_their_connections_back_clean_and_closing_waits_for_that(
    dsn: str,
) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=3)
    try:
        store = EventStore(pool)
        await asyncio.gather(*(store.read_stream(stream_name(), limit=1) for _ in range(12)))
        await store.aclose()  # waits for the resets the readers did not wait for
        assert pool.get_idle_size() == pool.get_size()
        async with pool.acquire() as conn:  # and each one was reset before its return
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
    finally:
        await pool.close()


async def test_the_stores_pool_plans_each_call_and_a_query_pool_leaves_it_to_postgresql(
    dsn: str,
) -> None:
    for custom_plans, mode in ((True, "force_custom_plan"), (False, "auto")):
        pool = await create_pool(dsn, min_size=1, max_size=1, custom_plans=custom_plans)
        try:
            assert await pool.fetchval("SHOW plan_cache_mode") == mode
        finally:
            await pool.close()


_WAITING_ON_EVENTS = """
SELECT count(*) FROM pg_locks
 WHERE locktype = 'relation' AND NOT granted AND relation = 'events'::regclass
"""


async def _wait_for_queries_on_the_lock(observer: asyncpg.Connection, count: int) -> None:
    async with asyncio.timeout(10):  # observed, not timed; each query yields to the readers
        while await observer.fetchval(_WAITING_ON_EVENTS) < count:
            pass


async def test_a_whole_stream_read_does_not_wait_for_the_query_already_out(
    store: EventStore, dsn: str
) -> None:
    """Two queries may be out at once; a third read waits for one of them to come back."""
    streams = [stream_name() for _ in range(3)]
    for stream in streams:
        await store.append(stream, new_events(1), expected_version=NO_STREAM)
    locker, observer = await connect(dsn), await connect(dsn)
    try:
        blocking = locker.transaction()
        await blocking.start()
        await locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")  # every read queues
        queries_before = store.whole_stream_queries
        first = asyncio.create_task(store.read_stream(streams[0]))
        await _wait_for_queries_on_the_lock(observer, 1)
        second = asyncio.create_task(store.read_stream(streams[1]))
        await _wait_for_queries_on_the_lock(observer, 2)  # did not wait for the first
        third = asyncio.create_task(store.read_stream(streams[2]))
        await asyncio.sleep(0)
        assert store.whole_stream_queries - queries_before == 2  # the third waits its turn
        await blocking.rollback()
        read = await asyncio.gather(first, second, third)
        assert [[e.stream_id for e in events] for events in read] == [[s] for s in streams]
        assert store.whole_stream_queries - queries_before == 3
    finally:
        await locker.close()
        await observer.close()


async def test_a_read_is_not_left_waiting_behind_group_reads_that_just_finished(
    store: EventStore,
) -> None:
    """A group-read task that has finished stays in the reader's set until its done callback
    runs; a read arriving in between must still get a query of its own."""
    stream = stream_name()
    await store.append(stream, new_events(1), expected_version=NO_STREAM)
    finished = [asyncio.create_task(asyncio.sleep(0)) for _ in range(2)]
    await asyncio.gather(*finished)
    store._whole_streams._tasks.update(finished)  # white box: the window, held open
    async with asyncio.timeout(10):  # hung forever before
        assert [e.version for e in await store.read_stream(stream)] == [1]

"""Subscription: catch up from a position, then follow new commits; survive a dropped listener.

Each wait below is bounded (so a bug fails instead of hanging) but never timed: the test
proceeds the moment the awaited page arrives.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg

from eventstore import ANY, EventStore, RecordedEvent, Subscription

from .builders import new_events, stream_name

BOUND = 10.0  # seconds: a ceiling for a failing test, not a timing assumption


async def _next_page(pages: AsyncIterator[list[RecordedEvent]]) -> list[RecordedEvent]:
    return await asyncio.wait_for(anext(pages), BOUND)


async def test_subscription_catches_up_from_a_position_then_follows(store: EventStore) -> None:
    stream = stream_name()
    await store.append(stream, new_events(5), expected_version=ANY)
    start = (await store.read_stream(stream))[1].position
    pages = aiter(store.subscribe(after_position=start, poll_interval=3600))
    try:
        assert [e.version for e in await _next_page(pages)] == [3, 4, 5]
        await store.append(stream, new_events(2), expected_version=ANY)
        # poll_interval is an hour: only the NOTIFY can have woken the subscriber
        assert [e.version for e in await _next_page(pages)] == [6, 7]
    finally:
        await pages.aclose()


async def test_subscription_catches_up_in_pages(store: EventStore) -> None:
    for _ in range(5):
        await store.append(stream_name(), new_events(5), expected_version=ANY)
    pages = aiter(store.subscribe(page_size=10, poll_interval=3600))
    try:
        sizes = [len(await _next_page(pages)) for _ in range(3)]
    finally:
        await pages.aclose()
    assert sizes == [10, 10, 5]


async def test_subscription_falls_back_to_polling_when_no_notification_comes(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    pages = aiter(store.subscribe(poll_interval=0.05))
    try:
        waiting = asyncio.ensure_future(_next_page(pages))
        # A row that arrives without NOTIFY (as from a writer that does not announce).
        await pool.execute(
            "INSERT INTO events (stream_id, version, event_id, event_type, data)"
            " VALUES ($1, 1, $2, 'Silent', '{}')",
            stream_name(),
            uuid.uuid4(),
        )
        assert [e.type for e in await waiting] == ["Silent"]
    finally:
        await pages.aclose()


async def test_subscription_resumes_after_its_connection_drops(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    stream = stream_name()
    await store.append(stream, new_events(1), expected_version=ANY)
    subscription: Subscription = store.subscribe(poll_interval=3600)
    pages = aiter(subscription)
    try:
        assert len(await _next_page(pages)) == 1
        assert subscription.is_listening
        listener_pid = subscription.listener_pid
        await pool.execute("SELECT pg_terminate_backend($1)", listener_pid)
        await store.append(stream, new_events(3), expected_version=ANY)
        resumed = await _next_page(pages)
        assert [e.version for e in resumed] == [2, 3, 4]  # nothing lost, nothing repeated
        assert subscription.listener_pid not in (None, listener_pid)  # listening again
        await store.append(stream, new_events(1), expected_version=ANY)
        assert [e.version for e in await _next_page(pages)] == [5]
    finally:
        await pages.aclose()


async def test_commits_made_during_the_min_interval_arrive_together_in_one_page(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    waited: list[float] = []
    resume = asyncio.Event()

    async def pause(seconds: float) -> None:  # the test decides when the interval is over
        waited.append(seconds)
        await resume.wait()

    stream = stream_name()
    await store.append(stream, new_events(1), expected_version=ANY)
    subscription = Subscription(
        store, pool, after_position=0, page_size=100, poll_interval=3600, min_interval=60,
        pause=pause,
    )  # fmt: skip
    pages = aiter(subscription)
    try:
        assert [e.version for e in await _next_page(pages)] == [1]
        following = asyncio.ensure_future(_next_page(pages))
        for _ in range(4):  # four commits, four notifications, while the interval runs
            await store.append(stream, new_events(1), expected_version=ANY)
        [interval] = waited  # one wait, for what was left of the interval
        assert 0 < interval <= 60
        resume.set()
        assert [e.version for e in await following] == [2, 3, 4, 5]  # one read for all four
    finally:
        await pages.aclose()

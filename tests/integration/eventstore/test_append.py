"""Append: atomic, checked against an expected version, idempotent by event id."""

from __future__ import annotations

import asyncio

import pytest

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    DuplicateEventIdError,
    EventStore,
    WrongExpectedVersion,
)

from .builders import new_event, new_events, stream_name


async def test_append_to_new_stream_gives_versions_from_one(store: EventStore) -> None:
    stream = stream_name()
    result = await store.append(stream, new_events(3), expected_version=NO_STREAM)
    assert result.versions == (1, 2, 3)
    assert list(result.positions) == sorted(result.positions)
    assert [e.version for e in await store.read_stream(stream)] == [1, 2, 3]


async def test_append_of_several_events_is_atomic_when_version_conflicts(
    store: EventStore,
) -> None:
    stream = stream_name()
    await store.append(stream, new_events(1), expected_version=NO_STREAM)
    with pytest.raises(WrongExpectedVersion):
        await store.append(stream, new_events(5), expected_version=NO_STREAM)
    assert len(await store.read_stream(stream)) == 1


@pytest.mark.parametrize(
    ("existing", "expected", "accepted"),
    [
        (0, NO_STREAM, True),
        (1, NO_STREAM, False),
        (0, STREAM_EXISTS, False),
        (2, STREAM_EXISTS, True),
        (0, ANY, True),
        (3, ANY, True),
        (2, 2, True),
        (2, 1, False),
        (2, 3, False),
        (0, 0, True),
    ],
)
async def test_expected_version_is_checked(
    store: EventStore, existing: int, expected: object, accepted: bool
) -> None:
    stream = stream_name()
    if existing:
        await store.append(stream, new_events(existing), expected_version=ANY)
    append = store.append(stream, [new_event()], expected_version=expected)  # type: ignore[arg-type]
    if accepted:
        assert (await append).versions == (existing + 1,)
    else:
        with pytest.raises(WrongExpectedVersion, match=f"actual {existing}"):
            await append


async def test_conflict_error_names_stream_and_versions(store: EventStore) -> None:
    stream = stream_name()
    await store.append(stream, new_events(4), expected_version=NO_STREAM)
    with pytest.raises(WrongExpectedVersion) as caught:
        await store.append(stream, [new_event()], expected_version=3)
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (stream, 3, 4)
    assert str(caught.value) == f"wrong expected version 3 for stream {stream} (actual 4)"


async def test_concurrent_appends_with_same_expected_version_exactly_one_wins(
    store: EventStore,
) -> None:
    stream = stream_name()
    await store.append(stream, [new_event()], expected_version=NO_STREAM)
    outcomes = await asyncio.gather(
        *(store.append(stream, [new_event()], expected_version=1) for _ in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, AppendResult) for o in outcomes) == 1
    assert sum(isinstance(o, WrongExpectedVersion) for o in outcomes) == 19
    assert len(await store.read_stream(stream)) == 2


async def test_idempotent_append_returns_original_positions(store: EventStore) -> None:
    stream = stream_name()
    events = new_events(2)
    first = await store.append(stream, events, expected_version=NO_STREAM)
    await store.append(stream, new_events(1), expected_version=2)
    again = await store.append(stream, events, expected_version=NO_STREAM)
    assert (again.positions, again.versions, again.was_duplicate) == (
        first.positions,
        first.versions,
        True,
    )
    assert len(await store.read_stream(stream)) == 3


async def test_idempotent_append_when_two_identical_appends_race(store: EventStore) -> None:
    stream = stream_name()
    events = new_events(3)
    outcomes = await asyncio.gather(
        *(store.append(stream, events, expected_version=NO_STREAM) for _ in range(10))
    )
    assert {(o.positions, o.versions) for o in outcomes} == {(outcomes[0].positions, (1, 2, 3))}
    assert sum(not o.was_duplicate for o in outcomes) == 1
    assert len(await store.read_stream(stream)) == 3


async def test_idempotent_append_when_identical_appends_race_from_separate_pools(
    dsn: str,
) -> None:
    """Two processes (here: two stores with their own pools) racing the same append."""
    from eventstore import create_pool

    stream = stream_name()
    events = new_events(2)
    pools = [await create_pool(dsn, min_size=1, max_size=2) for _ in range(4)]
    try:
        stores = [EventStore(p) for p in pools]
        outcomes = await asyncio.gather(
            *(s.append(stream, events, expected_version=NO_STREAM) for s in stores)
        )
        for s in stores:
            await s.aclose()
        assert len({o.positions for o in outcomes}) == 1
        assert sum(not o.was_duplicate for o in outcomes) == 1
    finally:
        for p in pools:
            await p.close()


async def test_event_id_reused_by_a_different_append_is_refused(store: EventStore) -> None:
    event = new_event()
    await store.append(stream_name(), [event], expected_version=NO_STREAM)
    with pytest.raises(DuplicateEventIdError):
        await store.append(stream_name(), [event], expected_version=NO_STREAM)
    with pytest.raises(DuplicateEventIdError):
        await store.append(stream_name(), [event, new_event()], expected_version=ANY)


async def test_same_event_id_twice_in_one_append_is_refused(store: EventStore) -> None:
    event = new_event()
    with pytest.raises(DuplicateEventIdError):
        await store.append(stream_name(), [event, event], expected_version=ANY)


async def test_append_of_no_events_is_a_programming_error(store: EventStore) -> None:
    with pytest.raises(ValueError, match="at least one event"):
        await store.append(stream_name(), [], expected_version=ANY)

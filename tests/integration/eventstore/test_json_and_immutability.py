"""Data as jsonb through orjson, values jsonb cannot hold, and a log nobody can rewrite."""

from __future__ import annotations

import asyncpg
import pytest

from eventstore import ANY, EventStore, InvalidEventDataError

from .builders import new_event, stream_name


async def test_data_and_metadata_are_stored_as_jsonb(pool: asyncpg.Pool) -> None:
    types = await pool.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = 'events' AND column_name IN ('data', 'metadata')"
    )
    assert {r["data_type"] for r in types} == {"jsonb"}


async def test_nul_character_in_data_is_a_clear_error_and_stores_nothing(
    store: EventStore,
) -> None:
    with pytest.raises(InvalidEventDataError, match="NUL"):
        await store.append(stream_name(), [new_event(data={"x": "a\x00b"})], expected_version=ANY)
    with pytest.raises(InvalidEventDataError, match="NUL"):
        await store.append(stream_name(), [new_event(note="\x00")], expected_version=ANY)
    assert await store.read_all() == []


async def test_text_that_only_looks_like_a_nul_escape_is_stored(store: EventStore) -> None:
    stream = stream_name()
    looks_like = {"text": "\\u0000 is how JSON writes NUL", "k\\u0000": 1}
    await store.append(stream, [new_event(data=looks_like)], expected_version=ANY)
    assert (await store.read_stream(stream))[0].data == looks_like


@pytest.mark.parametrize(
    "bad",
    [{"n": 2**70}, {"s": "\ud800"}, {"o": object()}],
    ids=["int-beyond-64-bit", "lone-surrogate", "not-json"],
)
async def test_values_json_cannot_hold_are_a_clear_error(store: EventStore, bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidEventDataError):
        await store.append(stream_name(), [new_event(data=bad)], expected_version=ANY)


async def test_unicode_and_deep_nesting_round_trip(store: EventStore) -> None:
    stream = stream_name()
    nested: dict[str, object] = {"leaf": "ünïcødé ✓ 𝄞"}
    for _ in range(50):
        nested = {"down": nested}
    await store.append(stream, [new_event(data=nested)], expected_version=ANY)
    assert (await store.read_stream(stream))[0].data == nested


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET event_type = 'Rewritten'", "DELETE FROM events", "TRUNCATE events"],
)
async def test_events_cannot_be_updated_or_deleted(
    store: EventStore, pool: asyncpg.Pool, statement: str
) -> None:
    await store.append(stream_name(), [new_event()], expected_version=ANY)
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await pool.execute(statement)
    assert len(await store.read_all()) == 1

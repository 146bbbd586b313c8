"""EventStore: append to streams, read streams and the whole log, follow it as it grows."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import asyncpg
import orjson

from .batching import AppendRequest, EncodedEvent, GroupCommitter
from .driver_errors import translate_driver_errors
from .errors import DuplicateEventIdError, InvalidEventDataError
from .reads import GroupReader, PoolReader
from .records import AppendResult, ExpectedVersion, NewEvent, RecordedEvent
from .subscription import Subscription

_COLUMNS = "position, stream_id, version, event_id, event_type, data, metadata, recorded_at"

_READ_STREAM = f"""
SELECT {_COLUMNS} FROM events
 WHERE stream_id = $1 AND version > $2 AND version <= $3
 ORDER BY version LIMIT $4
"""
_READ_STREAMS = f"""
SELECT {_COLUMNS} FROM events WHERE stream_id = ANY($1::text[]) ORDER BY position
"""


def _read_all_query(*, data_of: bool, data_without: bool) -> str:
    """A page of the log ($1 after, $2 limit), with the data trimmed as the reader asks.

    `data_of` ($3): only events of these types carry their data and metadata; the others come
    with empty ones, so the server neither sends nor the client decodes what nobody reads.
    `data_without` (the next parameter): these top-level keys are left out of the data.
    """
    data, metadata = "data", "metadata"
    if data_without:
        data = f"(data - ${4 if data_of else 3}::text[])"
    if data_of:
        data = f"CASE WHEN event_type = ANY($3::text[]) THEN {data} ELSE '{{}}'::jsonb END"
        metadata = "CASE WHEN event_type = ANY($3::text[]) THEN metadata ELSE '{}'::jsonb END"
    return f"""
SELECT position, stream_id, version, event_id, event_type, {data}, {metadata}, recorded_at
  FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""


_READ_ALL = {
    (of, without): _read_all_query(data_of=of, data_without=without)
    for of in (False, True)
    for without in (False, True)
}
_FIND_EVENTS = f"""
SELECT {_COLUMNS} FROM events WHERE event_id = ANY($1::uuid[]) ORDER BY position
"""
_HEAD_POSITION = "SELECT coalesce(max(position), 0) FROM events"
_STREAM_VERSION = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1"

_MAX_VERSION = 2**31 - 1

# orjson writes a NUL character as the escape \u0000, which jsonb refuses. A backslash before
# the escape that is itself escaped (\\u0000 is the six visible characters) is allowed.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def encode_json(value: Any, *, what: str) -> bytes:
    """JSON bytes for jsonb, or InvalidEventDataError for what JSON or jsonb cannot hold."""
    try:
        payload = orjson.dumps(value)
    except TypeError as err:  # orjson.JSONEncodeError is a TypeError
        raise InvalidEventDataError(f"{what} is not JSON-serialisable: {err}") from None
    if b"\\u0000" in payload and _NUL_ESCAPE.search(payload):
        raise InvalidEventDataError(f"{what} contains a NUL character, which jsonb cannot store")
    return payload


def _encode(event: NewEvent) -> EncodedEvent:
    return EncodedEvent(
        event_id=event.event_id,
        type=event.type,
        data=encode_json(event.data, what=f"data of event {event.event_id}"),
        metadata=encode_json(event.metadata, what=f"metadata of event {event.event_id}"),
    )


def _record(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        position=row[0],
        stream_id=row[1],
        version=row[2],
        event_id=row[3],
        type=row[4],
        data=row[5],
        metadata=row[6],
        recorded_at=row[7],
    )


class EventStore:
    """A generic append-only log on PostgreSQL. Streams are opaque strings to it.

    Use as `async with EventStore(pool) as store:` (or call `aclose()`), so that the group
    commit writer finishes what is queued before the pool goes away.
    """

    def __init__(
        self, pool: asyncpg.Pool, *, max_batch_events: int = 1000, writers: int = 2
    ) -> None:
        """`writers`: group-commit batches in flight at once (at most half the pool's size)."""
        self._pool = pool
        self._reader = PoolReader(pool)
        self._whole_streams = GroupReader(self._reader, _READ_STREAMS)
        self._committer = GroupCommitter(pool, max_batch_events=max_batch_events, writers=writers)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._committer.close()
        await self._whole_streams.close()
        await self._reader.drain()

    @property
    def batches_written(self) -> int:
        """How many group-commit transactions this store has committed."""
        return self._committer.batches_written

    @property
    def whole_stream_queries(self) -> int:
        """How many queries the whole-stream reads have taken (see GroupReader)."""
        return self._whole_streams.queries

    @property
    def state_reads(self) -> int:
        """How many batches read their streams' state before the fast path's write: those with
        a request that does not name an exact version (see `versions_named_by`)."""
        return self._committer.state_reads

    @property
    def slow_batches(self) -> int:
        """How many of them the fast path handed to the locked path (see batching.py)."""
        return self._committer.slow_batches

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: ExpectedVersion
    ) -> AppendResult:
        """Append `events` to `stream_id` atomically, if the stream is at `expected_version`.

        Appending event ids that were already stored by the same append returns the original
        positions and versions (`was_duplicate=True`) and writes nothing.
        Raises WrongExpectedVersion (retry after reloading), DuplicateEventIdError,
        InvalidEventDataError, StoreUnavailableError.
        """
        if not events:
            raise ValueError("append needs at least one event")
        ids = [e.event_id for e in events]
        if len(set(ids)) != len(ids):
            raise DuplicateEventIdError(f"the same event id twice in one append to {stream_id}")
        request = AppendRequest(
            stream_id=stream_id,
            events=tuple(_encode(e) for e in events),
            expected_version=expected_version,
        )
        return await self._committer.submit(request)

    async def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        up_to_version: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Events of one stream with after_version < version <= up_to_version, in order.

        A whole stream (the defaults) is read together with the others asked for meanwhile,
        in one query (see GroupReader).
        """
        upper = _MAX_VERSION if up_to_version is None else up_to_version
        async with translate_driver_errors():
            if after_version == 0 and up_to_version is None and limit is None:
                rows = await self._whole_streams.read(stream_id)
            else:
                rows = await self._reader.fetch(
                    _READ_STREAM, stream_id, after_version, upper, limit
                )
        return [_record(r) for r in rows]

    async def read_streams(self, stream_ids: Iterable[str]) -> list[RecordedEvent]:
        """Every event of the given streams, interleaved in log order."""
        async with translate_driver_errors():
            rows = await self._reader.fetch(_READ_STREAMS, list(stream_ids))
        return [_record(r) for r in rows]

    async def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int = 1000,
        data_of: Collection[str] | None = None,
        data_without: Collection[str] = (),
    ) -> list[RecordedEvent]:
        """One page of the whole log: up to `limit` events with position > after_position.

        `data_of`: only events of these types carry their data and metadata; the others come
        with empty ones (every event is still there, in order, for positions and checkpoints).
        `data_without`: top-level keys left out of every event's data (bulky parts a reader
        never looks at: they are neither sent nor decoded).
        """
        args: list[object] = [after_position, limit]
        if data_of is not None:
            args.append(list(data_of))
        if data_without:
            args.append(list(data_without))
        query = _READ_ALL[(data_of is not None, bool(data_without))]
        async with translate_driver_errors():
            rows = await self._reader.fetch(query, *args)
        return [_record(r) for r in rows]

    async def find_events(self, event_ids: Iterable[UUID]) -> list[RecordedEvent]:
        """The stored events with these ids, in log order (absent ids are left out)."""
        async with translate_driver_errors():
            rows = await self._reader.fetch(_FIND_EVENTS, list(event_ids))
        return [_record(r) for r in rows]

    async def head_position(self) -> int:
        """The position of the last committed event (0 for an empty log)."""
        async with translate_driver_errors():
            [(position,)] = await self._reader.fetch(_HEAD_POSITION)
        return int(position)

    async def stream_version(self, stream_id: str) -> int:
        """The version of a stream's last event (0 when the stream does not exist)."""
        async with translate_driver_errors():
            [(version,)] = await self._reader.fetch(_STREAM_VERSION, stream_id)
        return int(version)

    def subscribe(
        self,
        *,
        after_position: int = 0,
        page_size: int = 1000,
        poll_interval: float = 1.0,
        data_of: Collection[str] | None = None,
        data_without: Collection[str] = (),
        min_interval: float = 0.0,
    ) -> Subscription:
        """Catch up from `after_position`, then follow new events as they commit (in pages).

        `data_of`, `data_without`: as for `read_all`. `min_interval`: once caught up, reads
        begin at least this far apart (see Subscription).
        """
        return Subscription(
            self,
            self._pool,
            after_position=after_position,
            page_size=page_size,
            poll_interval=poll_interval,
            data_of=data_of,
            data_without=data_without,
            min_interval=min_interval,
        )

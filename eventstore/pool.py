"""Connection pools with jsonb encoded and decoded by orjson, in binary format."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

_log = logging.getLogger(__name__)

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection of our own or one borrowed from a pool: both run the same statements."""

# jsonb's binary wire format is a version byte (1) followed by the JSON text.
_JSONB_VERSION = b"\x01"


def encode_jsonb(value: Any) -> bytes:
    """Encode for a jsonb parameter; bytes are taken as JSON already encoded by orjson."""
    if isinstance(value, bytes):
        return _JSONB_VERSION + value
    return _JSONB_VERSION + orjson.dumps(value)


def decode_jsonb(raw: bytes) -> Any:
    return orjson.loads(raw[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    """Register the jsonb codec on a new connection (asyncpg's documented `init=` idiom)."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=encode_jsonb,
        decoder=decode_jsonb,
        format="binary",
    )


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    command_timeout: float = 30.0,
    custom_plans: bool = True,
) -> asyncpg.Pool:
    """Create a pool whose connections speak jsonb through orjson.

    `custom_plans`: PostgreSQL plans every statement for its parameters (see below). The
    store and the projections need it; queries over large tables are faster without it
    (planning cost ~1-2 ms a query at 200k runs), and their plans do not go stale the same way.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        command_timeout=command_timeout,
        # asyncpg prepares every statement, and after five runs PostgreSQL may keep a generic
        # plan for the connection's life. A generic plan made while a table was small scans it
        # whole (`event_id = ANY($1)`: 4 ms a batch at 30k events, growing with the log).
        # A custom plan costs a little planning per call and follows the table as it grows.
        server_settings={"plan_cache_mode": "force_custom_plan"} if custom_plans else None,
    )
    assert pool is not None
    return pool


async def connect(dsn: str, *, connect_timeout: float = 10.0) -> asyncpg.Connection:
    """One connection with the same codecs as the pool's (for LISTEN, locks, tests)."""
    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    await init_connection(conn)
    return conn


async def close_pool(pool: asyncpg.Pool, *, grace_s: float = 10.0) -> None:
    """Close gracefully, but never hang a shutdown on a connection someone failed to release."""
    try:
        async with asyncio.timeout(grace_s):
            await pool.close()
    except TimeoutError:
        _log.warning("pool did not close within %.0fs; terminating its connections", grace_s)
        pool.terminate()

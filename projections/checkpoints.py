"""Checkpoint rows: where each projection is, its heartbeat and its last error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eventstore.pool import Connection

_ENSURE = """
INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING
"""
_LOCK_POSITION = "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE"
_ADVANCE = """
UPDATE projection_checkpoints
   SET position = $2, updated_at = clock_timestamp(), heartbeat_at = clock_timestamp(),
       runner = $3, last_error = NULL, last_error_at = NULL, failing_position = NULL
 WHERE name = $1
"""
_HEARTBEAT = """
UPDATE projection_checkpoints SET heartbeat_at = clock_timestamp(), runner = $2 WHERE name = $1
"""
_RECORD_ERROR = """
UPDATE projection_checkpoints
   SET last_error = $2, last_error_at = clock_timestamp(), failing_position = $3
 WHERE name = $1
"""
_SELECT_ALL = """
SELECT name, position, updated_at, heartbeat_at, runner, last_error, last_error_at,
       failing_position
  FROM projection_checkpoints ORDER BY name
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    name: str
    position: int
    updated_at: datetime
    heartbeat_at: datetime
    runner: str | None
    last_error: str | None
    last_error_at: datetime | None
    failing_position: int | None


async def ensure(conn: Connection, name: str) -> None:
    await conn.execute(_ENSURE, name)


async def lock_position(conn: Connection, name: str) -> int:
    """The checkpoint, locked until the caller's transaction ends (one writer at a time)."""
    position = await conn.fetchval(_LOCK_POSITION, name)
    return int(position)


async def advance(conn: Connection, name: str, position: int, runner: str) -> None:
    await conn.execute(_ADVANCE, name, position, runner)


async def heartbeat(conn: Connection, name: str, runner: str) -> None:
    await conn.execute(_HEARTBEAT, name, runner)


async def record_error(conn: Connection, name: str, error: str, position: int) -> None:
    await conn.execute(_RECORD_ERROR, name, error[:2000], position)


async def read_all(conn: Connection) -> list[Checkpoint]:
    return [Checkpoint(**dict(row)) for row in await conn.fetch(_SELECT_ALL)]

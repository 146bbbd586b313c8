"""Who runs each projection: the advisory locks in pg_locks and the checkpoint rows.

A runner holds a session-level advisory lock keyed by
`hashtextextended('runledger.projection.' || name, 0)` while it is active; a standby waits in
`pg_advisory_lock` for the same key (projections/runner.py). pg_locks shows a bigint key as
classid (high 32 bits) and objid (low 32 bits), so the key is put together again here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg

from projections.registry import all_projections

from .conftest import POLL_S

_ELECTIONS = """
SELECT p.name,
       count(l.pid) FILTER (WHERE l.granted)     AS active,
       count(l.pid) FILTER (WHERE NOT l.granted) AS waiting,
       coalesce(array_agg(l.pid) FILTER (WHERE l.granted), '{}') AS active_backends
  FROM unnest($1::text[]) AS p(name)
  LEFT JOIN pg_locks l
    ON l.locktype = 'advisory'
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND ((l.classid::bigint << 32) | l.objid::bigint)
       = hashtextextended('runledger.projection.' || p.name, 0)
 GROUP BY p.name ORDER BY p.name
"""
_RUNNERS = "SELECT name, position, runner FROM projection_checkpoints ORDER BY name"


def projection_names() -> list[str]:
    return [projection.name for projection in all_projections()]


@dataclass(frozen=True, slots=True, kw_only=True)
class Election:
    """One projection's lock: how many sessions hold it (must be 1) and how many wait."""

    name: str
    active: int
    waiting: int
    active_backends: tuple[int, ...]


async def elections(conn: asyncpg.Connection) -> dict[str, Election]:
    rows = await conn.fetch(_ELECTIONS, projection_names())
    return {
        row["name"]: Election(
            name=row["name"],
            active=row["active"],
            waiting=row["waiting"],
            active_backends=tuple(row["active_backends"]),
        )
        for row in rows
    }


async def wait_for_elections(
    conn: asyncpg.Connection, holds: Callable[[dict[str, Election]], bool], *, within_s: float
) -> dict[str, Election]:
    """Read the elections until `holds(elections)`; return them."""
    async with asyncio.timeout(within_s):
        while True:
            current = await elections(conn)
            if holds(current):
                return current
            await asyncio.sleep(POLL_S)


def one_active_each(current: dict[str, Election], *, waiting: int) -> bool:
    """Every projection has exactly one active runner and `waiting` standbys."""
    return len(current) == len(projection_names()) and all(
        e.active == 1 and e.waiting == waiting for e in current.values()
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    name: str
    position: int
    runner_pid: int | None
    """The OS process that last advanced (or heartbeat) this checkpoint: runner is host:pid."""


async def checkpoints(conn: asyncpg.Connection) -> dict[str, Checkpoint]:
    found = {}
    for row in await conn.fetch(_RUNNERS):
        runner = row["runner"]
        pid = int(runner.rsplit(":", 1)[1]) if runner else None
        found[row["name"]] = Checkpoint(name=row["name"], position=row["position"], runner_pid=pid)
    return found


async def wait_for_checkpoints(
    conn: asyncpg.Connection,
    holds: Callable[[dict[str, Checkpoint]], bool],
    *,
    within_s: float,
) -> dict[str, Checkpoint]:
    async with asyncio.timeout(within_s):
        while True:
            current = await checkpoints(conn)
            if len(current) == len(projection_names()) and holds(current):
                return current
            await asyncio.sleep(POLL_S)


def all_run_by(pids: Iterable[int], *, past: int) -> Callable[[dict[str, Checkpoint]], bool]:
    """Every checkpoint advanced past `past` by one of `pids`."""
    allowed = set(pids)

    def holds(current: dict[str, Checkpoint]) -> bool:
        return all(c.runner_pid in allowed and c.position > past for c in current.values())

    return holds

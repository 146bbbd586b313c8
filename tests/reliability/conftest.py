"""Resources of the reliability scenarios: databases, served processes, and waiting on them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.embedded_db import EmbeddedPostgres
from eventstore import apply_migrations
from eventstore.pool import connect
from tests.databases import SQL_DIR

from .processes import BOUND_S, Process, Served, free_port

POLL_S = 0.05
"""How often a condition held by another process (a checkpoint) is read again."""


@pytest.fixture(name="embedded")
def _embedded(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, which the test may stop and start again."""
    server = EmbeddedPostgres(tmp_path / "pg", port=5494)
    server.start()
    yield server
    server.stop()


async def migrated(dsn: str) -> None:
    conn = await connect(dsn)
    try:
        await apply_migrations(conn, SQL_DIR)
    finally:
        await conn.close()


async def checkpoints_at_head(dsn: str, *, within_s: float = BOUND_S) -> int:
    """Wait until every projection checkpoint has reached the log head; return the head."""
    conn = await connect(dsn)
    try:
        async with asyncio.timeout(within_s):
            while True:
                head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
                behind = await conn.fetchval(
                    "SELECT count(*) FROM projection_checkpoints WHERE position <> $1", head
                )
                known = await conn.fetchval("SELECT count(*) FROM projection_checkpoints")
                if known and not behind:
                    return int(head)
                await asyncio.sleep(POLL_S)
    finally:
        await conn.close()


@pytest.fixture(name="children")
def _children() -> Iterator[list[Process]]:
    """The `runledger` processes a test starts: any still running at the end is killed."""
    started: list[Process] = []
    yield started
    for child in started:
        if child.process.poll() is None:
            child.kill()


@pytest.fixture(name="served")
async def _served(dsn: str, tmp_path: Path, children: list[Process]) -> Served:
    """One `runledger serve` on this test's database (killed at the end if still running)."""
    served = await asyncio.to_thread(Served, dsn, tmp_path, port=free_port())
    children.append(served)
    return served

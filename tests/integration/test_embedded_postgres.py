"""The embedded PostgreSQL from the wheel: started here even when a local server runs, so the
zero-set-up path of `runledger serve` and of the test suite never rots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from api.embedded_db import EmbeddedPostgres, drop_stale_pids
from eventstore import ANY, EventStore, apply_migrations, create_pool
from tests.databases import SQL_DIR
from tests.integration.eventstore.builders import new_event


async def test_embedded_postgres_starts_migrates_stores_and_stops(tmp_path: Path) -> None:
    embedded = EmbeddedPostgres(tmp_path / "data", port=5491)
    dsn = embedded.start()
    try:
        conn = await asyncpg.connect(dsn)
        try:
            assert (await conn.fetchval("SHOW server_version")).startswith("18")
            await apply_migrations(conn, SQL_DIR)
        finally:
            await conn.close()
        pool = await create_pool(dsn, min_size=1, max_size=2)
        async with EventStore(pool) as store:
            result = await store.append("thing-1", [new_event()], expected_version=ANY)
            assert [e.position for e in await store.read_all()] == list(result.positions)
        await pool.close()
    finally:
        embedded.stop()
    assert not (tmp_path / "data" / "pgdata" / "postmaster.pid").exists()


def test_stale_pid_of_a_killed_process_is_dropped(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    pid_file = tmp_path / ".handle_pids.json"
    pid_file.write_text(json.dumps([dead_pid, os.getpid()]))
    drop_stale_pids(tmp_path)
    assert json.loads(pid_file.read_text()) == [os.getpid()]

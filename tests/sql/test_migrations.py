"""Migrations: applied in order on an empty database, recorded, safe to run twice or at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from eventstore import MigrationError, apply_migrations
from eventstore.migrate import load_migrations
from tests import databases


@pytest.fixture(name="empty_dsn")
async def _empty_dsn(admin_dsn: str) -> AsyncIterator[str]:
    name = databases.unique_name("runledger_empty")
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield databases.with_database(admin_dsn, name)
    await databases.drop_database(admin_dsn, name)


async def _applied(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")
    return [r["name"] for r in rows]


async def test_all_migrations_apply_to_an_empty_database_in_order(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        names = [m.name for m in load_migrations(databases.SQL_DIR)]
        assert await apply_migrations(conn, databases.SQL_DIR) == names
        assert await _applied(conn) == sorted(names)
    finally:
        await conn.close()


async def test_migrations_run_twice_apply_nothing_the_second_time(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await apply_migrations(conn, databases.SQL_DIR)
        assert await apply_migrations(conn, databases.SQL_DIR) == []
    finally:
        await conn.close()


async def test_migrations_from_two_processes_at_once_apply_each_file_once(empty_dsn: str) -> None:
    conns = [await asyncpg.connect(empty_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c, databases.SQL_DIR) for c in conns))
        names = [m.name for m in load_migrations(databases.SQL_DIR)]
        assert sorted(results, key=len) == [[], [], names]
    finally:
        for conn in conns:
            await conn.close()


async def test_a_changed_applied_migration_is_refused(empty_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first_table (id int);")
    conn = await asyncpg.connect(empty_dsn)
    try:
        await apply_migrations(conn, tmp_path)
        (tmp_path / "0001_first.sql").write_text("CREATE TABLE first_table (id bigint);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, tmp_path)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(
    empty_dsn: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT 1/0;")
    conn = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(MigrationError, match=re.escape("0002_bad.sql failed")):
            await apply_migrations(conn, tmp_path)
        assert await _applied(conn) == ["0001_good.sql"]
        assert await conn.fetchval("SELECT to_regclass('half')") is None
    finally:
        await conn.close()


def test_badly_named_migration_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "create_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=re.escape("NNNN_some_change.sql")):
        load_migrations(tmp_path)


def test_every_migration_starts_with_a_two_line_comment() -> None:
    for migration in load_migrations(databases.SQL_DIR):
        first_two = migration.sql.splitlines()[:2]
        assert all(line.startswith("--") for line in first_two), migration.name


async def test_schema_the_app_expects_exists(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        constraints = {
            r["conname"]
            for r in await conn.fetch(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'events'::regclass"
            )
        }
        assert {"events_pkey", "events_stream_version_key", "events_event_id_key"} <= constraints
        options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'events'")
        assert "toast_tuple_target=8160" in options
    finally:
        await conn.close()

"""Where the tests find PostgreSQL, and how each test gets a fresh database of its own.

Order: TEST_DATABASE_URL, else DATABASE_URL, else the server on 127.0.0.1:5432 when it answers,
else an embedded PostgreSQL started for the test session. Always a real server.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from api.embedded_db import EmbeddedPostgres
from eventstore import apply_migrations

LOCAL_SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def with_database(dsn: str, database: str) -> str:
    """The same server address with another database name."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


async def _answers(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def find_server() -> tuple[str, EmbeddedPostgres | None]:
    """An admin DSN for the tests' server, and the embedded server if one had to be started."""
    configured = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        return configured, None
    if asyncio.run(_answers(LOCAL_SERVER_DSN)):
        return LOCAL_SERVER_DSN, None
    embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="runledger-test-pg-")))
    return embedded.start(), embedded


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


async def create_template(admin_dsn: str) -> str:
    """A database with every migration applied, to clone for each test."""
    name = unique_name("runledger_tpl")
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(admin_dsn, name))
    try:
        await apply_migrations(conn, SQL_DIR)
    finally:
        await conn.close()
    return name


async def clone_database(admin_dsn: str, template: str) -> str:
    name = unique_name("runledger_t")
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    return name


async def drop_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()

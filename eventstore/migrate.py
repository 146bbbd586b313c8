"""Apply the numbered SQL migrations in order, once each, recorded in `schema_migrations`.

Safe to run twice (applied files are skipped) and from two processes at once: a session-level
advisory lock makes the second runner wait, then find the work done.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from .errors import MigrationError

# Any constant works as long as every runner uses the same one; this one spells "migrate".
_MIGRATION_LOCK_KEY = 0x6D696772617465

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT schema_migrations_pkey PRIMARY KEY (name)
)
"""
_SELECT_APPLIED = "SELECT name, checksum FROM schema_migrations"
_INSERT_APPLIED = "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    """The migration files of `directory`, in number order; a badly named .sql file is an error."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        if not _FILE_NAME.match(path.name):
            raise MigrationError(f"migration file {path.name} is not named NNNN_some_change.sql")
        migrations.append(Migration(name=path.name, sql=path.read_text(encoding="utf-8")))
    numbers = [m.name[:4] for m in migrations]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two migration files share a number in {directory}")
    return migrations


async def apply_migrations(conn: asyncpg.Connection, directory: Path) -> list[str]:
    """Apply pending migrations from `directory`; return the names applied by this call."""
    migrations = load_migrations(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = {row["name"]: row["checksum"] for row in await conn.fetch(_SELECT_APPLIED)}
        done = []
        for migration in migrations:
            recorded = applied.get(migration.name)
            if recorded is None:
                await _apply_one(conn, migration)
                done.append(migration.name)
            elif recorded != migration.checksum:
                raise MigrationError(
                    f"migration {migration.name} changed after it was applied; "
                    "applied files are never edited, add a new one"
                )
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(_INSERT_APPLIED, migration.name, migration.checksum)
    except asyncpg.PostgresError as err:
        raise MigrationError(f"migration {migration.name} failed: {err}") from err

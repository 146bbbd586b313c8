"""Resources for the tests: a real PostgreSQL, a fresh database per test, a pool and a store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio

from eventstore import EventStore, create_pool
from tests import databases


@pytest.fixture(name="admin_dsn", scope="session")
def _admin_dsn() -> Iterator[str]:
    dsn, embedded = databases.find_server()
    yield dsn
    if embedded is not None:
        embedded.stop()


@pytest_asyncio.fixture(name="template_db", scope="session", loop_scope="session")
async def _template_db(admin_dsn: str) -> AsyncIterator[str]:
    name = await databases.create_template(admin_dsn)
    yield name
    await databases.drop_database(admin_dsn, name)


@pytest.fixture(name="dsn")
async def _dsn(admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A database of this test's own, cloned from the migrated template, dropped afterwards."""
    name = await databases.clone_database(admin_dsn, template_db)
    yield databases.with_database(admin_dsn, name)
    await databases.drop_database(admin_dsn, name)


@pytest.fixture(name="pool")
async def _pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(dsn, min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture(name="store")
async def _store(pool: asyncpg.Pool) -> AsyncIterator[EventStore]:
    async with EventStore(pool) as store:
        yield store

"""A database that goes away: 503 with Retry-After, nothing half-written, recovery by itself.

Uses an embedded PostgreSQL that the test starts, so that it can stop and start it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from api.app import create_app
from api.embedded_db import EmbeddedPostgres
from eventstore import apply_migrations
from tests.databases import SQL_DIR

from .conftest import AUTH, Client, TickingClock, make_config
from .deliveries import new_run_id


@pytest.fixture(name="embedded")
def _embedded(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "outage", port=5493)
    server.start()
    yield server
    server.stop()


async def _kickoff(client: Client) -> int:
    response = await client.post(
        "/runs", json={"run_id": new_run_id(), "client_id": "acme"}, headers=AUTH
    )
    return response.status


async def test_database_down_answers_503_with_retry_after_and_recovers_by_itself(
    embedded: EmbeddedPostgres, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    dsn = embedded.dsn()
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn, SQL_DIR)
    await conn.close()
    config = make_config(dsn, pool_min_size=1, pool_max_size=2, retry_after_s=7)
    client = await aiohttp_client(create_app(config, clock=TickingClock()))
    assert await _kickoff(client) == 201

    embedded.stop()
    response = await client.post(
        "/runs", json={"run_id": new_run_id(), "client_id": "acme"}, headers=AUTH
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    body = await response.json()
    assert body["error"]["code"] == "database_unavailable"
    assert "Traceback" not in str(body)
    assert "asyncpg" not in str(body)
    health = await client.get("/health")
    assert (health.status, (await health.json())["status"]) == (503, "degraded")
    assert health.headers["Retry-After"] == "7"
    metrics = await client.get("/metrics")  # still answers, and says the database is away
    assert metrics.status == 200
    assert "runledger_database_up 0.0" in await metrics.text()
    for query in ("/runs", f"/runs/{new_run_id()}", "/reports/clients"):
        answer = await client.get(query, headers=AUTH)
        assert (answer.status, answer.headers["Retry-After"]) == (503, "7"), query

    embedded.start()
    # A pooled connection may still be the dead one for one more request; no restart needed.
    statuses = [await _kickoff(client) for _ in range(3)]
    assert 201 in statuses
    assert set(statuses) <= {201, 503}
    assert (await client.get("/health")).status == 200

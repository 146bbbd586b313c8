"""`GET /health`: the database, each projection's lag and heartbeat, the integrity check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from api.app import create_app
from api.keys import INTEGRITY

from .conftest import AUTH, Client, TickingClock, make_config
from .deliveries import new_run_id


async def _kickoff(client: Client) -> tuple[str, int]:
    run_id = new_run_id()
    answer = await client.post("/runs", json={"run_id": run_id, "client_id": "acme"}, headers=AUTH)
    assert answer.status == 201
    return run_id, (await answer.json())["position"]


async def _caught_up(client: Client, position: int) -> None:
    answer = await client.get(f"/runs?min_position={position}", headers=AUTH)
    assert answer.status == 200


async def test_health_is_ok_with_every_projection_listed_and_needs_no_token(
    client: Client,
) -> None:
    _, position = await _kickoff(client)
    await _caught_up(client, position)
    answer = await client.get("/health")
    body = await answer.json()
    assert (answer.status, body["status"]) == (200, "ok")
    assert body["database"] == {"status": "ok", "head_position": position}
    projected = {p["name"]: (p["status"], p["lag"]) for p in body["projections"]}
    assert projected["run_records"] == ("ok", 0)
    assert body["check"] is None  # the background check is off in these tests


async def test_health_is_degraded_when_a_projection_is_failing(
    dsn: str, pool: asyncpg.Pool, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    # No runner in this app: the failure written below stays as written.
    app = create_app(make_config(dsn, run_projections=False), clock=TickingClock())
    client = await aiohttp_client(app)
    _, position = await _kickoff(client)
    await pool.execute(
        "INSERT INTO projection_checkpoints (name, position, last_error, failing_position)"
        " VALUES ('run_records', 0, 'boom', $1)",
        position,
    )
    answer = await client.get("/health")
    body = await answer.json()
    assert (answer.status, body["status"]) == (503, "degraded")
    [run_records] = [p for p in body["projections"] if p["name"] == "run_records"]
    assert (run_records["status"], run_records["lag"]) == ("stuck", position)
    assert run_records["problem"] == f"failing at position {position}"
    assert answer.headers["Retry-After"]


async def test_health_reports_the_check_and_is_degraded_when_it_found_drift(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id, position = await _kickoff(client)
    await _caught_up(client, position)
    monitor = client.app[INTEGRITY]
    assert (await monitor.run_once()).status == "ok"
    healthy = await (await client.get("/health")).json()
    assert (healthy["status"], healthy["check"]["status"]) == ("ok", "ok")
    assert healthy["check"]["runs_checked"] == 1

    await pool.execute("UPDATE run_records SET status = 'failed' WHERE run_id = $1", run_id)
    outcome = await monitor.run_once()
    assert (outcome.status, outcome.differences) == ("drift", 1)
    answer = await client.get("/health")
    body = await answer.json()
    assert (answer.status, body["status"], body["check"]["status"]) == (503, "degraded", "drift")
    assert run_id in body["check"]["sample"][0]

"""`POST /runs`: the only place a run record comes to exist (API.md, every row)."""

from __future__ import annotations

import asyncio

import asyncpg

from .conftest import AUTH, Client
from .deliveries import new_run_id


def kickoff_body(run_id: str, **extra: object) -> dict[str, object]:
    return {
        "run_id": run_id,
        "client_id": "acme-recruiting",
        "actor_id": "Hk7sPq2VnR4mZt8Lc",
        "task_id": None,
        "input": {"profiles": ["https://www.linkedin.com/in/someone"], "maxPosts": 50},
        "requested_by": "harvest-scheduler",
        **extra,
    }


async def _event_types(pool: asyncpg.Pool, stream: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY position", stream
    )
    return [r["event_type"] for r in rows]


async def test_new_run_is_created_with_201_and_run_created_event(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    response = await client.post("/runs", json=kickoff_body(run_id), headers=AUTH)
    assert response.status == 201
    record = await response.json()
    assert {k: record[k] for k in ("run_id", "client_id", "status", "version", "event_count")} == {
        "run_id": run_id,
        "client_id": "acme-recruiting",
        "status": "created",
        "version": 1,
        "event_count": 1,
    }
    assert record["position"] >= 1
    assert record["created_at"].endswith("+00:00")
    assert await _event_types(pool, f"run-{run_id}") == ["RunCreated"]


async def test_same_request_again_by_body_answers_200_with_same_record_and_no_event(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    first = await client.post("/runs", json=kickoff_body(run_id), headers=AUTH)
    again = await client.post("/runs", json=kickoff_body(run_id), headers=AUTH)
    assert (first.status, again.status) == (201, 200)
    assert await again.json() == await first.json()
    assert await _event_types(pool, f"run-{run_id}") == ["RunCreated"]


async def test_same_request_again_by_idempotency_key_answers_200(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    headers = {**AUTH, "Idempotency-Key": "kick-42"}
    first = await client.post("/runs", json=kickoff_body(run_id), headers=headers)
    again = await client.post("/runs", json=kickoff_body(run_id), headers=headers)
    assert (first.status, again.status) == (201, 200)
    assert (await again.json())["position"] == (await first.json())["position"]
    assert await _event_types(pool, f"run-{run_id}") == ["RunCreated"]


async def test_run_created_by_a_different_request_answers_409_duplicate_creation(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await client.post("/runs", json=kickoff_body(run_id), headers=AUTH)
    other = await client.post("/runs", json=kickoff_body(run_id, client_id="other"), headers=AUTH)
    assert other.status == 409
    body = await other.json()
    assert body["error"]["code"] == "duplicate_creation"
    assert body["position"] > 0
    assert await _event_types(pool, f"run-{run_id}") == ["RunCreated", "UpdateRejected"]
    again = await client.post("/runs", json=kickoff_body(run_id, client_id="other"), headers=AUTH)
    assert again.status == 409  # the first answer again, and no second rejection
    assert (await again.json())["position"] == body["position"]
    assert await _event_types(pool, f"run-{run_id}") == ["RunCreated", "UpdateRejected"]


async def test_invalid_kickoff_body_answers_422_naming_each_bad_field(
    client: Client, pool: asyncpg.Pool
) -> None:
    response = await client.post(
        "/runs",
        json={"run_id": "has spaces", "actor_id": 7, "input": [], "clientId": "typo"},
        headers=AUTH,
    )
    assert response.status == 422
    details = (await response.json())["error"]["details"]
    assert set(details) == {"run_id", "client_id", "actor_id", "input", "clientId"}
    assert await pool.fetchval("SELECT count(*) FROM events") == 0


async def test_fifty_concurrent_identical_kickoffs_create_exactly_one_run(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    responses = await asyncio.gather(
        *(client.post("/runs", json=kickoff_body(run_id), headers=AUTH) for _ in range(50))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 49 + [201]
    assert len({(await r.json())["position"] for r in responses}) == 1
    assert await _event_types(pool, f"run-{run_id}") == ["RunCreated"]


async def test_fifty_concurrent_different_kickoffs_create_one_run_and_reject_the_rest(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    responses = await asyncio.gather(
        *(
            client.post("/runs", json=kickoff_body(run_id, client_id=f"c{i}"), headers=AUTH)
            for i in range(50)
        )
    )
    assert sorted(r.status for r in responses) == [201] + [409] * 49
    types = await _event_types(pool, f"run-{run_id}")
    assert types == ["RunCreated"] + ["UpdateRejected"] * 49
    versions = await pool.fetch(
        "SELECT version FROM events WHERE stream_id = $1 ORDER BY version", f"run-{run_id}"
    )
    assert [r["version"] for r in versions] == list(range(1, 51))

"""`POST /runs/{run_id}/results`: metrics for a created run; a missing record is a diagnostic."""

from __future__ import annotations

import asyncpg

from .conftest import AUTH, Client
from .deliveries import new_run_id


async def kickoff(client: Client, run_id: str) -> None:
    response = await client.post(
        "/runs", json={"run_id": run_id, "client_id": "acme"}, headers=AUTH
    )
    assert response.status == 201


async def report(
    client: Client, run_id: str, metrics: dict[str, object], **headers: str
) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = await client.post(
        f"/runs/{run_id}/results", json={"metrics": metrics}, headers={**AUTH, **headers}
    )
    return response.status, await response.json()


async def test_results_are_recorded_with_200_and_the_run_record(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    status, record = await report(client, run_id, {"posts_harvested": 184, "errors": 0})
    assert status == 200
    assert record["metrics"] == {"errors": 0.0, "posts_harvested": 184.0}
    assert record["position"] > 0
    assert record["status"] == "created"  # results never change the status


async def test_later_report_replaces_metrics_of_the_same_names(client: Client) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    await report(client, run_id, {"posts_harvested": 10, "errors": 2})
    _, record = await report(client, run_id, {"posts_harvested": 184})
    assert record["metrics"] == {"errors": 2.0, "posts_harvested": 184.0}


async def test_same_report_again_adds_no_event(client: Client, pool: asyncpg.Pool) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    first = await report(client, run_id, {"posts_harvested": 5}, **{"Idempotency-Key": "r-1"})
    again = await report(client, run_id, {"posts_harvested": 5}, **{"Idempotency-Key": "r-1"})
    assert again == first
    assert (
        await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"run-{run_id}")
        == 2
    )


async def test_results_for_run_never_created_answer_404_missing_run_record(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    status, answer = await report(client, run_id, {"posts_harvested": 1})
    assert (status, answer["error"]["code"]) == (404, "missing_run_record")
    assert (
        await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"orphan-{run_id}")
        == 1
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"run-{run_id}")
        == 0
    )


async def test_invalid_results_answer_422_naming_each_bad_field(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    status, answer = await report(
        client, run_id, {"negative": -1, "text": "7", "flag": True, "bad name": 1}
    )
    assert status == 422
    assert set(answer["error"]["details"]) == {
        "metrics.negative",
        "metrics.text",
        "metrics.flag",
        "metrics.bad name",
    }
    assert await pool.fetchval("SELECT count(*) FROM events") == 1


async def test_commands_without_the_api_token_answer_401(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = await client.post(
            "/runs", json={"run_id": "a", "client_id": "b"}, headers=headers
        )
        assert response.status == 401
        response = await client.post("/runs/a/results", json={"metrics": {"a": 1}}, headers=headers)
        assert response.status == 401

"""`GET /runs/{run_id}`, `GET /runs` and the reports, read from projections after a write."""

from __future__ import annotations

import csv
import io
from typing import Any

import asyncpg

from .conftest import AUTH, Client
from .deliveries import delivery, new_run_id
from .test_webhooks import deliver


async def kickoff(client: Client, run_id: str, client_id: str = "acme") -> int:
    response = await client.post(
        "/runs", json={"run_id": run_id, "client_id": client_id}, headers=AUTH
    )
    assert response.status == 201
    position: int = (await response.json())["position"]
    return position


async def get(client: Client, path: str, **params: Any) -> tuple[int, Any]:
    response = await client.get(path, params={k: str(v) for k, v in params.items()}, headers=AUTH)
    return response.status, await response.json()


async def test_run_record_is_served_after_its_write_with_min_position(client: Client) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    _, applied = await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", run_id))
    status, record = await get(client, f"/runs/{run_id}", min_position=applied["position"])
    assert status == 200
    assert (record["run_id"], record["status"], record["version"], record["event_count"]) == (
        run_id,
        "succeeded",
        2,
        2,
    )
    assert record["duration_s"] == 254.867
    assert record["dataset_id"] == "Lm8vR2kXw5QaT9jNe"


async def test_projected_record_equals_the_command_answer(client: Client) -> None:
    run_id = new_run_id()
    response = await client.post(
        "/runs", json={"run_id": run_id, "client_id": "acme", "actor_id": "a1"}, headers=AUTH
    )
    answer = await response.json()
    _, record = await get(client, f"/runs/{run_id}", min_position=answer.pop("position"))
    assert record == answer


async def test_unknown_run_answers_404(client: Client) -> None:
    status, body = await get(client, f"/runs/{new_run_id()}")
    assert (status, body["error"]["code"]) == (404, "run_not_found")


async def test_min_position_not_reached_in_time_answers_503_with_retry_after(
    client: Client,
) -> None:
    response = await client.get("/runs", params={"min_position": "999999999"}, headers=AUTH)
    assert response.status == 503
    assert "Retry-After" in response.headers
    assert (await response.json())["error"]["code"] == "projection_behind"


async def test_list_runs_filters_by_client_and_status_newest_first(client: Client) -> None:
    mine = [new_run_id() for _ in range(3)]
    for run_id in mine:
        last = await kickoff(client, run_id, client_id="mine")
    await kickoff(client, new_run_id(), client_id="theirs")
    _, applied = await deliver(client, delivery("ACTOR.RUN.FAILED", mine[0]))
    _, page = await get(client, "/runs", client_id="mine", min_position=applied["position"])
    assert [r["run_id"] for r in page["items"]] == list(reversed(mine))
    _, failed = await get(client, "/runs", client_id="mine", status="failed", min_position=last)
    assert [r["run_id"] for r in failed["items"]] == [mine[0]]


async def test_pagination_neither_repeats_nor_drops_a_row_while_writes_go_on(
    client: Client,
) -> None:
    existing = [new_run_id() for _ in range(25)]
    for run_id in existing:
        position = await kickoff(client, run_id, client_id="paged")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"client_id": "paged", "limit": 4, "min_position": position}
        if cursor:
            params["cursor"] = cursor
        _, page = await get(client, "/runs", **params)
        seen.extend(r["run_id"] for r in page["items"])
        position = await kickoff(client, new_run_id(), client_id="paged")  # writes go on
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(existing) <= set(seen)


async def test_list_runs_as_csv_when_asked(client: Client) -> None:
    run_id = new_run_id()
    position = await kickoff(client, run_id, client_id="csv")
    response = await client.get(
        "/runs",
        params={"client_id": "csv", "min_position": str(position)},
        headers={**AUTH, "Accept": "text/csv"},
    )
    assert response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["run_id"], r["status"]) for r in rows] == [(run_id, "created")]


async def test_bad_query_parameters_answer_422(client: Client) -> None:
    for params in (
        {"limit": "0"},
        {"limit": "1001"},
        {"status": "exploded"},
        {"cursor": "not-a-cursor"},
        {"created_from": "yesterday"},
        {"min_position": "-1"},
        {"limit": "²"},  # a digit to str.isdigit(), not to int()
        {"min_position": "١٢"},  # Arabic-Indic digits
    ):
        status, body = await get(client, "/runs", **params)
        assert status == 422, params
        assert body["error"]["code"] == "invalid"


async def test_queries_without_the_token_answer_401(client: Client) -> None:
    for path in ("/runs", "/runs/x", "/reports/clients", "/reports/daily"):
        assert (await client.get(path)).status == 401


async def test_client_report_counts_runs_by_status_with_durations_and_metrics(
    client: Client, pool: asyncpg.Pool
) -> None:
    runs = [new_run_id() for _ in range(3)]
    for run_id in runs:
        await kickoff(client, run_id, client_id="reported")
    await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", runs[0]))
    await deliver(client, delivery("ACTOR.RUN.FAILED", runs[1]))
    response = await client.post(
        f"/runs/{runs[0]}/results", json={"metrics": {"posts_harvested": 184}}, headers=AUTH
    )
    position = (await response.json())["position"]
    _, report = await get(client, "/reports/clients", min_position=position)
    [mine] = [item for item in report["items"] if item["client_id"] == "reported"]
    assert mine["runs"] == 3
    assert mine["runs_by_status"] == {"created": 1, "failed": 1, "succeeded": 1}
    assert mine["success_rate"] == 0.5
    assert mine["metrics"] == {"posts_harvested": 184.0}
    assert mine["mean_duration_s"] is not None
    assert mine["p95_duration_s"] is not None
    assert mine["last_run"]["run_id"] in runs
    _, daily = await get(client, "/reports/daily", client_id="reported", min_position=position)
    assert sum(day["runs"] for day in daily["items"]) == 3

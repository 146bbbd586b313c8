"""`GET /runs/{run_id}/timeline?as_of=`: the replay as JSON, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import AUTH, Client
from .deliveries import delivery, new_run_id
from .test_run_queries import get, kickoff
from .test_webhooks import deliver


async def write_run(client: Client, run_id: str) -> list[int]:
    """An orphan delivery, the kickoff, the orphan's retry applied, success, a stale CREATED."""
    created = delivery("ACTOR.RUN.CREATED", run_id)
    status, orphan = await deliver(client, created)
    assert status == 404
    positions = [orphan["position"], await kickoff(client, run_id)]
    for sent in (
        created,
        delivery("ACTOR.RUN.SUCCEEDED", run_id),
        delivery("ACTOR.RUN.CREATED", run_id),
    ):
        _, answer = await deliver(client, sent)
        positions.append(answer["position"])
    return positions


def summary(steps: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (s["position"], s["type"], s["status_before"], s["status_after"],
         s["rejection"] and s["rejection"]["reason"])
        for s in steps
    ]  # fmt: skip


async def test_timeline_answers_every_step_and_the_record(client: Client) -> None:
    run_id = new_run_id()
    positions = await write_run(client, run_id)
    status, body = await get(client, f"/runs/{run_id}/timeline")
    assert status == 200
    assert (body["run_id"], body["as_of"]) == (run_id, None)
    assert summary(body["steps"]) == [
        (positions[0], "UpdateRejected", None, None, "missing_run_record"),
        (positions[1], "RunCreated", None, "created", None),
        (positions[2], "RunStarted", "created", "running", None),
        (positions[3], "RunSucceeded", "running", "succeeded", None),
        (positions[4], "UpdateRejected", "succeeded", "succeeded", "stale"),
    ]
    _, record = await get(client, f"/runs/{run_id}", min_position=positions[-1])
    assert body["state"] == record  # the replay agrees with the projection


async def test_a_step_has_the_documented_shape(client: Client) -> None:
    run_id = new_run_id()
    await write_run(client, run_id)
    _, body = await get(client, f"/runs/{run_id}/timeline")
    step = body["steps"][2]
    assert set(step) == {
        "position", "recorded_at", "stream", "version", "event_id", "type", "at", "in_history",
        "cause", "status_before", "status_after", "changes", "rejection", "error",
    }  # fmt: skip
    assert set(step["cause"]) == {
        "command", "request_key", "apify_event_type", "dispatch_id", "apify_created_at",
        "delivery_key", "metrics",
    }  # fmt: skip
    assert (step["cause"]["command"], step["cause"]["apify_event_type"]) == (
        "ApplyApifyWebhook",
        "ACTOR.RUN.CREATED",
    )
    assert step["changes"]["status"] == ["created", "running"]


async def test_timeline_as_of_a_position_shows_the_record_as_it_was(client: Client) -> None:
    run_id = new_run_id()
    positions = await write_run(client, run_id)
    status, body = await get(client, f"/runs/{run_id}/timeline", as_of=positions[2])
    assert status == 200
    assert body["as_of"] == {"position": positions[2], "time": None}
    assert [s["position"] for s in body["steps"]] == positions[:3]
    assert (body["state"]["status"], body["state"]["version"]) == ("running", 2)


async def test_timeline_as_of_a_time_stops_at_the_events_recorded_by_then(client: Client) -> None:
    run_id = new_run_id()
    await write_run(client, run_id)
    _, full = await get(client, f"/runs/{run_id}/timeline")
    second = full["steps"][1]["recorded_at"]
    status, body = await get(client, f"/runs/{run_id}/timeline", as_of=second)
    assert status == 200
    assert body["steps"] == full["steps"][:2]
    assert body["state"]["status"] == "created"


async def test_timeline_needs_the_api_token(client: Client) -> None:
    response = await client.get(f"/runs/{new_run_id()}/timeline")
    assert response.status == 401


async def test_timeline_of_an_unknown_run_is_404(client: Client) -> None:
    status, body = await get(client, f"/runs/{new_run_id()}/timeline")
    assert (status, body["error"]["code"]) == (404, "run_not_found")


@pytest.mark.parametrize("as_of", ["yesterday", "2026-03-14T09:00:00", "-1", "12.5"])
async def test_timeline_refuses_an_as_of_that_is_neither_a_position_nor_a_zoned_time(
    client: Client, as_of: str
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    status, body = await get(client, f"/runs/{run_id}/timeline", as_of=as_of)
    assert (status, body["error"]["code"], list(body["error"]["details"])) == (
        422,
        "invalid",
        ["as_of"],
    )


async def test_timeline_refuses_an_invalid_run_id(client: Client) -> None:
    response = await client.get("/runs/not%20valid/timeline", headers=AUTH)
    assert response.status == 422

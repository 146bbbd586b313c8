"""`GET /runs/{run_id}/events` and `GET /diagnostics/*`, read after writes over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from api.app import create_app
from api.keys import STORE

from .conftest import AUTH, WEBHOOK_TOKEN, Client, TickingClock, make_config
from .deliveries import delivery, new_run_id
from .test_run_queries import get, kickoff
from .test_webhooks import deliver

DIAGNOSTICS = (
    "/diagnostics/missing-records",
    "/diagnostics/rejections",
    "/diagnostics/dead-letters",
)


async def results(client: Client, run_id: str, posts: int = 1) -> tuple[int, int]:
    response = await client.post(
        f"/runs/{run_id}/results", json={"metrics": {"posts": posts}}, headers=AUTH
    )
    body = await response.json()
    return response.status, body["position"]


async def dead_letter(client: Client, event_type: str = "ACTOR.RUN.EXPLODED") -> int:
    """Send a delivery that cannot be understood; return the log head after it."""
    response = await client.post(
        f"/webhooks/apify?token={WEBHOOK_TOKEN}",
        data=orjson.dumps({"eventType": event_type, "resource": {"id": new_run_id()}}),
        headers={"Content-Type": "application/json", "X-Apify-Webhook-Dispatch-Id": event_type},
    )
    assert response.status == 422
    return await head(client)


async def head(client: Client) -> int:
    return await client.app[STORE].head_position()


async def pages(client: Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, page by page, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        status, page = await get(client, path, **params, **({"cursor": cursor} if cursor else {}))
        assert status == 200, page
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


# --- GET /runs/{run_id}/events -----------------------------------------------------------------


async def test_run_events_show_the_orphan_and_run_streams_in_log_order(client: Client) -> None:
    run_id = new_run_id()
    early, _ = await deliver(client, delivery("ACTOR.RUN.CREATED", run_id))
    assert early == 404  # before its kickoff: recorded in the orphan stream
    await kickoff(client, run_id)
    _, applied = await deliver(client, delivery("ACTOR.RUN.CREATED", run_id))
    status, body = await get(client, f"/runs/{run_id}/events", min_position=applied["position"])
    assert status == 200
    events = body["events"]
    assert [(e["stream"], e["version"], e["type"]) for e in events] == [
        (f"orphan-{run_id}", 1, "UpdateRejected"),
        (f"run-{run_id}", 1, "RunCreated"),
        (f"run-{run_id}", 2, "RunStarted"),
    ]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    assert positions[-1] == applied["position"]
    assert all(
        {"position", "stream", "version", "type", "data", "metadata", "recorded_at"} <= set(e)
        for e in events
    )
    assert events[0]["data"]["reason"] == "missing_run_record"
    assert events[2]["data"]["delivery"]["body"]["eventType"] == "ACTOR.RUN.CREATED"


async def test_run_events_of_a_run_with_only_orphan_updates_are_served(client: Client) -> None:
    run_id = new_run_id()
    status, _ = await results(client, run_id)
    assert status == 404
    status, body = await get(client, f"/runs/{run_id}/events")
    assert (status, [e["type"] for e in body["events"]]) == (200, ["UpdateRejected"])


async def test_run_events_of_an_unknown_run_answer_404(client: Client) -> None:
    status, body = await get(client, f"/runs/{new_run_id()}/events")
    assert (status, body["error"]["code"]) == (404, "run_not_found")


async def test_run_events_beyond_the_log_head_answer_503_at_once_holding_no_connection(
    client: Client,
) -> None:
    # A position beyond the head was handed out by nobody: answered at once, and twelve such
    # requests at a time (more than the pool's ten connections) leave commands unhindered.
    beyond = {"min_position": "999999"}
    answers = await asyncio.gather(
        *(
            client.get(f"/runs/{new_run_id()}/events", params=beyond, headers=AUTH)
            for _ in range(12)
        ),
        client.post("/runs", json={"run_id": new_run_id(), "client_id": "acme"}, headers=AUTH),
    )
    assert [a.status for a in answers] == [503] * 12 + [201]
    assert answers[0].headers["Retry-After"]


async def test_run_events_of_an_invalid_run_id_answer_422(client: Client) -> None:
    status, body = await get(client, "/runs/bad%20id!/events")
    assert (status, set(body["error"]["details"])) == (422, {"run_id"})


@pytest.fixture(name="impatient_client")
async def _impatient_client(
    dsn: str, clock: TickingClock, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Client:
    """A server whose `min_position` waits end after a fraction of a second."""
    config = make_config(dsn, min_position_wait_s=0.2)
    return await aiohttp_client(create_app(config, clock=clock))


@pytest.mark.parametrize("path", ["/runs/someRun/events", *DIAGNOSTICS])
async def test_min_position_beyond_the_log_answers_503_with_retry_after(
    impatient_client: Client, path: str
) -> None:
    response = await impatient_client.get(path, params={"min_position": "999999999"}, headers=AUTH)
    assert response.status == 503
    assert "Retry-After" in response.headers
    assert (await response.json())["error"]["code"] == "projection_behind"


# --- GET /diagnostics/missing-records --------------------------------------------------------


async def test_missing_records_list_unresolved_and_resolved_run_ids(client: Client) -> None:
    late, never = new_run_id(), new_run_id()
    await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", late, dispatch_id=f"d-{late}"))
    await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", late, dispatch_id=f"d-{late}"))
    await results(client, never)
    created = await kickoff(client, late)
    status, body = await get(client, "/diagnostics/missing-records", min_position=created)
    assert status == 200
    by_run = {item["run_id"]: item for item in body["items"]}
    assert [item["run_id"] for item in body["items"]] == [never, late]  # newest first
    assert by_run[late]["attempts"] == 2
    assert by_run[late]["event_types"] == ["ACTOR.RUN.SUCCEEDED"]
    assert by_run[late]["last_delivery"]["dispatch_id"] == f"d-{late}"
    assert by_run[late]["resolved_at"] is not None
    assert (by_run[never]["event_types"], by_run[never]["resolved_at"]) == (
        ["RecordResults"],
        None,
    )
    assert set(by_run[never]) >= {"first_seen", "last_seen", "attempts", "last_delivery"}
    _, resolved = await get(client, "/diagnostics/missing-records", resolved="true")
    _, unresolved = await get(client, "/diagnostics/missing-records", resolved="false")
    assert [i["run_id"] for i in resolved["items"]] == [late]
    assert [i["run_id"] for i in unresolved["items"]] == [never]


# --- GET /diagnostics/rejections ---------------------------------------------------------------


async def test_rejections_list_every_reason_filtered_by_reason_and_run(client: Client) -> None:
    run_id, orphan = new_run_id(), new_run_id()
    await kickoff(client, run_id)
    await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", run_id))
    await deliver(client, delivery("ACTOR.RUN.CREATED", run_id))  # stale
    await deliver(client, delivery("ACTOR.RUN.FAILED", run_id))  # invalid_transition
    duplicate = await client.post(
        "/runs", json={"run_id": run_id, "client_id": "someone-else"}, headers=AUTH
    )
    assert duplicate.status == 409
    _, position = await results(client, orphan)
    status, body = await get(client, "/diagnostics/rejections", min_position=position)
    assert status == 200
    assert [(i["run_id"], i["reason"]) for i in body["items"]] == [
        (orphan, "missing_run_record"),
        (run_id, "duplicate_creation"),
        (run_id, "invalid_transition"),
        (run_id, "stale"),
    ]
    stale = body["items"][-1]
    assert stale["command"] == "ApplyApifyWebhook:ACTOR.RUN.CREATED"
    assert stale["status_before"] == "succeeded"
    assert stale["received"]["apify_event_type"] == "ACTOR.RUN.CREATED"
    assert {"position", "message", "rejected_at"} <= set(stale)
    _, by_reason = await get(client, "/diagnostics/rejections", reason="stale")
    assert [(i["run_id"], i["reason"]) for i in by_reason["items"]] == [(run_id, "stale")]
    _, by_run = await get(client, "/diagnostics/rejections", run_id=orphan)
    assert [i["reason"] for i in by_run["items"]] == ["missing_run_record"]


# --- GET /diagnostics/dead-letters ---------------------------------------------------------------


async def test_dead_letters_list_what_could_not_be_understood_newest_first(
    client: Client,
) -> None:
    await dead_letter(client, "ACTOR.RUN.EXPLODED")
    response = await client.post(
        f"/webhooks/apify?token={WEBHOOK_TOKEN}",
        data=b"\xff{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    position = await head(client)
    status, body = await get(client, "/diagnostics/dead-letters", min_position=position)
    assert status == 200
    unreadable, unknown = body["items"]
    assert unknown["reason"] == "unknown_event_type"
    assert unknown["body"]["eventType"] == "ACTOR.RUN.EXPLODED"
    assert unknown["headers"]["X-Apify-Webhook-Dispatch-Id"] == "ACTOR.RUN.EXPLODED"
    assert (unreadable["body"], unreadable["reason"]) == (None, "invalid_json")
    assert unreadable["body_base64"] is not None
    assert {"position", "received_at", "message"} <= set(unknown)
    _, only = await get(client, "/diagnostics/dead-letters", reason="invalid_json")
    assert [i["position"] for i in only["items"]] == [unreadable["position"]]


# --- common to every diagnostics list ------------------------------------------------------------


async def test_diagnostics_without_the_token_answer_401(client: Client) -> None:
    for path in (*DIAGNOSTICS, f"/runs/{new_run_id()}/events"):
        assert (await client.get(path)).status == 401, path
        wrong = {"Authorization": "Bearer wrong"}
        assert (await client.get(path, headers=wrong)).status == 401, path


@pytest.mark.parametrize(
    ("path", "params", "bad"),
    [
        ("/diagnostics/missing-records", {"resolved": "maybe"}, "resolved"),
        ("/diagnostics/missing-records", {"limit": "0"}, "limit"),
        ("/diagnostics/missing-records", {"limit": "1001"}, "limit"),
        ("/diagnostics/missing-records", {"cursor": "not-a-cursor"}, "cursor"),
        ("/diagnostics/missing-records", {"min_position": "-1"}, "min_position"),
        ("/diagnostics/rejections", {"reason": "because"}, "reason"),
        ("/diagnostics/rejections", {"run_id": "no spaces"}, "run_id"),
        ("/diagnostics/rejections", {"cursor": ""}, "cursor"),
        ("/diagnostics/dead-letters", {"reason": "Not A Code"}, "reason"),
        ("/diagnostics/dead-letters", {"limit": "x"}, "limit"),
        # each dead letter holds a whole body of up to 1 MiB: pages stay small
        ("/diagnostics/dead-letters", {"limit": "51"}, "limit"),
        ("/runs/someRun/events", {"min_position": "x"}, "min_position"),
    ],
)
async def test_bad_parameters_answer_422_naming_the_parameter(
    client: Client, path: str, params: dict[str, str], bad: str
) -> None:
    status, body = await get(client, path, **params)
    assert (status, body["error"]["code"], set(body["error"]["details"])) == (
        422,
        "invalid",
        {bad},
    )


async def test_pagination_neither_repeats_nor_drops_a_row_while_writes_go_on(
    client: Client,
) -> None:
    for _ in range(9):
        run_id = new_run_id()
        await results(client, run_id)  # a missing record and a rejection each
        position = await dead_letter(client, f"ACTOR.RUN.UNKNOWN_{run_id}")
    for path in DIAGNOSTICS:
        seen: list[Any] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2, "min_position": position}
            if cursor:
                params["cursor"] = cursor
            _, page = await get(client, path, **params)
            seen.extend(item.get("position") or item["first_position"] for item in page["items"])
            _, position = await results(client, new_run_id())  # writes go on
            position = await dead_letter(client, f"ACTOR.RUN.MORE_{position}")
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), path
        assert seen == sorted(seen, reverse=True), path
        assert len(seen) >= 9, path


async def test_a_full_listing_pages_exactly_the_rows_of_one_listing(client: Client) -> None:
    for _ in range(5):
        _, position = await results(client, new_run_id())
    _, whole = await get(client, "/diagnostics/rejections", limit=1000, min_position=position)
    assert await pages(client, "/diagnostics/rejections", limit=2) == whole["items"]

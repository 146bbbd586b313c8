"""`POST /webhooks/apify`: every row of API.md's delivery table, over real HTTP."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import orjson
import pytest

from .conftest import AUTH, WEBHOOK_TOKEN, Client
from .deliveries import delivery, new_run_id

FINAL_TYPES = [
    "ACTOR.RUN.SUCCEEDED",
    "ACTOR.RUN.FAILED",
    "ACTOR.RUN.ABORTED",
    "ACTOR.RUN.TIMED_OUT",
]


async def kickoff(client: Client, run_id: str) -> None:
    response = await client.post(
        "/runs", json={"run_id": run_id, "client_id": "acme"}, headers=AUTH
    )
    assert response.status == 201


async def deliver(
    client: Client, sent: dict[str, Any], *, query: str = f"token={WEBHOOK_TOKEN}"
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        f"/webhooks/apify?{query}",
        data=orjson.dumps(sent["body"]),
        headers={**sent["headers"], "Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def _types(pool: asyncpg.Pool, stream: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY position", stream
    )
    return [r["event_type"] for r in rows]


@pytest.mark.parametrize(
    ("event_type", "event", "status"),
    [
        ("ACTOR.RUN.CREATED", "RunStarted", "running"),
        ("ACTOR.RUN.SUCCEEDED", "RunSucceeded", "succeeded"),
        ("ACTOR.RUN.FAILED", "RunFailed", "failed"),
        ("ACTOR.RUN.ABORTED", "RunAborted", "aborted"),
        ("ACTOR.RUN.TIMED_OUT", "RunTimedOut", "timed_out"),
    ],
)
async def test_delivery_for_created_run_is_applied_with_202(
    client: Client, pool: asyncpg.Pool, event_type: str, event: str, status: str
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    code, answer = await deliver(client, delivery(event_type, run_id))
    assert code == 202
    assert {k: answer[k] for k in ("outcome", "run_id", "status")} == {
        "outcome": "applied",
        "run_id": run_id,
        "status": status,
    }
    assert answer["position"] > 0
    assert await _types(pool, f"run-{run_id}") == ["RunCreated", event]


async def test_resurrected_delivery_takes_finished_run_back_to_running(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", run_id))
    code, answer = await deliver(client, delivery("ACTOR.RUN.RESURRECTED", run_id))
    assert (code, answer["outcome"], answer["status"]) == (202, "applied", "running")
    assert (await _types(pool, f"run-{run_id}"))[-1] == "RunResurrected"


async def test_same_delivery_again_answers_200_duplicate_and_adds_nothing(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    sent = delivery("ACTOR.RUN.SUCCEEDED", run_id)
    first = await deliver(client, sent)
    again = await deliver(client, sent)
    assert again[0] == 200
    assert again[1] == {**first[1], "outcome": "duplicate"}
    assert await _types(pool, f"run-{run_id}") == ["RunCreated", "RunSucceeded"]


async def test_delivery_without_dispatch_id_is_identified_by_its_content(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    sent = delivery("ACTOR.RUN.SUCCEEDED", run_id)
    del sent["headers"]["X-Apify-Webhook-Dispatch-Id"]
    assert (await deliver(client, sent))[0] == 202
    assert (await deliver(client, sent))[1]["outcome"] == "duplicate"


async def test_older_status_after_newer_is_rejected_as_stale(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", run_id))
    stale = delivery("ACTOR.RUN.CREATED", run_id)
    code, answer = await deliver(client, stale)
    assert (code, answer["outcome"], answer["reason"], answer["status"]) == (
        202,
        "rejected",
        "stale",
        "succeeded",
    )
    assert (await deliver(client, stale))[0:1] == (200,)  # a repeat is a duplicate
    assert await _types(pool, f"run-{run_id}") == ["RunCreated", "RunSucceeded", "UpdateRejected"]


async def test_forbidden_step_is_rejected_as_invalid_transition(client: Client) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", run_id))
    code, answer = await deliver(client, delivery("ACTOR.RUN.FAILED", run_id))
    assert (code, answer["outcome"], answer["reason"]) == (202, "rejected", "invalid_transition")


async def test_delivery_for_run_never_created_answers_404_and_is_recorded_every_attempt(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    sent = delivery("ACTOR.RUN.SUCCEEDED", run_id)
    for _ in range(3):  # Apify retries a non-2xx answer
        code, answer = await deliver(client, sent)
        assert code == 404
        assert (answer["outcome"], answer["reason"], answer["error"]["code"]) == (
            "rejected",
            "missing_run_record",
            "missing_run_record",
        )
    assert await _types(pool, f"orphan-{run_id}") == ["UpdateRejected"] * 3
    assert await _types(pool, f"run-{run_id}") == []  # never turned into a record


async def test_delivery_that_beat_its_kickoff_is_applied_on_a_retry(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    sent = delivery("ACTOR.RUN.SUCCEEDED", run_id)
    assert (await deliver(client, sent))[0] == 404
    await kickoff(client, run_id)
    code, answer = await deliver(client, sent)
    assert (code, answer["outcome"], answer["status"]) == (202, "applied", "succeeded")
    assert await _types(pool, f"run-{run_id}") == ["RunCreated", "RunSucceeded"]


@pytest.mark.parametrize("event_type", ["TEST", "ACTOR.BUILD.SUCCEEDED"])
async def test_test_and_build_events_are_ignored(
    client: Client, pool: asyncpg.Pool, event_type: str
) -> None:
    sent = delivery("TEST", new_run_id())
    sent["body"]["eventType"] = event_type
    code, answer = await deliver(client, sent)
    assert (code, answer["outcome"]) == (200, "ignored")
    assert await pool.fetchval("SELECT count(*) FROM events") == 0


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b.update(eventType="ACTOR.RUN.EXPLODED"), "unknown_event_type"),
        (lambda b: (b["eventData"].pop("actorRunId"), b["resource"].pop("id")), "missing_run_id"),
        (lambda b: b.update(resource="not an object"), None),
    ],
    ids=["unknown-event-type", "missing-run-id", "not-the-payload-shape"],
)
async def test_delivery_that_cannot_be_understood_answers_422_and_is_dead_lettered(
    client: Client, pool: asyncpg.Pool, mutate: Any, code: str | None
) -> None:
    sent = delivery("ACTOR.RUN.SUCCEEDED", new_run_id())
    mutate(sent["body"])
    status, answer = await deliver(client, sent)
    assert status == 422
    if code:
        assert answer["error"]["code"] == code
    [kept] = await pool.fetch("SELECT data FROM events WHERE stream_id = 'dead-letters'")
    assert kept["data"]["body"] == sent["body"]  # kept whole


async def test_run_is_found_by_run_id_query_parameter_first(client: Client) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    sent = delivery("ACTOR.RUN.SUCCEEDED", "someOtherApifyId")
    code, answer = await deliver(client, sent, query=f"token={WEBHOOK_TOKEN}&run_id={run_id}")
    assert (code, answer["run_id"]) == (202, run_id)


async def test_unknown_fields_and_status_values_are_kept_not_refused(
    client: Client, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    sent = delivery("ACTOR.RUN.SUCCEEDED", run_id)
    sent["body"]["brandNewField"] = {"nested": [1, 2]}
    sent["body"]["resource"]["status"] = "SUCCEEDED-WITH-WARNINGS"
    assert (await deliver(client, sent))[0] == 202
    data = await pool.fetchval(
        "SELECT data FROM events WHERE stream_id = $1 AND version = 2", f"run-{run_id}"
    )
    kept = data["delivery"]
    assert kept["body"] == sent["body"]
    assert (
        kept["headers"]["X-Apify-Webhook-Dispatch-Id"]
        == sent["headers"]["X-Apify-Webhook-Dispatch-Id"]
    )


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("token=wrong", {}),
        ("token=", {}),
        ("", {"X-Runledger-Token": "wrong"}),
        ("", {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}),
    ],
    ids=["missing", "wrong-query", "empty-query", "wrong-header", "bearer-is-not-the-secret"],
)
async def test_delivery_without_the_secret_answers_401_and_stores_nothing(
    client: Client, pool: asyncpg.Pool, query: str, headers: dict[str, str]
) -> None:
    response = await client.post(
        f"/webhooks/apify?{query}",
        data=orjson.dumps(delivery("ACTOR.RUN.SUCCEEDED", new_run_id())["body"]),
        headers={"Content-Type": "application/json", **headers},
    )
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    assert await pool.fetchval("SELECT count(*) FROM events") == 0


async def test_secret_is_accepted_in_the_header(client: Client) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    sent = delivery("ACTOR.RUN.SUCCEEDED", run_id)
    sent["headers"]["X-Runledger-Token"] = WEBHOOK_TOKEN
    assert (await deliver(client, sent, query=""))[0] == 202


async def test_shuffled_duplicated_storm_ends_with_one_final_event_per_run(
    client: Client, pool: asyncpg.Pool
) -> None:
    rng = random.Random(7)
    runs = [new_run_id() for _ in range(20)]
    await asyncio.gather(*(kickoff(client, run_id) for run_id in runs))
    finals = {run_id: rng.choice(FINAL_TYPES) for run_id in runs}
    storm = []
    for run_id in runs:
        for sent in (delivery("ACTOR.RUN.CREATED", run_id), delivery(finals[run_id], run_id)):
            storm.extend([sent] * rng.randint(1, 3))
    rng.shuffle(storm)
    results = await asyncio.gather(*(deliver(client, sent) for sent in storm))
    assert {code for code, _ in results} <= {200, 202}
    rows = await pool.fetch(
        "SELECT stream_id, event_type, data->>'delivery_key' AS key FROM events"
        " WHERE stream_id LIKE 'run-%' AND event_type NOT IN ('RunCreated')"
    )
    finals_seen = [r for r in rows if r["event_type"] not in ("RunStarted", "UpdateRejected")]
    assert sorted(r["stream_id"] for r in finals_seen) == sorted(f"run-{r}" for r in runs)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys))  # each delivery had exactly one outcome


async def test_dispatch_id_reused_for_another_run_answers_422_and_is_dead_lettered(
    client: Client, pool: asyncpg.Pool
) -> None:
    first, second = new_run_id(), new_run_id()
    await kickoff(client, first)
    await kickoff(client, second)
    assert (await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", first, dispatch_id="d-1")))[
        0
    ] == 202
    sent = delivery("ACTOR.RUN.SUCCEEDED", second, dispatch_id="d-1")
    status, answer = await deliver(client, sent)
    assert (status, answer["error"]["code"]) == (422, "dispatch_id_reused")
    assert await _types(pool, f"run-{second}") == ["RunCreated"]  # nothing applied to it
    [kept] = await pool.fetch("SELECT data FROM events WHERE stream_id = 'dead-letters'")
    assert kept["data"]["body"] == sent["body"]  # kept whole

"""`GET /metrics`: Prometheus text whose series move when the service works (API.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.integrity import IntegrityMonitor
from api.keys import INTEGRITY

from .conftest import AUTH, Client, TickingClock, make_config
from .deliveries import delivery, new_run_id
from .test_webhooks import deliver, kickoff

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(client: Client) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status == 200
    assert answer.content_type == "text/plain"
    samples: Samples = {}
    for family in text_string_to_metric_families(await answer.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_are_prometheus_text_and_need_no_token(client: Client) -> None:
    samples = await _scrape(client)
    assert _value(samples, "runledger_database_up") == 1.0


async def test_events_appended_by_type_and_rejections_by_reason_move_with_commands(
    client: Client,
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    again = await client.post("/runs", json={"run_id": run_id, "client_id": "acme"}, headers=AUTH)
    assert again.status == 200  # the same request again: no event, nothing counted
    other = {"run_id": run_id, "client_id": "someone-else"}
    assert (await client.post("/runs", json=other, headers=AUTH)).status == 409
    samples = await _scrape(client)
    assert _value(samples, "runledger_events_appended_total", type="RunCreated") == 1
    assert _value(samples, "runledger_events_appended_total", type="UpdateRejected") == 1
    assert _value(samples, "runledger_rejections_total", reason="duplicate_creation") == 1


async def test_webhook_outcomes_are_counted_by_what_became_of_each_delivery(
    client: Client,
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    sent = delivery("ACTOR.RUN.SUCCEEDED", run_id)
    await deliver(client, sent)  # applied
    await deliver(client, sent)  # duplicate
    await deliver(client, delivery("ACTOR.RUN.SUCCEEDED", new_run_id()))  # missing_run_record
    await deliver(client, delivery("TEST", run_id))  # ignored
    await deliver(client, sent, query="token=wrong")  # unauthorized
    bad = await client.post(
        "/webhooks/apify?token=test-webhook-secret-0123456789", json={"eventType": "NOPE"}
    )
    assert bad.status == 422  # dead-lettered
    samples = await _scrape(client)
    counted = {
        outcome: _value(samples, "runledger_webhook_outcomes_total", outcome=outcome)
        for outcome in ("applied", "duplicate", "rejected", "ignored", "unauthorized",
                        "dead_letter")
    }  # fmt: skip
    assert counted == dict.fromkeys(counted, 1.0)
    assert _value(samples, "runledger_rejections_total", reason="missing_run_record") == 1
    assert _value(samples, "runledger_events_appended_total", type="DeliveryDeadLettered") == 1


async def test_request_latency_is_labelled_by_route_template_never_by_run_id(
    client: Client,
) -> None:
    run_id = new_run_id()
    await kickoff(client, run_id)
    assert (await client.get(f"/runs/{run_id}", headers=AUTH)).status in {200, 404}
    samples = await _scrape(client)
    routes = {
        dict(labels)["route"]
        for name, labels in samples
        if name == "runledger_http_request_duration_seconds_count"
    }
    assert {"/runs", "/runs/{run_id}"} <= routes
    assert not any(run_id in route for route in routes)


async def test_projection_lag_and_batch_sizes_are_exposed(client: Client) -> None:
    run_id = new_run_id()
    answer = await client.post("/runs", json={"run_id": run_id, "client_id": "a"}, headers=AUTH)
    position = (await answer.json())["position"]
    caught_up = await client.get(f"/runs/{run_id}?min_position={position}", headers=AUTH)
    assert caught_up.status == 200
    samples = await _scrape(client)
    assert _value(samples, "runledger_log_head_position") == position
    assert _value(samples, "runledger_projection_position", projection="run_records") == position
    assert _value(samples, "runledger_projection_lag_events", projection="run_records") == 0
    batches = _value(samples, "runledger_projection_batch_size_count", projection="run_records")
    assert batches >= 1


async def test_integrity_check_results_are_counted(
    dsn: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    app: web.Application = create_app(make_config(dsn), clock=TickingClock())
    client = await aiohttp_client(app)
    await kickoff(client, new_run_id())
    monitor: IntegrityMonitor = app[INTEGRITY]
    outcome = await monitor.run_once()  # the projections may lag: the check waits for them
    samples = await _scrape(client)
    assert _value(samples, "runledger_integrity_checks_total", result=outcome.status) == 1
    assert _value(samples, "runledger_integrity_differences") == outcome.differences

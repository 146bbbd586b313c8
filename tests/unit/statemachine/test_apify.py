"""Parsing one Apify delivery: what is read, what is ignored, what is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from statemachine import ApifyDelivery, IgnoredDelivery, InvalidDelivery, parse_delivery
from tests.builders import FIXTURE_RUN_ID, RUN_FIXTURES, apify_fixture, apify_payload


def _parse(body: object, headers: dict[str, str] | None = None, **kwargs: Any) -> ApifyDelivery:
    parsed = parse_delivery(body, headers or {}, run_id_param=kwargs.get("run_id_param"))
    assert isinstance(parsed, ApifyDelivery)
    return parsed


def _refusal(body: object, run_id_param: str | None = None) -> InvalidDelivery:
    with pytest.raises(InvalidDelivery) as caught:
        parse_delivery(body, {}, run_id_param=run_id_param)
    return caught.value


def test_succeeded_fixture_is_read_into_a_delivery() -> None:
    body, headers = apify_payload("run-succeeded")

    delivery = _parse(body, headers)

    assert delivery == ApifyDelivery(
        event_type="ACTOR.RUN.SUCCEEDED",
        run_id=FIXTURE_RUN_ID,
        dispatch_id="aD1spTch000000002",
        created_at=datetime(2026, 3, 14, 9, 42, 17, 508000, tzinfo=UTC),
        resurrect_count=0,
        status="SUCCEEDED",
        status_message="Scraped 184 posts from 12 profiles",
        started_at=datetime(2026, 3, 14, 9, 38, 2, 114000, tzinfo=UTC),
        finished_at=datetime(2026, 3, 14, 9, 42, 16, 981000, tzinfo=UTC),
        run_time_s=254.867,
        dataset_id="Lm8vR2kXw5QaT9jNe",
        usage_usd=0.3721,
        headers={k: v for k, v in headers.items() if k.startswith("X-Apify-")},
        body=body,
    )
    assert delivery.delivery_key == "aD1spTch000000002"
    assert delivery.delivery == {"headers": dict(delivery.headers), "body": body}


@pytest.mark.parametrize(
    "name",
    [
        *RUN_FIXTURES,
        "run-resurrected",
        "documented/run-aborted-from-task",
        "documented/run-resurrected-twice",
    ],
)
def test_every_run_fixture_parses(name: str) -> None:
    fixture = apify_fixture(name)

    delivery = _parse(fixture["body"], fixture["headers"])

    assert delivery.event_type == fixture["body"]["eventType"]


@pytest.mark.parametrize("event_type", ["TEST", "ACTOR.BUILD.SUCCEEDED"])
def test_test_and_build_deliveries_are_ignored(event_type: str) -> None:
    body = apify_fixture("test-ping")["body"]
    body["eventType"] = event_type

    assert parse_delivery(body, {}, run_id_param=None) == IgnoredDelivery(event_type=event_type)


def test_dispatch_id_header_is_found_whatever_its_case() -> None:
    body, _ = apify_payload("run-created")

    delivery = _parse(body, {"x-apify-webhook-dispatch-id": "abc", "Content-Type": "json"})

    assert (delivery.dispatch_id, dict(delivery.headers)) == (
        "abc",
        {"x-apify-webhook-dispatch-id": "abc"},
    )


def test_delivery_without_dispatch_id_is_keyed_by_run_type_generation_and_time() -> None:
    body, _ = apify_payload("run-resurrected")

    delivery = _parse(body, {})

    assert delivery.delivery_key == (
        f"{FIXTURE_RUN_ID}|ACTOR.RUN.RESURRECTED|1|2026-03-14T11:00:00.000Z"
    )


def test_run_id_comes_from_query_parameter_then_event_data_then_resource() -> None:
    body, _ = apify_payload("run-created")
    assert _parse(body, run_id_param="fromQuery").run_id == "fromQuery"
    body["eventData"]["actorRunId"] = "fromEventData"
    assert _parse(body).run_id == "fromEventData"
    del body["eventData"]
    assert _parse(body).run_id == FIXTURE_RUN_ID


def test_missing_resurrect_count_means_generation_zero() -> None:
    body, _ = apify_payload("run-succeeded")
    del body["resource"]["stats"]

    assert _parse(body).resurrect_count == 0


def test_body_that_is_not_an_object_is_refused() -> None:
    assert _refusal(["not", "an", "object"]).code == "not_an_object"


@pytest.mark.parametrize("event_type", [None, 42])
def test_missing_or_non_string_event_type_is_refused(event_type: object) -> None:
    body, _ = apify_payload("run-created")
    body["eventType"] = event_type

    refusal = _refusal(body)

    assert (refusal.code, list(refusal.details)) == ("missing_event_type", ["eventType"])


def test_unknown_event_type_is_refused() -> None:
    body, _ = apify_payload("run-created")
    body["eventType"] = "ACTOR.RUN.EXPLODED"

    assert _refusal(body).code == "unknown_event_type"


def test_delivery_without_any_run_id_is_refused() -> None:
    body, _ = apify_payload("run-created")
    del body["eventData"]["actorRunId"]
    del body["resource"]["id"]

    refusal = _refusal(body)

    assert (refusal.code, list(refusal.details)) == ("missing_run_id", ["run_id"])


@pytest.mark.parametrize("bad", ["", "x" * 129, "has space", "slash/", 17])
def test_malformed_run_id_is_refused(bad: object) -> None:
    body, _ = apify_payload("run-created")
    body["eventData"]["actorRunId"] = bad

    refusal = _refusal(body)

    assert (refusal.code, list(refusal.details)) == ("invalid_run_id", ["eventData.actorRunId"])


def test_resource_that_is_not_an_object_is_refused() -> None:
    body, _ = apify_payload("run-created")
    body["resource"] = "nope"

    refusal = _refusal(body)

    assert refusal.code == "invalid_delivery"
    assert "resource" in refusal.details


def test_wrong_types_of_read_fields_are_all_named() -> None:
    body, _ = apify_payload("run-succeeded")
    body["resource"]["status"] = 3
    body["resource"]["startedAt"] = "yesterday"
    body["resource"]["usageTotalUsd"] = "0.37"
    body["resource"]["stats"]["resurrectCount"] = -1

    refusal = _refusal(body)

    assert (refusal.code, sorted(refusal.details)) == (
        "invalid_delivery",
        [
            "resource.startedAt",
            "resource.stats.resurrectCount",
            "resource.status",
            "resource.usageTotalUsd",
        ],
    )


def test_created_at_is_required_only_without_a_dispatch_id() -> None:
    body, headers = apify_payload("run-created")
    del body["createdAt"]

    assert _parse(body, headers).created_at is None
    assert list(_refusal(body).details) == ["createdAt"]


def test_times_with_any_offset_are_kept_in_utc_even_an_offset_with_seconds() -> None:
    body, headers = apify_payload("run-succeeded")
    body["resource"]["startedAt"] = "2026-03-14T09:00:00+05:30:15"  # fromisoformat reads it
    body["resource"]["finishedAt"] = "2026-03-14T04:00:00-01:00"

    delivery = _parse(body, headers)

    # JSON would keep "+05:30" of the first and lose 15 s: the projections would then drift
    # from a replay. In UTC the instant survives every round trip.
    assert delivery.started_at == datetime(2026, 3, 14, 3, 29, 45, tzinfo=UTC)
    assert delivery.finished_at == datetime(2026, 3, 14, 5, 0, tzinfo=UTC)
    assert delivery.started_at is not None
    assert delivery.started_at.tzinfo is UTC

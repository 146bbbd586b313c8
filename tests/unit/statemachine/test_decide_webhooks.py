"""Apify deliveries: mapping, duplicates, order, generations. Given events, when, then."""

from __future__ import annotations

from dataclasses import replace

import pytest

from statemachine import (
    ApifyDelivery,
    ApifyRunEvent,
    ApplyApifyWebhook,
    Event,
    RejectionReason,
    RunAborted,
    RunFailed,
    RunResurrected,
    RunStarted,
    RunStatus,
    RunSucceeded,
    RunTimedOut,
    UpdateRejected,
    decide,
    delivery_event_id,
    parse_delivery,
    replay,
)
from tests.builders import NOW, apify_payload, history_of, kickoff, webhook


def _status(history: list[Event]) -> RunStatus:
    state = replay(history)
    assert state is not None
    return state.status


def _rejection(events: list[Event]) -> tuple[RejectionReason, RunStatus | None]:
    (event,) = events
    assert isinstance(event, UpdateRejected)
    return event.reason, event.status_before


def test_succeeded_delivery_becomes_run_succeeded_with_the_whole_delivery() -> None:
    command = webhook("run-succeeded")
    history = history_of(kickoff(), webhook("run-created"))

    events = decide(history, command, now=NOW)

    delivery = command.delivery
    assert events == [
        RunSucceeded(
            event_id=delivery_event_id("aD1spTch000000002"),
            at=NOW,
            run_id="fJ9xM3bQw6TzY1kDe",
            delivery_key="aD1spTch000000002",
            apify_status="SUCCEEDED",
            status_message="Scraped 184 posts from 12 profiles",
            started_at=delivery.started_at,
            finished_at=delivery.finished_at,
            run_time_s=254.867,
            dataset_id="Lm8vR2kXw5QaT9jNe",
            usage_usd=0.3721,
            resurrect_count=0,
            delivery={"headers": dict(delivery.headers), "body": delivery.body},
        )
    ]


@pytest.mark.parametrize(
    ("fixture", "event_type", "status"),
    [
        ("run-created", RunStarted, RunStatus.RUNNING),
        ("run-succeeded", RunSucceeded, RunStatus.SUCCEEDED),
        ("run-failed", RunFailed, RunStatus.FAILED),
        ("run-aborted", RunAborted, RunStatus.ABORTED),
        ("run-timed-out", RunTimedOut, RunStatus.TIMED_OUT),
    ],
)
def test_each_apify_event_type_maps_to_its_event_and_status(
    fixture: str, event_type: type[ApifyRunEvent], status: RunStatus
) -> None:
    history = history_of(kickoff())

    events = decide(history, webhook(fixture), now=NOW)

    assert [type(e) for e in events] == [event_type]
    assert _status(history + events) == status


def test_timed_out_delivery_keeps_apify_status_spelling() -> None:
    history = history_of(kickoff(), webhook("run-timed-out"))

    state = replay(history)

    assert state is not None
    assert (state.status, state.apify_status) == (RunStatus.TIMED_OUT, "TIMED-OUT")


def test_same_delivery_twice_produces_nothing() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"))

    assert decide(history, webhook("run-succeeded"), now=NOW) == []


def test_same_delivery_without_dispatch_id_twice_produces_nothing() -> None:
    history = history_of(kickoff(), webhook("run-succeeded", without_dispatch_id=True))

    assert decide(history, webhook("run-succeeded", without_dispatch_id=True), now=NOW) == []


def test_stale_status_is_rejected_when_run_already_succeeded() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"))
    command = webhook("run-created")

    events = decide(history, command, now=NOW)

    assert _rejection(events) == (RejectionReason.STALE, RunStatus.SUCCEEDED)
    assert events[0].event_id == delivery_event_id(command.delivery.delivery_key)
    before = replay(history)
    assert before is not None
    assert replay(history + events) == replace(before, event_count=before.event_count + 1)


def test_repeated_stale_delivery_produces_nothing() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"), webhook("run-created"))

    assert decide(history, webhook("run-created"), now=NOW) == []


def test_failed_after_succeeded_is_rejected_as_invalid_transition() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"))

    events = decide(history, webhook("run-failed"), now=NOW)

    assert _rejection(events) == (RejectionReason.INVALID_TRANSITION, RunStatus.SUCCEEDED)


def test_same_final_status_from_another_delivery_is_stale() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"))

    events = decide(history, webhook("run-succeeded", dispatch_id="another-dispatch"), now=NOW)

    assert _rejection(events) == (RejectionReason.STALE, RunStatus.SUCCEEDED)


def test_final_status_straight_from_created_is_applied() -> None:
    history = history_of(kickoff())

    events = decide(history, webhook("run-failed"), now=NOW)

    assert [type(e) for e in events] == [RunFailed]


def test_resurrected_takes_a_finished_run_back_to_running() -> None:
    history = history_of(kickoff(), webhook("run-created"), webhook("run-failed"))

    events = decide(history, webhook("run-resurrected"), now=NOW)

    state = replay(history + events)
    assert [type(e) for e in events] == [RunResurrected]
    assert state is not None
    assert (state.status, state.resurrect_count, state.finished_at) == (RunStatus.RUNNING, 1, None)


def test_new_final_status_after_resurrection_is_applied() -> None:
    history = history_of(kickoff(), webhook("run-failed"), webhook("run-resurrected"))

    events = decide(history, webhook("run-succeeded", resurrect_count=1), now=NOW)

    assert [type(e) for e in events] == [RunSucceeded]
    assert _status(history + events) == RunStatus.SUCCEEDED


def test_resurrected_arriving_after_final_of_its_generation_is_stale() -> None:
    history = history_of(kickoff(), webhook("run-failed", resurrect_count=1))

    events = decide(history, webhook("run-resurrected"), now=NOW)

    assert _rejection(events) == (RejectionReason.STALE, RunStatus.FAILED)


def test_delivery_from_an_older_generation_is_stale() -> None:
    history = history_of(kickoff(), webhook("run-failed"), webhook("run-resurrected"))

    events = decide(history, webhook("run-succeeded"), now=NOW)

    assert _rejection(events) == (RejectionReason.STALE, RunStatus.RUNNING)


def test_final_status_from_a_newer_generation_is_applied_before_its_resurrection() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"))

    events = decide(history, webhook("run-failed", resurrect_count=1), now=NOW)

    state = replay(history + events)
    assert [type(e) for e in events] == [RunFailed]
    assert state is not None
    assert (state.status, state.resurrect_count) == (RunStatus.FAILED, 1)


def test_resurrected_from_a_newer_generation_is_applied_from_any_status() -> None:
    history = history_of(kickoff(), webhook("run-created"))

    events = decide(history, webhook("run-resurrected"), now=NOW)

    assert [type(e) for e in events] == [RunResurrected]


def test_created_from_a_newer_generation_is_an_invalid_transition() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"))

    events = decide(history, webhook("run-created", resurrect_count=1), now=NOW)

    assert _rejection(events) == (RejectionReason.INVALID_TRANSITION, RunStatus.SUCCEEDED)


def test_second_created_from_another_delivery_is_stale() -> None:
    history = history_of(kickoff(), webhook("run-created"))

    events = decide(history, webhook("run-created", dispatch_id="again"), now=NOW)

    assert _rejection(events) == (RejectionReason.STALE, RunStatus.RUNNING)


def test_unknown_fields_in_a_delivery_are_kept() -> None:
    body, headers = apify_payload("run-succeeded")
    body["somethingNew"] = {"nested": [1, 2]}
    body["resource"]["status"] = "SUCCEEDED_WITH_WARNINGS"
    headers["X-Apify-Future-Header"] = "yes"
    delivery = parse_delivery(body, headers, run_id_param=None)
    assert isinstance(delivery, ApifyDelivery)
    command = ApplyApifyWebhook(run_id=delivery.run_id, delivery=delivery)

    (event,) = decide(history_of(kickoff()), command, now=NOW)

    assert isinstance(event, RunSucceeded)
    assert event.delivery["body"]["somethingNew"] == {"nested": [1, 2]}
    assert event.delivery["headers"]["X-Apify-Future-Header"] == "yes"
    assert event.apify_status == "SUCCEEDED_WITH_WARNINGS"


def test_webhook_command_refuses_a_run_id_other_than_the_deliverys() -> None:
    delivery = webhook("run-created").delivery

    with pytest.raises(ValueError, match="differs from the delivery"):
        ApplyApifyWebhook(run_id="someOtherRun", delivery=delivery)


def test_decide_refuses_the_history_of_another_run() -> None:
    history = history_of(kickoff(run_id="anotherRun"))

    with pytest.raises(ValueError, match="given the history of anotherRun"):
        decide(history, webhook("run-created"), now=NOW)

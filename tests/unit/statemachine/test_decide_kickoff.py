"""Creation and missing run records: given events, when a command, then exactly these events."""

from __future__ import annotations

import pytest

from statemachine import (
    CorruptHistory,
    RejectionReason,
    RunCreated,
    RunStatus,
    UpdateRejected,
    decide,
    delivery_event_id,
    kickoff_event_id,
    orphan_rejection_id,
    orphan_stream,
    run_stream,
    stream_for,
)
from tests.builders import (
    FIXTURE_RUN_ID,
    NOW,
    history_of,
    kickoff,
    record_results,
    run_created,
    webhook,
)


def test_kickoff_creates_the_run() -> None:
    command = kickoff(request_key="k1")

    events = decide([], command, now=NOW)

    assert events == [
        RunCreated(
            event_id=kickoff_event_id(FIXTURE_RUN_ID, "k1"),
            at=NOW,
            run_id=FIXTURE_RUN_ID,
            client_id="acme-recruiting",
            actor_id="Hk7sPq2VnR4mZt8Lc",
            task_id=None,
            input={"profiles": ["p1", "p2"], "maxPosts": 50},
            requested_by="harvest-scheduler",
            request_key="k1",
        )
    ]
    assert stream_for(events[0]) == run_stream(FIXTURE_RUN_ID)


def test_same_kickoff_again_produces_nothing() -> None:
    history = history_of(kickoff(request_key="k1"))

    assert decide(history, kickoff(request_key="k1"), now=NOW) == []


def test_different_kickoff_of_a_created_run_is_rejected_as_duplicate_creation() -> None:
    history = history_of(kickoff(request_key="k1"))
    command = kickoff(request_key="k2", client_id="someone-else")

    events = decide(history, command, now=NOW)

    assert events == [
        UpdateRejected(
            event_id=kickoff_event_id(FIXTURE_RUN_ID, "k2"),
            at=NOW,
            run_id=FIXTURE_RUN_ID,
            reason=RejectionReason.DUPLICATE_CREATION,
            command="KickoffRun",
            status_before=RunStatus.CREATED,
            received=command.received(),
            message=f"run {FIXTURE_RUN_ID} was already created by a different request",
            request_key="k2",
        )
    ]
    assert stream_for(events[0]) == run_stream(FIXTURE_RUN_ID)


def test_repeated_different_kickoff_produces_nothing_after_its_rejection() -> None:
    history = history_of(kickoff(request_key="k1"), kickoff(request_key="k2"))

    assert decide(history, kickoff(request_key="k2"), now=NOW) == []


def test_webhook_for_a_run_never_created_is_rejected_as_missing_run_record() -> None:
    command = webhook("run-succeeded")

    events = decide([], command, now=NOW)

    key = command.delivery.delivery_key
    assert events == [
        UpdateRejected(
            event_id=orphan_rejection_id(f"delivery|{key}", NOW),
            at=NOW,
            run_id=FIXTURE_RUN_ID,
            reason=RejectionReason.MISSING_RUN_RECORD,
            command="ApplyApifyWebhook:ACTOR.RUN.SUCCEEDED",
            status_before=None,
            received=command.delivery.delivery,
            message=f"ACTOR.RUN.SUCCEEDED for run {FIXTURE_RUN_ID}, which was never created",
            delivery_key=key,
        )
    ]
    assert stream_for(events[0]) == orphan_stream(FIXTURE_RUN_ID)


def test_results_for_a_run_never_created_are_rejected_as_missing_run_record() -> None:
    command = record_results(request_key="r1")

    (event,) = decide([], command, now=NOW)

    assert isinstance(event, UpdateRejected)
    assert (event.reason, event.command, event.received, event.request_key) == (
        RejectionReason.MISSING_RUN_RECORD,
        "RecordResults",
        command.received,
        "r1",
    )
    assert stream_for(event) == orphan_stream(FIXTURE_RUN_ID)


def test_missing_run_record_is_recorded_at_every_attempt() -> None:
    command = webhook("run-succeeded")
    later = NOW.replace(minute=1)

    (first,) = decide([], command, now=NOW)
    (retry,) = decide([], command, now=later)

    assert first.event_id != retry.event_id
    assert delivery_event_id(command.delivery.delivery_key) not in {
        first.event_id,
        retry.event_id,
    }


def test_delivery_first_rejected_as_missing_run_record_is_applied_once_run_is_created() -> None:
    command = webhook("run-succeeded")
    decide([], command, now=NOW)  # the orphan rejection goes to another stream
    history = [run_created()]

    (event,) = decide(history, command, now=NOW.replace(minute=5))

    assert event.event_id == delivery_event_id(command.delivery.delivery_key)
    assert type(event).__name__ == "RunSucceeded"


def test_history_not_starting_with_run_created_is_corrupt() -> None:
    (applied,) = decide([run_created()], webhook("run-succeeded"), now=NOW)

    with pytest.raises(CorruptHistory, match="not RunCreated"):
        decide([applied], webhook("run-failed"), now=NOW)


def test_history_with_a_second_run_created_is_corrupt() -> None:
    with pytest.raises(CorruptHistory, match="second RunCreated"):
        decide([run_created(), run_created()], webhook("run-failed"), now=NOW)


def test_decide_refuses_a_clock_without_time_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        decide([], kickoff(), now=NOW.replace(tzinfo=None))

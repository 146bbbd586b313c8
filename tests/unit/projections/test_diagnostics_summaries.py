"""The pure parts of the diagnostics projections: summaries and the missing-record fold."""

from __future__ import annotations

from datetime import timedelta

from projections.delivery_summary import MAX_TEXT, event_type_of, summarize_received
from projections.missing_records import MissingRecord, fold, note_attempt, resolve
from projections.rejections import rejection_row
from statemachine import RunCreated, UpdateRejected, decide
from tests.builders import NOW, history_of, kickoff, record_results, webhook

RUN_ID = "orphanRun0000001"


def orphan_attempt(command: object, *, seconds: int = 0) -> UpdateRejected:
    [event] = decide([], command, now=NOW + timedelta(seconds=seconds))  # type: ignore[arg-type]
    assert isinstance(event, UpdateRejected)
    return event


def created(*, seconds: int) -> RunCreated:
    [event] = decide([], kickoff(run_id=RUN_ID), now=NOW + timedelta(seconds=seconds))
    assert isinstance(event, RunCreated)
    return event


def test_event_type_is_the_apify_event_type_or_the_command_name() -> None:
    assert event_type_of("ApplyApifyWebhook:ACTOR.RUN.SUCCEEDED") == "ACTOR.RUN.SUCCEEDED"
    assert event_type_of("RecordResults") == "RecordResults"
    assert event_type_of("KickoffRun") == "KickoffRun"


def test_webhook_summary_names_the_event_dispatch_status_and_apify_time() -> None:
    rejection = orphan_attempt(webhook("run-succeeded", run_id=RUN_ID, dispatch_id="disp-1"))
    assert summarize_received(rejection.command, rejection.received) == {
        "apify_event_type": "ACTOR.RUN.SUCCEEDED",
        "dispatch_id": "disp-1",
        "apify_status": "SUCCEEDED",
        "apify_created_at": "2026-03-14T09:42:17.508Z",
        "resurrect_count": 0,
    }


def test_results_summary_keeps_the_metrics() -> None:
    rejection = orphan_attempt(record_results(run_id=RUN_ID))
    assert summarize_received(rejection.command, rejection.received) == {
        "metrics": {"errors": 0.0, "posts_harvested": 184.0}
    }


def test_kickoff_summary_leaves_the_input_out() -> None:
    received = {"run_id": RUN_ID, "client_id": "acme", "input": {"huge": "x" * 10_000}}
    assert summarize_received("KickoffRun", received) == {
        "client_id": "acme",
        "actor_id": None,
        "task_id": None,
        "requested_by": None,
    }


def test_summary_of_a_hostile_shape_keeps_only_readable_short_fields() -> None:
    received = {
        "headers": ["not", "a", "mapping"],
        "body": {
            "eventType": "y" * 5000,
            "createdAt": 7,
            "resource": {"stats": {"resurrectCount": True}},
        },
    }
    summary = summarize_received("ApplyApifyWebhook:ACTOR.RUN.FAILED", received)
    assert summary == {
        "apify_event_type": "y" * (MAX_TEXT - 1) + "…",
        "dispatch_id": None,
        "apify_status": None,
        "apify_created_at": None,
        "resurrect_count": None,
    }
    assert summarize_received("RecordResults", "not an object") == {}


def test_attempts_count_distinct_event_types_in_first_seen_order_and_keep_the_last() -> None:
    first = orphan_attempt(webhook("run-succeeded", run_id=RUN_ID, dispatch_id="d1"), seconds=0)
    second = orphan_attempt(record_results(run_id=RUN_ID), seconds=60)
    third = orphan_attempt(webhook("run-succeeded", run_id=RUN_ID, dispatch_id="d1"), seconds=120)
    record = note_attempt(note_attempt(note_attempt(None, first, 10), second, 11), third, 15)
    assert record == MissingRecord(
        run_id=RUN_ID,
        first_seen=NOW,
        last_seen=NOW + timedelta(seconds=120),
        first_position=10,
        last_position=15,
        attempts=3,
        event_types=("ACTOR.RUN.SUCCEEDED", "RecordResults"),
        last_delivery={
            "event_type": "ACTOR.RUN.SUCCEEDED",
            "command": "ApplyApifyWebhook:ACTOR.RUN.SUCCEEDED",
            "at": (NOW + timedelta(seconds=120)).isoformat(),
            "position": 15,
            "delivery_key": "d1",
            "request_key": None,
            "apify_event_type": "ACTOR.RUN.SUCCEEDED",
            "dispatch_id": "d1",
            "apify_status": "SUCCEEDED",
            "apify_created_at": "2026-03-14T09:42:17.508Z",
            "resurrect_count": 0,
        },
    )


def test_a_later_creation_resolves_once() -> None:
    record = note_attempt(None, orphan_attempt(record_results(run_id=RUN_ID)), 3)
    resolved = resolve(record, NOW + timedelta(seconds=5), 9)
    assert (resolved.resolved_at, resolved.resolved_position) == (NOW + timedelta(seconds=5), 9)
    assert resolve(resolved, NOW + timedelta(seconds=50), 90) == resolved


def test_fold_resolves_by_a_creation_in_the_same_batch_and_ignores_one_without_a_row() -> None:
    attempt = orphan_attempt(webhook("run-failed", run_id=RUN_ID), seconds=0)
    creation = created(seconds=10)
    changed = fold({}, [(1, attempt), (2, creation)])
    assert changed[RUN_ID].resolved_at == creation.at
    assert fold({}, [(5, created(seconds=1))]) == {}


def test_fold_resolves_a_row_first_seen_after_its_creation_in_the_same_batch() -> None:
    creation = created(seconds=0)
    attempt = orphan_attempt(webhook("run-failed", run_id=RUN_ID), seconds=1)  # the race
    changed = fold({}, [(1, creation), (2, attempt)])
    assert (changed[RUN_ID].resolved_at, changed[RUN_ID].resolved_position) == (creation.at, 1)


def test_rejection_row_keeps_reason_command_status_and_a_summary() -> None:
    history = history_of(kickoff(run_id=RUN_ID), webhook("run-succeeded", run_id=RUN_ID))
    [stale] = decide(history, webhook("run-created", run_id=RUN_ID), now=NOW)
    assert isinstance(stale, UpdateRejected)
    row = rejection_row(stale, 42)
    assert {k: v for k, v in row.items() if k not in ("message", "received")} == {
        "position": 42,
        "run_id": RUN_ID,
        "reason": "stale",
        "command": "ApplyApifyWebhook:ACTOR.RUN.CREATED",
        "status_before": "succeeded",
        "rejected_at": NOW,
    }
    assert row["received"]["apify_event_type"] == "ACTOR.RUN.CREATED"
    assert row["received"]["delivery_key"] == stale.delivery_key

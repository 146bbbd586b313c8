"""The fold: what each event does to the run's state."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace
from datetime import UTC, datetime, timedelta

import pytest

from statemachine import (
    CorruptHistory,
    RejectionReason,
    RunState,
    RunStatus,
    RunSucceeded,
    UpdateRejected,
    decide,
    evolve,
    replay,
)
from statemachine.replay import _assemble
from tests.builders import (
    FIXTURE_RUN_ID,
    NOW,
    history_of,
    kickoff,
    new_run_id,
    record_results,
    run_created,
    webhook,
)

_STARTED = datetime(2026, 3, 14, 9, 38, 2, 114000, tzinfo=UTC)
_FINISHED = datetime(2026, 3, 14, 9, 42, 16, 981000, tzinfo=UTC)


def test_replay_of_an_empty_stream_is_none() -> None:
    assert replay([]) is None


def test_run_created_gives_the_initial_state() -> None:
    assert replay([run_created()]) == RunState(
        run_id=FIXTURE_RUN_ID,
        client_id="acme-recruiting",
        actor_id="Hk7sPq2VnR4mZt8Lc",
        task_id=None,
        requested_by="harvest-scheduler",
        input={"profiles": ["p1", "p2"], "maxPosts": 50},
        status=RunStatus.CREATED,
        apify_status=None,
        status_message=None,
        created_at=NOW,
        started_at=None,
        finished_at=None,
        duration_s=None,
        dataset_id=None,
        usage_usd=None,
        resurrect_count=0,
        metrics=(),
        event_count=1,
        updated_at=NOW,
    )


def test_final_delivery_sets_times_duration_dataset_and_usage() -> None:
    history = history_of(kickoff(), webhook("run-created"), webhook("run-succeeded"))

    state = replay(history)

    assert state is not None
    assert state == replace(
        state,
        status=RunStatus.SUCCEEDED,
        apify_status="SUCCEEDED",
        status_message="Scraped 184 posts from 12 profiles",
        started_at=_STARTED,
        finished_at=_FINISHED,
        duration_s=254.867,
        dataset_id="Lm8vR2kXw5QaT9jNe",
        usage_usd=0.3721,
        event_count=3,
        updated_at=NOW + timedelta(seconds=2),
    )


def test_duration_falls_back_to_run_time_when_times_are_missing() -> None:
    history = history_of(kickoff())
    (event,) = decide(history, webhook("run-succeeded"), now=NOW)
    assert isinstance(event, RunSucceeded)
    event = replace(event, started_at=None, finished_at=None, run_time_s=12.5)

    state = replay([*history, event])

    assert state is not None
    assert (state.duration_s, state.started_at, state.finished_at) == (12.5, None, None)


def test_resurrection_clears_finished_time_even_when_the_snapshot_has_one() -> None:
    run_id = "HG7ML7M8z78YcAPEB"
    history = history_of(
        kickoff(run_id=run_id),
        webhook("documented/run-aborted-from-task", resurrect_count=0),
        webhook("documented/run-resurrected-twice"),
    )

    state = replay(history)

    assert state is not None
    assert (state.status, state.resurrect_count, state.finished_at, state.duration_s) == (
        RunStatus.RUNNING,
        2,
        None,
        None,
    )
    assert state.started_at == datetime(2019, 11, 30, 7, 34, 24, 202000, tzinfo=UTC)


def test_rejection_on_the_run_stream_only_counts() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"))
    (rejection,) = decide(history, webhook("run-created"), now=NOW + timedelta(hours=1))
    before = replay(history)
    assert before is not None

    assert evolve(before, rejection) == replace(before, event_count=before.event_count + 1)


def test_missing_run_record_rejection_found_in_a_run_stream_is_counted_and_ignored() -> None:
    (orphan,) = decide([], webhook("run-succeeded"), now=NOW)
    assert isinstance(orphan, UpdateRejected)
    assert orphan.reason is RejectionReason.MISSING_RUN_RECORD
    before = replay([run_created()])
    assert before is not None

    assert evolve(before, orphan) == replace(before, event_count=2)


def test_event_of_another_run_in_the_stream_is_corrupt() -> None:
    (stray,) = decide(history_of(kickoff()), record_results(), now=NOW)
    other = replay([run_created(run_id=new_run_id())])

    with pytest.raises(CorruptHistory, match="holds ResultsRecorded"):
        evolve(other, stray)


def test_to_record_is_the_api_run_record_as_json() -> None:
    history = history_of(kickoff(), webhook("run-succeeded"), record_results())
    state = replay(history)
    assert state is not None

    assert state.to_record() == {
        "run_id": FIXTURE_RUN_ID,
        "client_id": "acme-recruiting",
        "actor_id": "Hk7sPq2VnR4mZt8Lc",
        "task_id": None,
        "status": "succeeded",
        "apify_status": "SUCCEEDED",
        "status_message": "Scraped 184 posts from 12 profiles",
        "created_at": "2026-03-14T12:00:00+00:00",
        "started_at": "2026-03-14T09:38:02.114000+00:00",
        "finished_at": "2026-03-14T09:42:16.981000+00:00",
        "duration_s": 254.867,
        "dataset_id": "Lm8vR2kXw5QaT9jNe",
        "usage_usd": 0.3721,
        "resurrect_count": 0,
        "metrics": {"errors": 0.0, "posts_harvested": 184.0},
        "event_count": 3,
        "updated_at": "2026-03-14T12:00:02+00:00",
    }


def test_fast_assembly_equals_the_dataclass_constructor() -> None:
    names = [f.name for f in fields(RunState)]
    values = [f"value-{i}" for i in range(len(names))]

    assembled = _assemble(*values)  # type: ignore[arg-type]

    assert assembled == RunState(**dict(zip(names, values, strict=True)))  # type: ignore[arg-type]
    with pytest.raises(FrozenInstanceError):
        assembled.status = RunStatus.FAILED  # type: ignore[misc]

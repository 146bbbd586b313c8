"""Results reports: recorded in any state, idempotent, merged by metric name."""

from __future__ import annotations

import pytest

from statemachine import ResultsRecorded, RunStatus, decide, replay, results_event_id
from statemachine.commands import ApplyApifyWebhook, KickoffRun
from tests.builders import FIXTURE_RUN_ID, NOW, history_of, kickoff, record_results, webhook

_STEPS: dict[RunStatus, tuple[KickoffRun | ApplyApifyWebhook, ...]] = {
    RunStatus.CREATED: (kickoff(),),
    RunStatus.RUNNING: (kickoff(), webhook("run-created")),
    RunStatus.SUCCEEDED: (kickoff(), webhook("run-succeeded")),
    RunStatus.FAILED: (kickoff(), webhook("run-failed")),
    RunStatus.ABORTED: (kickoff(), webhook("run-aborted")),
    RunStatus.TIMED_OUT: (kickoff(), webhook("run-timed-out")),
}


@pytest.mark.parametrize("status", list(_STEPS))
def test_results_are_recorded_on_a_run_in_any_state(status: RunStatus) -> None:
    history = history_of(*_STEPS[status])
    command = record_results(request_key="r1", details={"source": "processor"})

    events = decide(history, command, now=NOW)

    assert events == [
        ResultsRecorded(
            event_id=results_event_id(FIXTURE_RUN_ID, "r1"),
            at=NOW,
            run_id=FIXTURE_RUN_ID,
            metrics=(("errors", 0.0), ("posts_harvested", 184.0)),
            details={"source": "processor"},
            request_key="r1",
        )
    ]
    state = replay(history + events)
    assert state is not None
    assert state.status == status


def test_same_results_report_again_produces_nothing() -> None:
    history = history_of(kickoff(), record_results(request_key="r1"))

    assert decide(history, record_results(request_key="r1"), now=NOW) == []


def test_later_results_replace_metrics_of_the_same_names() -> None:
    history = history_of(
        kickoff(),
        record_results(request_key="r1", metrics={"posts_harvested": 100, "errors": 2}),
        record_results(request_key="r2", metrics={"errors": 0, "profiles_scanned": 12}),
    )

    state = replay(history)

    assert state is not None
    assert state.metrics == (("errors", 0), ("posts_harvested", 100), ("profiles_scanned", 12))

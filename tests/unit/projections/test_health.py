"""projections.health.judge: when a projection counts as stuck (pure, fixed clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from projections.checkpoints import Checkpoint
from projections.health import judge

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def checkpoint(
    *, position: int, idle_s: float = 0, heartbeat_s: float = 0, error: str | None = None
) -> Checkpoint:
    return Checkpoint(
        name="run_records",
        position=position,
        updated_at=NOW - timedelta(seconds=idle_s),
        heartbeat_at=NOW - timedelta(seconds=heartbeat_s),
        runner="host:1",
        last_error=error,
        last_error_at=NOW if error else None,
        failing_position=position + 1 if error else None,
    )


def problem_of(row: Checkpoint | None, head: int) -> str | None:
    rows = [] if row is None else [row]
    [health] = judge(["run_records"], rows, head=head, now=NOW)
    return health.problem


def test_projection_caught_up_is_healthy_however_long_it_has_been_idle() -> None:
    assert problem_of(checkpoint(position=10, idle_s=3600, heartbeat_s=3600), head=10) is None


def test_projection_behind_but_advancing_is_healthy() -> None:
    assert problem_of(checkpoint(position=10, idle_s=1), head=5000) is None


def test_projection_is_stuck_when_its_last_batch_failed() -> None:
    assert problem_of(checkpoint(position=10, error="boom"), head=12) == "failing at position 11"


def test_projection_is_stuck_when_it_lags_and_no_runner_beats() -> None:
    problem = problem_of(checkpoint(position=10, heartbeat_s=120), head=12)
    assert problem == "no runner: last heartbeat 120s ago"


def test_projection_is_stuck_when_it_lags_and_its_position_does_not_move() -> None:
    problem = problem_of(checkpoint(position=10, idle_s=90), head=12)
    assert problem == "not advancing: 2 events behind for 90s"


def test_projection_never_started_is_stuck_only_once_the_log_has_events() -> None:
    assert problem_of(None, head=0) is None
    assert problem_of(None, head=3) == "never started"


def test_first_event_after_a_quiet_hour_is_not_a_projection_stuck_for_an_hour() -> None:
    row = checkpoint(position=10, idle_s=3600)
    just_now = {10: NOW - timedelta(seconds=2)}
    [health] = judge(["run_records"], [row], head=11, now=NOW, waiting_since=just_now)
    assert health.problem is None


def test_an_event_waiting_long_after_a_quiet_hour_is_stuck() -> None:
    row = checkpoint(position=10, idle_s=3600)
    long_ago = {10: NOW - timedelta(seconds=90)}
    [health] = judge(["run_records"], [row], head=11, now=NOW, waiting_since=long_ago)
    assert health.problem == "not advancing: 1 events behind for 90s"

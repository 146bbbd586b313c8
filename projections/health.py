"""Is each projection keeping up? A pure judgement over checkpoint rows, for /health.

A projection is *stuck* when it has events to apply and cannot or does not apply them:
- it is failing (the last batch raised; the runner retries with back-off, the error is kept);
- nobody runs it: no heartbeat for `heartbeat_stale_s` while it lags (every active runner
  beats every few seconds, whichever process it lives in);
- it lags and its position has not moved for `stuck_after_s`.
A projection that lags but moves is merely behind, which load makes normal: not degraded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.checkpoints import Checkpoint


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectionHealth:
    name: str
    position: int
    lag: int
    heartbeat_age_s: float | None
    idle_s: float | None
    runner: str | None
    last_error: str | None
    failing_position: int | None
    problem: str | None
    """Why it is stuck, or None when it is keeping up."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": "ok" if self.problem is None else "stuck",
            "position": self.position,
            "lag": self.lag,
            "heartbeat_age_s": _rounded(self.heartbeat_age_s),
            "idle_s": _rounded(self.idle_s),
            "runner": self.runner,
            # The exception's type only: /health needs no token, and a database error's text
            # can carry SQL and values (the whole text is in `runledger projections status`).
            "last_error": None if self.last_error is None else self.last_error.split(":", 1)[0],
            "failing_position": self.failing_position,
            "problem": self.problem,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def judge(
    names: Iterable[str],
    rows: Iterable[Checkpoint],
    *,
    head: int,
    now: datetime,
    waiting_since: Mapping[int, datetime] | None = None,
    heartbeat_stale_s: float = 30.0,
    stuck_after_s: float = 60.0,
) -> list[ProjectionHealth]:
    """The health of each named projection, given its checkpoint row (if any) and the log head.

    `waiting_since[position]`: when the first event after `position` was recorded. A
    projection is "not advancing" only when that event has waited `stuck_after_s` too: after
    a quiet hour, the first new event is not a projection stuck for an hour.
    """
    by_name = {row.name: row for row in rows}
    waiting = waiting_since or {}
    return [_judge_one(name, by_name.get(name), head, now, waiting, heartbeat_stale_s,
                       stuck_after_s)
            for name in names]  # fmt: skip


def _judge_one(
    name: str,
    row: Checkpoint | None,
    head: int,
    now: datetime,
    waiting_since: Mapping[int, datetime],
    heartbeat_stale_s: float,
    stuck_after_s: float,
) -> ProjectionHealth:
    if row is None:
        problem = "never started" if head > 0 else None
        return ProjectionHealth(
            name=name, position=0, lag=head, heartbeat_age_s=None, idle_s=None, runner=None,
            last_error=None, failing_position=None, problem=problem,
        )  # fmt: skip
    lag = max(head - row.position, 0)
    heartbeat_age = (now - row.heartbeat_at).total_seconds()
    idle = (now - row.updated_at).total_seconds()
    first_waiting = waiting_since.get(row.position)
    stalled = idle if first_waiting is None else min(idle, (now - first_waiting).total_seconds())
    problem = None
    if row.last_error is not None:
        problem = f"failing at position {row.failing_position}"
    elif lag and heartbeat_age > heartbeat_stale_s:
        problem = f"no runner: last heartbeat {heartbeat_age:.0f}s ago"
    elif lag and stalled > stuck_after_s:
        problem = f"not advancing: {lag} events behind for {stalled:.0f}s"
    return ProjectionHealth(
        name=name, position=row.position, lag=lag, heartbeat_age_s=heartbeat_age, idle_s=idle,
        runner=row.runner, last_error=row.last_error, failing_position=row.failing_position,
        problem=problem,
    )  # fmt: skip

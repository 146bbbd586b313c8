"""The facts recorded about runs. The stored type name is the class name and never changes.

Every event has a deterministic `event_id` (see ids.py) and `at`, our recording time: the `now`
that was passed to `decide`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias

from statemachine.states import JsonObject, RunStatus


class RejectionReason(StrEnum):
    """Why an update was refused; each refusal is recorded as `UpdateRejected`."""

    STALE = "stale"
    INVALID_TRANSITION = "invalid_transition"
    MISSING_RUN_RECORD = "missing_run_record"
    DUPLICATE_CREATION = "duplicate_creation"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCreated:
    """A run was kicked off: the one place where a run record comes to exist."""

    event_id: uuid.UUID
    at: datetime
    run_id: str
    client_id: str
    actor_id: str | None
    task_id: str | None
    input: JsonObject
    requested_by: str | None
    request_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApifyRunEvent:
    """Base of the events derived from one Apify delivery (never recorded itself).

    It carries the facts read from the delivery's `resource` (a snapshot from when Apify fired
    the event) and the complete `delivery` ({"headers": X-Apify-* headers, "body": the whole
    body}, unknown fields kept) so that a replay shows exactly what arrived.
    """

    event_id: uuid.UUID
    at: datetime
    run_id: str
    delivery_key: str
    apify_status: str | None
    status_message: str | None
    started_at: datetime | None
    finished_at: datetime | None
    run_time_s: float | None
    dataset_id: str | None
    usage_usd: float | None
    resurrect_count: int
    delivery: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(ApifyRunEvent):
    """ACTOR.RUN.CREATED arrived: the run is running on Apify."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSucceeded(ApifyRunEvent):
    """ACTOR.RUN.SUCCEEDED arrived."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailed(ApifyRunEvent):
    """ACTOR.RUN.FAILED arrived."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAborted(ApifyRunEvent):
    """ACTOR.RUN.ABORTED arrived."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTimedOut(ApifyRunEvent):
    """ACTOR.RUN.TIMED_OUT arrived (status spelled TIMED-OUT by Apify)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResurrected(ApifyRunEvent):
    """ACTOR.RUN.RESURRECTED arrived: a finished run runs again, one generation later."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultsRecorded:
    """The results processor reported metrics for a run; later reports merge by name."""

    event_id: uuid.UUID
    at: datetime
    run_id: str
    metrics: tuple[tuple[str, float], ...]
    details: JsonObject | None
    request_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateRejected:
    """A command the lifecycle refused, with what was received and why."""

    event_id: uuid.UUID
    at: datetime
    run_id: str
    reason: RejectionReason
    command: str
    status_before: RunStatus | None
    received: JsonObject
    message: str
    delivery_key: str | None = None
    request_key: str | None = None


RunStatusEvent: TypeAlias = (
    RunStarted | RunSucceeded | RunFailed | RunAborted | RunTimedOut | RunResurrected
)
"""The events derived from an Apify delivery (all subclasses of `ApifyRunEvent`)."""

Event: TypeAlias = (
    RunCreated
    | RunStarted
    | RunSucceeded
    | RunFailed
    | RunAborted
    | RunTimedOut
    | RunResurrected
    | ResultsRecorded
    | UpdateRejected
)

EVENT_TYPES: tuple[type[Event], ...] = (
    RunCreated,
    RunStarted,
    RunSucceeded,
    RunFailed,
    RunAborted,
    RunTimedOut,
    RunResurrected,
    ResultsRecorded,
    UpdateRejected,
)

"""Run statuses and the folded state of one run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeAlias

JsonObject: TypeAlias = Mapping[str, Any]
"""A JSON object as parsed (a dict at run time); read-only by convention and by type."""


class RunStatus(StrEnum):
    """Our status of a run: Apify's run statuses plus our own start, `created`."""

    CREATED = "created"
    RUNNING = "running"
    TIMING_OUT = "timing_out"
    ABORTING = "aborting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ABORTED = "aborted"


TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABORTED}
)


def is_terminal(status: RunStatus) -> bool:
    """Whether a run in this status has finished (until a resurrection)."""
    return status in TERMINAL_STATUSES


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunState:
    """One run as its events make it: the fold of `evolve` over the run stream."""

    run_id: str
    client_id: str
    actor_id: str | None
    task_id: str | None
    requested_by: str | None
    input: JsonObject
    status: RunStatus
    apify_status: str | None
    status_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    dataset_id: str | None
    usage_usd: float | None
    resurrect_count: int
    metrics: tuple[tuple[str, float], ...]
    event_count: int
    updated_at: datetime

    def to_record(self) -> dict[str, Any]:
        """The run record of API.md as a JSON-ready dict (the API adds `version`)."""
        return {
            "run_id": self.run_id,
            "client_id": self.client_id,
            "actor_id": self.actor_id,
            "task_id": self.task_id,
            "status": self.status.value,
            "apify_status": self.apify_status,
            "status_message": self.status_message,
            "created_at": self.created_at.isoformat(),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_s": self.duration_s,
            "dataset_id": self.dataset_id,
            "usage_usd": self.usage_usd,
            "resurrect_count": self.resurrect_count,
            "metrics": dict(self.metrics),
            "event_count": self.event_count,
            "updated_at": self.updated_at.isoformat(),
        }

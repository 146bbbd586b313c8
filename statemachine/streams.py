"""Stream names: `run-<run_id>` for a run's life, `orphan-<run_id>` for updates before it."""

from __future__ import annotations

from statemachine.events import Event, RejectionReason, UpdateRejected


def run_stream(run_id: str) -> str:
    """The stream of one run's life; its first event is always `RunCreated`."""
    return f"run-{run_id}"


def orphan_stream(run_id: str) -> str:
    """The stream of updates that arrived for `run_id` before it was created."""
    return f"orphan-{run_id}"


def stream_for(event: Event) -> str:
    """Where `event` is appended: missing-run-record rejections go to the orphan stream."""
    if isinstance(event, UpdateRejected) and event.reason is RejectionReason.MISSING_RUN_RECORD:
        return orphan_stream(event.run_id)
    return run_stream(event.run_id)

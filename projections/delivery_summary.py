"""Small summaries of what a rejected command received, for the diagnostics views.

A rejection keeps the whole delivery (headers and body) in the log; the diagnostics tables keep
only what a person debugging needs to recognise it (which Apify event, which dispatch, what
status Apify reported, when Apify created it), so they stay small and quick to list. The whole
delivery is one `GET /runs/{run_id}/events` away. Pure functions over JSON values: `received`
is whatever arrived, so every field is read defensively.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WEBHOOK_COMMAND = "ApplyApifyWebhook"
RESULTS_COMMAND = "RecordResults"
KICKOFF_COMMAND = "KickoffRun"
MAX_TEXT = 200
"""Longest string kept in a summary (longer ones are cut and marked with …)."""
MAX_METRICS = 20
"""Most metric names kept in a results summary (the rest are counted)."""

_DISPATCH_ID_HEADER = "x-apify-webhook-dispatch-id"


def event_type_of(command: str) -> str:
    """What a missing-record attempt was: the Apify event type, or the command's name.

    `ApplyApifyWebhook:ACTOR.RUN.SUCCEEDED` → `ACTOR.RUN.SUCCEEDED`; `RecordResults` stays.
    """
    name, _, apify_event_type = command.partition(":")
    return apify_event_type if name == WEBHOOK_COMMAND and apify_event_type else command


def summarize_received(command: str, received: Any) -> dict[str, Any]:
    """The few fields of `received` that identify what arrived, by the kind of command."""
    kind = command.partition(":")[0]
    if not isinstance(received, Mapping):
        return {}
    if kind == WEBHOOK_COMMAND:
        return _webhook_summary(received)
    if kind == RESULTS_COMMAND:
        return _results_summary(received)
    if kind == KICKOFF_COMMAND:
        return {
            name: _short(received.get(name))
            for name in ("client_id", "actor_id", "task_id", "requested_by")
        }
    return {}


def _webhook_summary(received: Mapping[str, Any]) -> dict[str, Any]:
    body = _mapping(received.get("body"))
    resource = _mapping(body.get("resource"))
    stats = _mapping(resource.get("stats"))
    headers = _mapping(received.get("headers"))
    dispatch_id = next(
        (value for name, value in headers.items() if name.lower() == _DISPATCH_ID_HEADER), None
    )
    return {
        "apify_event_type": _short(body.get("eventType")),
        "dispatch_id": _short(dispatch_id),
        "apify_status": _short(resource.get("status")),
        "apify_created_at": _short(body.get("createdAt")),
        "resurrect_count": _number(stats.get("resurrectCount")),
    }


def _results_summary(received: Mapping[str, Any]) -> dict[str, Any]:
    metrics = _mapping(received.get("metrics"))
    names = sorted(str(name) for name in metrics)
    summary: dict[str, Any] = {
        "metrics": {name: _number(metrics[name]) for name in names[:MAX_METRICS]}
    }
    if len(names) > MAX_METRICS:
        summary["more_metrics"] = len(names) - MAX_METRICS
    return summary


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _short(value: Any) -> str | None:
    """A string kept short; anything else that is not a string is shown as absent."""
    if not isinstance(value, str):
        return None
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value

"""What caused a stored event: the kickoff, which Apify delivery, which results report.

Read back from the event itself (its request key, or the delivery kept with it), so that a
replay names the command of every step, rejections included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from statemachine import ApifyRunEvent, Event, ResultsRecorded, RunCreated

_DISPATCH_ID_HEADER = "x-apify-webhook-dispatch-id"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cause:
    """The command an event records the outcome of."""

    command: str
    """KickoffRun, ApplyApifyWebhook or RecordResults."""
    request_key: str | None = None
    """The kickoff's or results report's Idempotency-Key (or the body's fingerprint)."""
    apify_event_type: str | None = None
    dispatch_id: str | None = None
    apify_created_at: str | None = None
    """The delivery's own createdAt, as Apify sent it."""
    delivery_key: str | None = None
    metrics: Mapping[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "request_key": self.request_key,
            "apify_event_type": self.apify_event_type,
            "dispatch_id": self.dispatch_id,
            "apify_created_at": self.apify_created_at,
            "delivery_key": self.delivery_key,
            "metrics": None if self.metrics is None else dict(self.metrics),
        }


def cause_of(event: Event) -> Cause:
    """What the event says about the command that produced it."""
    if isinstance(event, RunCreated):
        return Cause(command="KickoffRun", request_key=event.request_key)
    if isinstance(event, ApifyRunEvent):
        return _delivery_cause(event.delivery, event.delivery_key)
    if isinstance(event, ResultsRecorded):
        return Cause(
            command="RecordResults", request_key=event.request_key, metrics=dict(event.metrics)
        )
    command, _, apify_event_type = event.command.partition(":")
    if apify_event_type:
        cause = _delivery_cause(event.received, event.delivery_key)
        return Cause(
            command=command,
            apify_event_type=cause.apify_event_type or apify_event_type,
            dispatch_id=cause.dispatch_id,
            apify_created_at=cause.apify_created_at,
            delivery_key=event.delivery_key,
        )
    metrics = event.received.get("metrics") if command == "RecordResults" else None
    return Cause(
        command=command,
        request_key=event.request_key,
        metrics=metrics if isinstance(metrics, dict) else None,
    )


def _delivery_cause(delivery: Mapping[str, Any], delivery_key: str | None) -> Cause:
    """The delivery's event type, dispatch id and createdAt, from what was kept of it."""
    headers = delivery.get("headers")
    body = delivery.get("body")
    dispatch_id = None
    if isinstance(headers, dict):
        dispatch_id = next(
            (v for k, v in headers.items() if k.lower() == _DISPATCH_ID_HEADER), None
        )
    event_type = created_at = None
    if isinstance(body, dict):
        event_type, created_at = body.get("eventType"), body.get("createdAt")
    return Cause(
        command="ApplyApifyWebhook",
        apify_event_type=event_type if isinstance(event_type, str) else None,
        dispatch_id=dispatch_id if isinstance(dispatch_id, str) else None,
        apify_created_at=created_at if isinstance(created_at, str) else None,
        delivery_key=delivery_key,
    )

"""Pure parsing of one Apify webhook delivery (default payload) into an `ApifyDelivery`.

Apify may add fields and status values at any time: unknown ones are kept (the whole body travels
with the delivery) and never refused. Only the fields we read are type-checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from statemachine.errors import InvalidDelivery
from statemachine.states import JsonObject

RUN_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "ACTOR.RUN.CREATED",
        "ACTOR.RUN.SUCCEEDED",
        "ACTOR.RUN.FAILED",
        "ACTOR.RUN.ABORTED",
        "ACTOR.RUN.TIMED_OUT",
        "ACTOR.RUN.RESURRECTED",
    }
)
DISPATCH_ID_HEADER = "X-Apify-Webhook-Dispatch-Id"
_APIFY_PREFIX = "x-apify-"
_RUN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

__all__ = [
    "DISPATCH_ID_HEADER",
    "RUN_EVENT_TYPES",
    "ApifyDelivery",
    "IgnoredDelivery",
    "InvalidDelivery",
    "is_valid_run_id",
    "parse_delivery",
]


def is_valid_run_id(value: str) -> bool:
    """Whether `value` is 1–128 characters of letters, digits and `._:-`."""
    return _RUN_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class IgnoredDelivery:
    """A delivery we accept and drop: Apify's `TEST` button, `ACTOR.BUILD.*` events."""

    event_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApifyDelivery:
    """One run event delivered by Apify: the facts we read, plus everything that arrived."""

    event_type: str
    run_id: str
    dispatch_id: str | None
    created_at: datetime | None
    resurrect_count: int
    status: str | None
    status_message: str | None
    started_at: datetime | None
    finished_at: datetime | None
    run_time_s: float | None
    dataset_id: str | None
    usage_usd: float | None
    headers: Mapping[str, str]
    body: JsonObject

    @property
    def delivery_key(self) -> str:
        """What identifies this delivery across Apify's retries."""
        if self.dispatch_id is not None:
            return self.dispatch_id
        created = self.body.get("createdAt")
        return f"{self.run_id}|{self.event_type}|{self.resurrect_count}|{created}"

    @property
    def delivery(self) -> dict[str, Any]:
        """The complete delivery as kept with its event: `X-Apify-*` headers and the body."""
        return {"headers": dict(self.headers), "body": self.body}


def parse_delivery(
    body: object, headers: Mapping[str, str], *, run_id_param: str | None
) -> ApifyDelivery | IgnoredDelivery:
    """Read one delivery; raise `InvalidDelivery` when it is not a run event we understand."""
    if not isinstance(body, dict):
        raise InvalidDelivery("not_an_object", "the delivery body is not a JSON object")
    event_type = body.get("eventType")
    if not isinstance(event_type, str):
        raise InvalidDelivery(
            "missing_event_type",
            "the delivery has no eventType string",
            {"eventType": "required, a string"},
        )
    if event_type == "TEST" or event_type.startswith("ACTOR.BUILD."):
        return IgnoredDelivery(event_type=event_type)
    if event_type not in RUN_EVENT_TYPES:
        raise InvalidDelivery(
            "unknown_event_type",
            f"unknown eventType {event_type!r}",
            {"eventType": f"one of {', '.join(sorted(RUN_EVENT_TYPES))}, TEST, ACTOR.BUILD.*"},
        )
    return _parse_run_event(body, event_type, headers, run_id_param)


def _parse_run_event(
    body: dict[str, Any], event_type: str, headers: Mapping[str, str], run_id_param: str | None
) -> ApifyDelivery:
    problems: dict[str, str] = {}
    event_data = _object(body, "eventData", problems, required=False)
    resource = _object(body, "resource", problems, required=True)
    stats = _object(resource, "stats", problems, required=False, prefix="resource.")
    run_id, run_id_code = _run_id(run_id_param, event_data, resource, problems)
    apify_headers = {k: v for k, v in headers.items() if k.lower().startswith(_APIFY_PREFIX)}
    dispatch_id = _header(apify_headers, DISPATCH_ID_HEADER)
    created_at = _created_at(body, dispatch_id, problems)
    started_at = _moment(
        _string(resource, "startedAt", problems, "resource."), "resource.startedAt", problems
    )
    finished_at = _moment(
        _string(resource, "finishedAt", problems, "resource."), "resource.finishedAt", problems
    )
    status = _string(resource, "status", problems, "resource.")
    status_message = _string(resource, "statusMessage", problems, "resource.")
    dataset_id = _string(resource, "defaultDatasetId", problems, "resource.")
    resurrect_count = _count(stats, "resurrectCount", problems)
    run_time_s = _number(stats, "runTimeSecs", problems, "resource.stats.")
    usage_usd = _number(resource, "usageTotalUsd", problems, "resource.")
    if problems or run_id is None:
        # The specific run-id code only when that is the one problem, else the general one.
        code = run_id_code if run_id_code and len(problems) == 1 else "invalid_delivery"
        raise InvalidDelivery(code, _summary(problems), problems)
    return ApifyDelivery(
        event_type=event_type,
        run_id=run_id,
        dispatch_id=dispatch_id,
        created_at=created_at,
        resurrect_count=resurrect_count,
        status=status,
        status_message=status_message,
        started_at=started_at,
        finished_at=finished_at,
        run_time_s=run_time_s,
        dataset_id=dataset_id,
        usage_usd=usage_usd,
        headers=apify_headers,
        body=body,
    )


def _created_at(
    body: JsonObject, dispatch_id: str | None, problems: dict[str, str]
) -> datetime | None:
    """The payload's createdAt; required only when no dispatch id identifies the delivery."""
    text = _string(body, "createdAt", problems)
    if text is None and dispatch_id is None and "createdAt" not in problems:
        problems["createdAt"] = "required when there is no X-Apify-Webhook-Dispatch-Id header"
    return _moment(text, "createdAt", problems)


def _summary(problems: Mapping[str, str]) -> str:
    listed = "; ".join(f"{field}: {problem}" for field, problem in sorted(problems.items()))
    return f"the delivery is not an Apify run event we can read ({listed})"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _run_id(
    param: str | None, event_data: JsonObject, resource: JsonObject, problems: dict[str, str]
) -> tuple[str | None, str | None]:
    """The run id and, when there is none usable, the error code that says why."""
    candidates = (
        ("run_id", param),
        ("eventData.actorRunId", event_data.get("actorRunId")),
        ("resource.id", resource.get("id")),
    )
    for field, value in candidates:
        if value is None:
            continue
        if not isinstance(value, str) or not is_valid_run_id(value):
            problems[field] = "a run id: 1 to 128 characters of letters, digits and ._:-"
            return None, "invalid_run_id"
        return value, None
    problems["run_id"] = (
        "no run id: the query parameter run_id, eventData.actorRunId or resource.id"
    )
    return None, "missing_run_id"


def _object(
    container: JsonObject,
    key: str,
    problems: dict[str, str],
    *,
    required: bool,
    prefix: str = "",
) -> JsonObject:
    value = container.get(key)
    if isinstance(value, dict):
        return value
    if value is not None or required:
        problems[prefix + key] = "required, an object" if required else "an object or null"
    return {}


def _string(
    container: JsonObject, key: str, problems: dict[str, str], prefix: str = ""
) -> str | None:
    value = container.get(key)
    if value is None or isinstance(value, str):
        return value
    problems[prefix + key] = "a string or null"
    return None


def _number(
    container: JsonObject, key: str, problems: dict[str, str], prefix: str = ""
) -> float | None:
    value = container.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems[prefix + key] = "a number or null"
        return None
    return float(value)


def _count(container: JsonObject, key: str, problems: dict[str, str]) -> int:
    value = container.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems["resource.stats." + key] = "a non-negative integer"
        return 0
    return value


def _moment(text: str | None, field: str, problems: dict[str, str]) -> datetime | None:
    """Parse an ISO 8601 time, kept in UTC; one without a zone is taken as UTC (Apify always
    sends `Z`). Other offsets are converted: an offset with seconds (`+05:30:15`, which Python
    reads) would otherwise lose its seconds in JSON and the projections would drift."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems[field] = "an ISO 8601 date and time"
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

"""The component schemas of the query answers in the OpenAPI document (see openapi_queries).

Enumerations come from the state machine itself, so the document cannot drift from the values
the server writes.
"""

from __future__ import annotations

from typing import Any

from statemachine import RejectionReason, RunStatus

ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}
STATUS = {"type": "string", "enum": [status.value for status in RunStatus]}
REASON = {"type": "string", "enum": [reason.value for reason in RejectionReason]}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_POSITION = {"type": "integer", "minimum": 1}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_STRING_OR_NULL = {"type": ["string", "null"]}
_OBJECT = {"type": "object"}
_NUMBERS = {"type": "object", "additionalProperties": {"type": "number"}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


_SUMMARY = {
    "runs": {"type": "integer", "minimum": 0},
    "runs_by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
    "success_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    "mean_duration_s": _NUMBER_OR_NULL,
    "p95_duration_s": _NUMBER_OR_NULL,
    "metrics": _NUMBERS,
    "usage_usd": {"type": "number"},
    "last_run": {
        "oneOf": [
            {"type": "null"},
            json_object(["run_id", "created_at"], run_id=ID, created_at=TIME),
        ]
    },
}
_SUMMARY_REQUIRED = list(_SUMMARY)

_EVENT = json_object(
    ["position", "stream", "version", "type", "data", "metadata", "recorded_at"],
    position=_POSITION,
    stream={"type": "string"},
    version={"type": "integer", "minimum": 1},
    event_id={"type": "string", "format": "uuid"},
    type={"type": "string"},
    data=_OBJECT,
    metadata=_OBJECT,
    recorded_at=TIME,
)

_STEP_REQUIRED = [
    "position",
    "stream",
    "version",
    "type",
    "at",
    "in_history",
    "cause",
    "status_before",
    "status_after",
    "changes",
    "rejection",
]
_STEP = json_object(
    _STEP_REQUIRED,
    position=_POSITION,
    recorded_at=TIME,
    stream={"type": "string"},
    version={"type": "integer", "minimum": 1},
    event_id={"type": "string"},
    type={"type": "string"},
    at=TIME,
    in_history={"type": "boolean"},
    cause=json_object(["command"], command={"type": "string"}),
    status_before={"oneOf": [STATUS, {"type": "null"}]},
    status_after={"oneOf": [STATUS, {"type": "null"}]},
    changes={"type": "object", "additionalProperties": {"type": "array"}},
    rejection={
        "oneOf": [
            {"type": "null"},
            json_object(["reason", "message"], reason=REASON, message={"type": "string"}),
        ]
    },
    error=_STRING_OR_NULL,
)


def query_schemas() -> dict[str, Any]:
    """The component schemas the query paths refer to (RunRecord and Error live beside)."""
    return {
        "RunEvents": json_object(
            ["run_id", "events"], run_id=ID, events={"type": "array", "items": _EVENT}
        ),
        "Timeline": json_object(
            ["run_id", "steps", "state"],
            run_id=ID,
            as_of={"type": ["object", "null"]},
            steps={"type": "array", "items": _STEP},
            state={"oneOf": [{"type": "null"}, ref("RunRecord")]},
        ),
        "MissingRecord": json_object(
            ["run_id", "first_seen", "last_seen", "attempts", "event_types", "resolved_at"],
            run_id=ID,
            first_seen=TIME,
            last_seen=TIME,
            attempts={"type": "integer", "minimum": 1},
            event_types={"type": "array", "items": {"type": "string"}},
            last_delivery=_OBJECT,
            resolved_at=TIME_OR_NULL,
            first_position=_POSITION,
            last_position=_POSITION,
            resolved_position={"type": ["integer", "null"]},
        ),
        "Rejection": json_object(
            ["position", "run_id", "reason", "command", "message", "received", "rejected_at"],
            position=_POSITION,
            run_id=ID,
            reason=REASON,
            command={"type": "string"},
            status_before={"oneOf": [STATUS, {"type": "null"}]},
            message={"type": "string"},
            received=_OBJECT,
            rejected_at=TIME,
        ),
        "DeadLetter": json_object(
            ["position", "received_at", "reason", "message", "headers", "body"],
            position=_POSITION,
            event_id={"type": "string", "format": "uuid"},
            received_at=TIME,
            reason={"type": "string"},
            message={"type": "string"},
            details={},
            headers={"type": "object", "additionalProperties": {"type": "string"}},
            body={"description": "the body as JSON; null when kept as body_base64"},
            body_base64=_STRING_OR_NULL,
            body_preview=_STRING_OR_NULL,
        ),
        "ClientReport": json_object(["client_id", *_SUMMARY_REQUIRED], client_id=ID, **_SUMMARY),
        "DailyReport": json_object(
            ["client_id", "day", *_SUMMARY_REQUIRED],
            client_id=ID,
            day={"type": "string", "format": "date"},
            **_SUMMARY,
        ),
        "Health": json_object(
            ["status"],
            status={"type": "string", "enum": ["ok", "degraded"]},
            database=json_object(["status"], status={"type": "string"}),
            projections={"type": "array", "items": _OBJECT},
            check={"type": ["object", "null"]},
        ),
    }

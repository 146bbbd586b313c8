"""The query half of the OpenAPI document: every `GET` of API.md, its parameters and answers.

api/openapi.py merges these paths, and the schemas of api/openapi_query_schemas.py, into the
served document.
"""

from __future__ import annotations

from typing import Any

from api.openapi_query_schemas import ID, REASON, STATUS, TIME, json_object, ref


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _json_or_csv(schema: dict[str, Any], description: str) -> dict[str, Any]:
    answer = _json(schema, description + " (text/csv when the request's Accept asks for it)")
    answer["content"]["text/csv"] = {"schema": {"type": "string"}}
    return answer


def _error(description: str) -> dict[str, Any]:
    return _json(ref("Error"), description)


def _page(item: str) -> dict[str, Any]:
    return json_object(
        ["items", "next_cursor"],
        items={"type": "array", "items": ref(item)},
        next_cursor={
            "type": ["string", "null"],
            "description": "pass as `cursor` for the next page; null on the last page",
        },
    )


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_MIN_POSITION = _query(
    "min_position",
    {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    "wait (at most 5 s, then 503 projection_behind) until the answer includes the log up to "
    "this position: pass a command's `position` to read your own write",
)
_LIMIT = _query(
    "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "page size"
)
_DEAD_LETTER_LIMIT = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": 50, "default": 20},
    "page size (small: each dead letter holds a whole body of up to the body limit)",
)
_CURSOR = _query("cursor", {"type": "string", "minLength": 1}, "the previous page's `next_cursor`")
_RUN_ID_PATH = {"name": "run_id", "in": "path", "required": True, "schema": ID}
_UNAVAILABLE = {
    "description": "the database is unavailable, or `min_position` was not reached in time; "
    "retry after Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": ref("Error")}},
}
_QUERY_ERRORS = {
    "401": _error("missing or wrong token"),
    "422": _error("an invalid parameter; details name each one"),
    "503": _UNAVAILABLE,
}


def _get(
    operation_id: str,
    summary: str,
    parameters: list[dict[str, Any]],
    answer: dict[str, Any],
    *,
    not_found: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses = {"200": answer, **_QUERY_ERRORS}
    if not_found is not None:
        responses["404"] = not_found
    return {
        "get": {
            "summary": summary,
            "operationId": operation_id,
            "parameters": parameters,
            "responses": responses,
        }
    }


_NOT_FOUND = _error("run_not_found: no such run")


def _run_paths() -> dict[str, Any]:
    return {
        "/runs": _get(
            "listRuns",
            "Run records, newest first (by created_at, run_id), with a stable cursor",
            [
                _query("client_id", ID, "only this client's runs"),
                _query("status", STATUS, "only runs in this status"),
                _query("created_from", TIME, "created at or after (ISO 8601 with a zone)"),
                _query("created_to", TIME, "created before (ISO 8601 with a zone)"),
                _LIMIT,
                _CURSOR,
                _MIN_POSITION,
            ],
            _json_or_csv(_page("RunRecord"), "a page of run records"),
        ),
        "/runs/{run_id}": _get(
            "getRun",
            "One run record",
            [_RUN_ID_PATH, _MIN_POSITION],
            _json(ref("RunRecord"), "the run record"),
            not_found=_NOT_FOUND,
        ),
        "/runs/{run_id}/events": _get(
            "getRunEvents",
            "The run's stream and its orphan stream, in log order, read from the log itself",
            [_RUN_ID_PATH, _MIN_POSITION],
            _json(ref("RunEvents"), "the run's events"),
            not_found=_error("run_not_found: neither stream exists"),
        ),
        "/runs/{run_id}/timeline": _get(
            "getRunTimeline",
            "The run's replay: one step per event, and the record as of the last step",
            [
                _RUN_ID_PATH,
                _query(
                    "as_of",
                    {"type": "string", "minLength": 1},
                    "stop at a log position (a whole number) or an ISO 8601 time with a zone",
                ),
            ],
            _json(ref("Timeline"), "the timeline"),
            not_found=_error("run_not_found: neither stream exists"),
        ),
    }


def _diagnostics_paths() -> dict[str, Any]:
    return {
        "/diagnostics/missing-records": _get(
            "listMissingRecords",
            "Run ids that got updates without a creation event, most recently first seen first",
            [
                _query("resolved", {"type": "string", "enum": ["true", "false"]}, "resolved?"),
                _LIMIT,
                _CURSOR,
                _MIN_POSITION,
            ],
            _json(_page("MissingRecord"), "a page of missing records"),
        ),
        "/diagnostics/rejections": _get(
            "listRejections",
            "Every rejected update with its reason, newest first",
            [
                _query("reason", REASON, "only this reason"),
                _query("run_id", ID, "only this run"),
                _LIMIT,
                _CURSOR,
                _MIN_POSITION,
            ],
            _json(_page("Rejection"), "a page of rejections"),
        ),
        "/diagnostics/dead-letters": _get(
            "listDeadLetters",
            "Authenticated deliveries that could not be understood, kept whole, newest first",
            [
                _query("reason", {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}, "error code"),
                _DEAD_LETTER_LIMIT,
                _CURSOR,
                _MIN_POSITION,
            ],
            _json(_page("DeadLetter"), "a page of dead letters"),
        ),
    }


def _report_paths() -> dict[str, Any]:
    day = {"type": "string", "format": "date"}
    return {
        "/reports/clients": _get(
            "clientsReport",
            "Per client: runs by status, success rate, durations, metric totals, last run",
            [
                _query("from", day, "first creation day (UTC), inclusive"),
                _query("to", day, "last creation day (UTC), inclusive"),
                _MIN_POSITION,
            ],
            _json_or_csv(
                json_object(["items"], items={"type": "array", "items": ref("ClientReport")}),
                "one entry per client",
            ),
        ),
        "/reports/daily": _get(
            "dailyReport",
            "The same figures per client per day",
            [
                _query("client_id", ID, "only this client"),
                _query("from", day, "first creation day (UTC), inclusive"),
                _query("to", day, "last creation day (UTC), inclusive"),
                _MIN_POSITION,
            ],
            _json_or_csv(
                json_object(["items"], items={"type": "array", "items": ref("DailyReport")}),
                "one entry per client and day",
            ),
        ),
    }


def _operations_paths() -> dict[str, Any]:
    return {
        "/health": {
            "get": {
                "summary": "The database, each projection's lag and heartbeat, the last check",
                "operationId": "health",
                "security": [],
                "responses": {
                    "200": _json(ref("Health"), "ok"),
                    "503": _json(ref("Health"), "degraded: database down, or a stuck projection"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus text: events by type, rejections by reason, latency, lag",
                "operationId": "metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def query_paths() -> dict[str, Any]:
    """Every query path of API.md (GET only; /runs also has POST, merged by the caller)."""
    return {**_run_paths(), **_diagnostics_paths(), **_report_paths(), **_operations_paths()}

"""The OpenAPI 3 document of API.md: commands, queries, errors, security.

Kept as data next to the routes so a test can check that every route is documented and that
the server's answers match these schemas (schemathesis fuzzes the served copy).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from api.openapi_queries import query_paths
from api.openapi_query_schemas import query_schemas

_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}
_TEXT = {"type": ["string", "null"], "minLength": 1, "maxLength": 1024}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_STATUS = {
    "type": "string",
    "enum": [
        "created",
        "running",
        "timing_out",
        "aborting",
        "succeeded",
        "failed",
        "timed_out",
        "aborted",
    ],
}
_REASON = {
    "type": "string",
    "enum": ["stale", "invalid_transition", "missing_run_record", "duplicate_creation"],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_RUN_RECORD = {
    "type": "object",
    "required": ["run_id", "client_id", "status", "created_at", "event_count", "version"],
    "properties": {
        "run_id": _ID,
        "client_id": _ID,
        "actor_id": {"type": ["string", "null"]},
        "task_id": {"type": ["string", "null"]},
        "status": _STATUS,
        "apify_status": {"type": ["string", "null"]},
        "status_message": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": _TIME,
        "finished_at": _TIME,
        "duration_s": {"type": ["number", "null"]},
        "dataset_id": {"type": ["string", "null"]},
        "usage_usd": {"type": ["number", "null"]},
        "resurrect_count": {"type": "integer", "minimum": 0},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        "event_count": {"type": "integer", "minimum": 1},
        "version": {"type": "integer", "minimum": 1},
        "updated_at": {"type": "string", "format": "date-time"},
        "position": {"type": "integer", "minimum": 1},
    },
}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        },
        "outcome": {"type": "string"},
        "reason": _REASON,
        "run_id": {"type": "string"},
        "position": {"type": "integer"},
    },
}

_KICKOFF = {
    "type": "object",
    "required": ["run_id", "client_id"],
    "additionalProperties": False,
    "properties": {
        "run_id": _ID,
        "client_id": _ID,
        "actor_id": _TEXT,
        "task_id": _TEXT,
        "input": {"type": ["object", "null"]},
        "requested_by": _TEXT,
    },
}

_RESULTS = {
    "type": "object",
    "required": ["metrics"],
    "additionalProperties": False,
    "properties": {
        "metrics": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 200,
            "propertyNames": {"pattern": "^[A-Za-z0-9._:-]{1,128}$"},
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 2**53},
        },
        "details": {"type": ["object", "null"]},
    },
}

_APIFY_DELIVERY = {
    "type": "object",
    "description": "Apify's default webhook payload; unknown fields are kept.",
    "required": ["eventType"],
    "properties": {
        "userId": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "eventType": {"type": "string"},
        "eventData": {"type": "object"},
        "resource": {"type": "object"},
    },
}

_WEBHOOK_ANSWER = {
    "type": "object",
    "required": ["outcome"],
    "properties": {
        "outcome": {"type": "string", "enum": ["applied", "duplicate", "rejected", "ignored"]},
        "run_id": {"type": "string"},
        "status": {"oneOf": [_STATUS, {"type": "null"}]},
        "reason": _REASON,
        "position": {"type": "integer"},
        "event_type": {"type": "string"},
    },
}

_UNAVAILABLE = {
    "description": "the database is unavailable; retry after Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": _ref("Error")}},
}

_COMMON_ERRORS = {
    "400": _error("the body is not valid JSON"),
    "401": _error("missing or wrong token"),
    "408": _error("the body was not received in time"),
    "413": _error("the body is larger than RUNLEDGER_MAX_BODY_BYTES"),
    "415": _error("the body is not JSON"),
    "422": _error("well-formed but invalid; details name each bad field"),
    "503": _UNAVAILABLE,
}

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
}
_RUN_ID_PATH = {"name": "run_id", "in": "path", "required": True, "schema": _ID}


def _commands() -> dict[str, Any]:
    return {
        "/runs": {
            "post": {
                "summary": "Kick off a run: the only way a run record comes to exist",
                "operationId": "kickoffRun",
                "parameters": [_IDEMPOTENCY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Kickoff")}},
                },
                "responses": {
                    "201": _json(_ref("RunRecord"), "created; event RunCreated"),
                    "200": _json(_ref("RunRecord"), "the same request again; no new event"),
                    "409": _error("run_id already created by a different request"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/runs/{run_id}/results": {
            "post": {
                "summary": "Record what a run produced; later reports replace same-named metrics",
                "operationId": "recordResults",
                "parameters": [_RUN_ID_PATH, _IDEMPOTENCY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Results")}},
                },
                "responses": {
                    "200": _json(_ref("RunRecord"), "recorded (or the same report again)"),
                    "404": _error("missing_run_record: the run was never created"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/webhooks/apify": {
            "post": {
                "summary": "Ingest one Apify webhook delivery",
                "operationId": "apifyWebhook",
                "security": [{"webhookQuery": []}, {"webhookHeader": []}],
                "parameters": [
                    {"name": "run_id", "in": "query", "required": False, "schema": _ID},
                    {
                        "name": "X-Apify-Webhook-Dispatch-Id",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ApifyDelivery")}},
                },
                "responses": {
                    "202": _json(
                        _ref("WebhookAnswer"), "applied, or rejected as stale/invalid_transition"
                    ),
                    "200": _json(
                        _ref("WebhookAnswer"), "a duplicate delivery, or an ignored event type"
                    ),
                    "404": _error("missing_run_record: recorded; non-2xx so that Apify retries"),
                    **_COMMON_ERRORS,
                    "422": _error("not a run event we understand; kept in the dead-letter record"),
                },
            }
        },
    }


def _operations() -> dict[str, Any]:
    return {
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document")},
            }
        },
    }


def _merged(*groups: dict[str, Any]) -> dict[str, Any]:
    """Paths of several groups, their methods merged (`/runs` has a POST and a GET)."""
    paths: dict[str, Any] = {}
    for group in groups:
        for path, methods in group.items():
            paths[path] = {**paths.get(path, {}), **methods}
    return paths


@cache
def build_document() -> dict[str, Any]:
    """The whole document; routes added by later work register their paths here too."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "runledger",
            "version": "0.1.0",
            "description": "The record of every scraping run: kickoff creates, webhooks and "
            "results update, projections answer queries.",
        },
        "security": [{"bearer": []}],
        "paths": _merged(_commands(), _operations(), query_paths()),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "webhookQuery": {"type": "apiKey", "in": "query", "name": "token"},
                "webhookHeader": {"type": "apiKey", "in": "header", "name": "X-Runledger-Token"},
            },
            "schemas": {
                "RunRecord": _RUN_RECORD,
                "Error": _ERROR,
                "Kickoff": _KICKOFF,
                "Results": _RESULTS,
                "ApifyDelivery": _APIFY_DELIVERY,
                "WebhookAnswer": _WEBHOOK_ANSWER,
                **query_schemas(),
            },
        },
    }

"""Small pieces the handlers share."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from api.middleware import LOG_FIELDS, error_body
from api.service import Decision


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def note(request: web.Request, **fields: Any) -> None:
    """Add fields to this request's access log line (run id, outcome, ...)."""
    request[LOG_FIELDS].update(fields)


def record_answer(decision: Decision, status: int) -> web.Response:
    record = decision.record()
    assert record is not None
    return json_response({**record, "position": decision.position}, status)


def missing_run_record(decision: Decision, what: str) -> web.Response:
    body = error_body(
        "missing_run_record",
        f"run {decision.run_id} was never created; {what} was recorded as a missing-record "
        "diagnostic",
        outcome="rejected",
        reason="missing_run_record",
        run_id=decision.run_id,
        position=decision.position,
    )
    return json_response(body, 404)

"""One error middleware: request ids, the access log line, and every error as JSON."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from api.errors import ApiError
from api.service import RunContendedError
from eventstore import StoreUnavailableError, translate_driver_errors

_log = logging.getLogger("runledger.access")
_errors = logging.getLogger("runledger.errors")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = web.RequestKey("request_id", str)
LOG_FIELDS: web.RequestKey[dict[str, Any]] = web.RequestKey("log_fields", dict)
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SECRET_PARAMS = {"token"}


def error_body(code: str, message: str, details: Any = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {**extra, "error": error}


def masked_query(request: web.Request) -> str:
    """The query string with secrets replaced, the only form of it that is ever logged."""
    return "&".join(
        f"{name}={'***' if name.lower() in _SECRET_PARAMS else value}"
        for name, value in request.query.items()
    )


RequestObserver = Callable[[web.Request, int, float], None]
"""Hears of every answered request: the request, its status and its latency in seconds."""


def make_error_middleware(retry_after_s: int, observe: RequestObserver | None = None) -> Any:
    @web.middleware
    async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request[REQUEST_ID] = request_id
        request[LOG_FIELDS] = {}
        started = time.perf_counter()
        response = await _answer(request, handler, request_id, retry_after_s)
        response.headers["X-Request-Id"] = request_id
        latency_s = time.perf_counter() - started
        if observe is not None:
            observe(request, response.status, latency_s)
        logged: dict[str, Any] = request[LOG_FIELDS]
        _log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "query": masked_query(request),
                "status": response.status,
                "latency_ms": round(latency_s * 1000, 3),
                **logged,
            },
        )
        return response

    return error_middleware


async def _answer(
    request: web.Request, handler: Handler, request_id: str, retry_after_s: int
) -> web.StreamResponse:
    try:
        # Queries use the pool directly: its driver errors mean "database unavailable" too.
        async with translate_driver_errors():
            return await handler(request)
    except ApiError as err:
        body = error_body(err.code, err.message, err.details, **err.extra)
        headers = {"Retry-After": str(retry_after_s)} if err.status == 503 else None
        return web.json_response(body, status=err.status, headers=headers, dumps=_dumps)
    except StoreUnavailableError:
        body = error_body("database_unavailable", "the database is unavailable; retry later")
        return web.json_response(
            body, status=503, headers={"Retry-After": str(retry_after_s)}, dumps=_dumps
        )
    except RunContendedError as err:
        # Nothing was recorded and a retry will do: a 503 (Apify and clients retry), not a 500.
        return web.json_response(
            error_body("run_contended", str(err)),
            status=503,
            headers={"Retry-After": "1"},
            dumps=_dumps,
        )
    except web.HTTPException as err:  # routing: 404, 405, and aiohttp's own 413
        if err.status < 400:
            raise
        code = re.sub(r"\W+", "_", (err.reason or "error").lower()).strip("_")
        return web.json_response(
            error_body(code, err.reason or "error"), status=err.status, dumps=_dumps
        )
    except Exception:  # noqa: BLE001 — the outermost edge: log it, never leak it
        _errors.exception("unhandled error", extra={"request_id": request_id})
        body = error_body("internal_error", f"internal error (request id {request_id})")
        return web.json_response(body, status=500, dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()

"""`GET /diagnostics/missing-records`, `/diagnostics/rejections`, `/diagnostics/dead-letters`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from api.errors import Invalid
from api.handlers.common import json_response
from api.handlers.queries import int_param, prepare_query
from api.keys import QUERY_POOL
from api.validation import ID_RULE, valid_id
from projections import diagnostics_queries
from projections.run_queries import InvalidCursorError
from statemachine import RejectionReason

_Page = tuple[list[dict[str, Any]], str | None]
_CURSOR_RULE = {"cursor": "from a previous answer's next_cursor"}
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")
_BOOLEANS = {"true": True, "false": False}


def _limit(request: web.Request, *, maximum: int = 1000, default: int = 100) -> int:
    return int_param(request, "limit", minimum=1, maximum=maximum) or default


def _cursor(request: web.Request) -> str | None:
    cursor = request.query.get("cursor")
    if cursor is not None and not cursor:
        raise Invalid("cursor is empty", details=_CURSOR_RULE)
    return cursor


async def _list(request: web.Request, query: Callable[[Any], Awaitable[_Page]]) -> web.Response:
    """Run one list query on a pooled connection and answer its page."""
    try:
        async with request.app[QUERY_POOL].acquire() as conn:
            items, next_cursor = await query(conn)
    except InvalidCursorError as err:
        raise Invalid(str(err), details=_CURSOR_RULE) from None
    return json_response({"items": items, "next_cursor": next_cursor})


async def missing_records(request: web.Request) -> web.Response:
    await prepare_query(request, ("missing_records",))
    raw = request.query.get("resolved")
    if raw is not None and raw not in _BOOLEANS:
        raise Invalid("resolved must be true or false", details={"resolved": "true or false"})
    resolved = None if raw is None else _BOOLEANS[raw]
    limit, cursor = _limit(request), _cursor(request)
    return await _list(
        request,
        lambda conn: diagnostics_queries.list_missing_records(
            conn, resolved=resolved, limit=limit, cursor=cursor
        ),
    )


async def rejections(request: web.Request) -> web.Response:
    await prepare_query(request, ("rejections",))
    reason, run_id = request.query.get("reason"), request.query.get("run_id")
    if reason is not None and reason not in set(RejectionReason):
        raise Invalid(
            "reason is not a rejection reason", details={"reason": ", ".join(RejectionReason)}
        )
    if run_id is not None and not valid_id(run_id):
        raise Invalid("run_id is not valid", details={"run_id": ID_RULE})
    limit, cursor = _limit(request), _cursor(request)
    return await _list(
        request,
        lambda conn: diagnostics_queries.list_rejections(
            conn, reason=reason, run_id=run_id, limit=limit, cursor=cursor
        ),
    )


async def dead_letters(request: web.Request) -> web.Response:
    await prepare_query(request, ("dead_letters",))
    reason = request.query.get("reason")
    if reason is not None and not _ERROR_CODE.fullmatch(reason):
        raise Invalid("reason is not an error code", details={"reason": "a snake_case code"})
    # Each dead letter holds a whole body (up to the body limit): a page stays small enough
    # to hold in memory whatever was sent.
    limit, cursor = _limit(request, maximum=50, default=20), _cursor(request)
    return await _list(
        request,
        lambda conn: diagnostics_queries.list_dead_letters(
            conn, reason=reason, limit=limit, cursor=cursor
        ),
    )

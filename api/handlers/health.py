"""`GET /health`: the database, each projection's lag and heartbeat, the last integrity check.

`503 degraded` when the database is down, a projection is stuck (failing, unrun or not
advancing while it lags; see projections/health.py) or the last check found drift. No token:
load balancers and monitors call it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.handlers.common import json_response
from api.keys import CONFIG, INTEGRITY, QUERY_POOL, STORE
from eventstore import StoreUnavailableError, translate_driver_errors
from projections import checkpoints
from projections.health import ProjectionHealth, judge
from projections.registry import all_projections


async def projection_health(app: web.Application) -> tuple[int, list[ProjectionHealth]]:
    """The log head and each projection's position, lag and verdict, read from the database.

    Raises StoreUnavailableError when the database is away.
    """
    store = app[STORE]
    head = await store.head_position()
    async with translate_driver_errors(), app[QUERY_POOL].acquire() as conn:
        rows = await checkpoints.read_all(conn)
    waiting_since = {}
    for position in {row.position for row in rows if row.position < head}:
        [first] = await store.read_all(after_position=position, limit=1)
        waiting_since[position] = first.recorded_at
    names = [p.name for p in all_projections()]
    return head, judge(names, rows, head=head, now=datetime.now(UTC), waiting_since=waiting_since)


async def health(request: web.Request) -> web.Response:
    app = request.app
    try:
        head, projections = await projection_health(app)
    except StoreUnavailableError:
        down = {"status": "degraded", "database": {"status": "unavailable"}}
        return _retry_later(json_response(down, status=503), app)
    check = app[INTEGRITY].last_result_json()
    degraded = any(p.problem for p in projections) or (check or {}).get("status") == "drift"
    body: dict[str, Any] = {
        "status": "degraded" if degraded else "ok",
        "database": {"status": "ok", "head_position": head},
        "projections": [p.to_json() for p in projections],
        "check": check,
    }
    if degraded:
        return _retry_later(json_response(body, status=503), app)
    return json_response(body)


def _retry_later(response: web.Response, app: web.Application) -> web.Response:
    """Every 503 says when to ask again (API.md), as the error middleware's do."""
    response.headers["Retry-After"] = str(app[CONFIG].retry_after_s)
    return response

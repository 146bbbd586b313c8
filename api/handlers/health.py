"""`GET /health`: is the database there? (Projection lag and the integrity check join later.)"""

from __future__ import annotations

from aiohttp import web

from api.handlers.common import json_response
from api.keys import STORE
from eventstore import StoreUnavailableError


async def health(request: web.Request) -> web.Response:
    try:
        head = await request.app[STORE].head_position()
    except StoreUnavailableError:
        return json_response(
            {"status": "degraded", "database": {"status": "unavailable"}}, status=503
        )
    return json_response({"status": "ok", "database": {"status": "ok", "head_position": head}})

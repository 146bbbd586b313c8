"""`GET /openapi.json`: the contract of API.md as OpenAPI 3."""

from __future__ import annotations

from aiohttp import web

from api.handlers.common import json_response
from api.openapi import build_document


async def openapi_document(request: web.Request) -> web.Response:
    return json_response(build_document())

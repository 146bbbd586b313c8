"""`GET /metrics`: the Prometheus text exposition, no token (scrapers call it).

Projection position and lag are read from the checkpoint rows at each scrape, so they are
right whichever process runs the projections; with the database away the scrape still answers,
with the last figures read.
"""

from __future__ import annotations

from aiohttp import web

from api.handlers.health import projection_health
from api.keys import METRICS
from eventstore import StoreUnavailableError


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    try:
        head, projections = await projection_health(request.app)
    except StoreUnavailableError:
        registry.note_database(available=False)
    else:
        registry.note_database(available=True)
        registry.note_projections(head, projections)
    response = web.Response(body=registry.exposition())
    response.headers["Content-Type"] = registry.content_type
    return response

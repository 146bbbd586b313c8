"""The route table: every endpoint of API.md, in one place."""

from __future__ import annotations

from aiohttp import web

from api.handlers import health, openapi, runs, webhooks


def add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.post("/runs", runs.kickoff),
            web.post("/runs/{run_id}/results", runs.record_results),
            web.post("/webhooks/apify", webhooks.apify_webhook),
            web.get("/health", health.health),
            web.get("/openapi.json", openapi.openapi_document),
        ]
    )

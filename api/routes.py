"""The route table: every endpoint of API.md, in one place."""

from __future__ import annotations

from aiohttp import web

from api.handlers import health, openapi, reports, run_queries, runs, webhooks


def add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.post("/runs", runs.kickoff),
            web.post("/runs/{run_id}/results", runs.record_results),
            web.post("/webhooks/apify", webhooks.apify_webhook),
            web.get("/runs", run_queries.list_runs),
            web.get("/runs/{run_id}", run_queries.get_run),
            web.get("/reports/clients", reports.clients),
            web.get("/reports/daily", reports.daily),
            web.get("/health", health.health),
            web.get("/openapi.json", openapi.openapi_document),
        ]
    )

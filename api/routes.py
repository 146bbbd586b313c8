"""The route table: every endpoint of API.md, in one place."""

from __future__ import annotations

from aiohttp import web

from api.handlers import (
    diagnostics,
    health,
    metrics,
    openapi,
    reports,
    run_events,
    run_queries,
    runs,
    webhooks,
)
from api.handlers.timeline import timeline


def add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.post("/runs", runs.kickoff),
            web.post("/runs/{run_id}/results", runs.record_results),
            web.post("/webhooks/apify", webhooks.apify_webhook),
            web.get("/runs", run_queries.list_runs),
            web.get("/runs/{run_id}", run_queries.get_run),
            web.get("/runs/{run_id}/events", run_events.run_events),
            web.get("/runs/{run_id}/timeline", timeline),
            web.get("/reports/clients", reports.clients),
            web.get("/reports/daily", reports.daily),
            web.get("/diagnostics/missing-records", diagnostics.missing_records),
            web.get("/diagnostics/rejections", diagnostics.rejections),
            web.get("/diagnostics/dead-letters", diagnostics.dead_letters),
            web.get("/health", health.health),
            web.get("/metrics", metrics.metrics),
            web.get("/openapi.json", openapi.openapi_document),
        ]
    )

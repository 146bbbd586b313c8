"""`GET /reports/clients` and `GET /reports/daily`, served from client_reports."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from api.errors import Invalid
from api.handlers.common import json_response
from api.handlers.queries import csv_response, prepare_query, wants_csv
from api.keys import QUERY_POOL
from api.validation import ID_RULE, valid_id
from projections import report_queries

PROJECTIONS = ("run_records",)  # client_reports is kept by the run_records projection
_SUMMARY_COLUMNS = (
    "runs", "runs_by_status", "success_rate", "mean_duration_s", "p95_duration_s", "metrics",
    "usage_usd", "last_run",
)  # fmt: skip


def _day(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{name} must be a date (YYYY-MM-DD)", details={name: "YYYY-MM-DD"}) from None


async def clients(request: web.Request) -> web.Response:
    await prepare_query(request, PROJECTIONS)
    start, end = _day(request, "from"), _day(request, "to")
    async with request.app[QUERY_POOL].acquire() as conn:
        items = await report_queries.clients_report(conn, start=start, end=end)
    if wants_csv(request):
        return csv_response(("client_id", *_SUMMARY_COLUMNS), items)
    return json_response({"items": items})


async def daily(request: web.Request) -> web.Response:
    await prepare_query(request, PROJECTIONS)
    client_id = request.query.get("client_id")
    if client_id is not None and not valid_id(client_id):
        raise Invalid("client_id is not valid", details={"client_id": ID_RULE})
    start, end = _day(request, "from"), _day(request, "to")
    async with request.app[QUERY_POOL].acquire() as conn:
        items = await report_queries.daily_report(conn, client_id=client_id, start=start, end=end)
    if wants_csv(request):
        return csv_response(("client_id", "day", *_SUMMARY_COLUMNS), items)
    return json_response({"items": items})

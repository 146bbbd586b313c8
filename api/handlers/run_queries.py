"""`GET /runs/{run_id}` and `GET /runs`, served from the run_records projection."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from api.errors import Invalid, NotFound
from api.handlers.common import json_response
from api.handlers.queries import csv_response, int_param, prepare_query, wants_csv
from api.keys import QUERY_POOL
from api.validation import ID_RULE, valid_id
from projections import run_queries
from statemachine import RunStatus

PROJECTIONS = ("run_records",)
CSV_COLUMNS = (
    "run_id", "client_id", "actor_id", "task_id", "status", "apify_status", "status_message",
    "created_at", "started_at", "finished_at", "duration_s", "dataset_id", "usage_usd",
    "resurrect_count", "metrics", "event_count", "version", "updated_at",
)  # fmt: skip


async def get_run(request: web.Request) -> web.Response:
    await prepare_query(request, PROJECTIONS)
    run_id = request.match_info["run_id"]
    if not valid_id(run_id):
        raise Invalid("the run id is not valid", details={"run_id": ID_RULE})
    async with request.app[QUERY_POOL].acquire() as conn:
        record = await run_queries.get_run(conn, run_id)
    if record is None:
        raise NotFound(f"no run record for {run_id}", code="run_not_found")
    return json_response(record)


def _time_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid(f"{name} must be an ISO 8601 time with a zone", details={name: "ISO 8601"})
    return moment


def _filter(request: web.Request) -> run_queries.RunFilter:
    client_id, status = request.query.get("client_id"), request.query.get("status")
    if client_id is not None and not valid_id(client_id):
        raise Invalid("client_id is not valid", details={"client_id": ID_RULE})
    if status is not None and status not in set(RunStatus):
        raise Invalid("status is not a run status", details={"status": ", ".join(RunStatus)})
    return run_queries.RunFilter(
        client_id=client_id,
        status=status,
        created_from=_time_param(request, "created_from"),
        created_to=_time_param(request, "created_to"),
    )


async def list_runs(request: web.Request) -> web.Response:
    await prepare_query(request, PROJECTIONS)
    where = _filter(request)
    limit = int_param(request, "limit", minimum=1, maximum=1000) or 100
    try:
        async with request.app[QUERY_POOL].acquire() as conn:
            items, next_cursor = await run_queries.list_runs(
                conn, where, limit=limit, cursor=request.query.get("cursor")
            )
    except run_queries.InvalidCursorError as err:
        raise Invalid(
            str(err), details={"cursor": "from a previous answer's next_cursor"}
        ) from None
    if wants_csv(request):
        return csv_response(CSV_COLUMNS, items)
    return json_response({"items": items, "next_cursor": next_cursor})

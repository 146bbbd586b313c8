"""`GET /runs/{run_id}/events`: a run's stream and its orphan stream, from the log itself."""

from __future__ import annotations

from aiohttp import web

from api.auth import require_api_token
from api.errors import Invalid, NotFound, Unavailable
from api.handlers.common import json_response
from api.handlers.queries import int_param
from api.keys import CONFIG, STORE
from api.service import recorded_to_json
from api.validation import ID_RULE, valid_id
from eventstore import EventStore
from projections.event_queries import read_run_events


async def _log_holds(store: EventStore, position: int) -> bool:
    """Whether the log has reached `position` (positions may have gaps).

    No waiting: a position that a command answered was committed before the answer, and the
    log is read directly here, so it is never behind its own commits. A position beyond the
    head came from nowhere the service handed out; following the log for it would hold a
    pooled connection per request (a LISTEN) that commands need.
    """
    return await store.head_position() >= position


async def run_events(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    require_api_token(request, config.api_token)
    position = int_param(request, "min_position", minimum=0)
    run_id = request.match_info["run_id"]
    if not valid_id(run_id):
        raise Invalid("the run id is not valid", details={"run_id": ID_RULE})
    if position is not None and not await _log_holds(store, position):
        raise Unavailable(
            f"the log has not reached position {position} yet; retry shortly",
            code="projection_behind",
        )
    events = await read_run_events(store, run_id)
    if not events:
        raise NotFound(f"no events for run {run_id}", code="run_not_found")
    return json_response({"run_id": run_id, "events": [recorded_to_json(e) for e in events]})

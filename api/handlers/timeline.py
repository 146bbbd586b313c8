"""`GET /runs/{run_id}/timeline?as_of=`: the run's replay, read from the log itself."""

from __future__ import annotations

from aiohttp import web

from api.auth import require_api_token
from api.errors import Invalid, NotFound
from api.handlers.common import json_response, note
from api.keys import CONFIG, STORE
from api.validation import ID_RULE, valid_id
from projections.timeline import AsOf, InvalidAsOfError, parse_as_of, read_timeline

AS_OF_RULE = "a log position (a whole number) or an ISO 8601 time with a zone"


async def timeline(request: web.Request) -> web.Response:
    require_api_token(request, request.app[CONFIG].api_token)
    run_id = request.match_info["run_id"]
    if not valid_id(run_id):
        raise Invalid("the run id is not valid", details={"run_id": ID_RULE})
    note(request, run_id=run_id)
    as_of = _as_of(request)
    found = await read_timeline(request.app[STORE], run_id, as_of=as_of)
    if found is None:
        raise NotFound(f"no events for run {run_id}", code="run_not_found")
    return json_response(found.to_json())


def _as_of(request: web.Request) -> AsOf | None:
    raw = request.query.get("as_of")
    if raw is None:
        return None
    try:
        return parse_as_of(raw)
    except InvalidAsOfError as err:
        raise Invalid(str(err), details={"as_of": AS_OF_RULE}) from None

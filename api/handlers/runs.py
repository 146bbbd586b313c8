"""`POST /runs` (kickoff, the only creation point) and `POST /runs/{run_id}/results`."""

from __future__ import annotations

from aiohttp import web

from api.auth import require_api_token
from api.bodies import read_json
from api.handlers.common import json_response, missing_run_record, note, record_answer
from api.keys import CONFIG, SERVICE
from api.middleware import error_body
from api.service import Outcome
from api.validation import parse_kickoff, parse_results
from statemachine import RejectionReason


async def kickoff(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    require_api_token(request, config.api_token)
    command = parse_kickoff(await read_json(request, config.max_body_bytes), request.headers)
    note(request, run_id=command.run_id)
    decision = await request.app[SERVICE].execute(command)
    note(request, outcome=decision.outcome.value, position=decision.position)
    if decision.reason is RejectionReason.DUPLICATE_CREATION:
        body = error_body(
            "duplicate_creation",
            f"run {command.run_id} was already created by a different request",
            run_id=command.run_id,
            position=decision.position,
        )
        return json_response(body, 409)
    return record_answer(decision, 201 if decision.outcome is Outcome.APPLIED else 200)


async def record_results(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    require_api_token(request, config.api_token)
    run_id = request.match_info["run_id"]
    body = await read_json(request, config.max_body_bytes)
    command = parse_results(run_id, body, request.headers)
    note(request, run_id=run_id)
    decision = await request.app[SERVICE].execute(command)
    note(request, outcome=decision.outcome.value, position=decision.position)
    if decision.reason is RejectionReason.MISSING_RUN_RECORD:
        return missing_run_record(decision, "the results report")
    return record_answer(decision, 200)

"""`POST /webhooks/apify`: one Apify delivery, authenticated by a secret, never lost."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import require_webhook_token
from api.bodies import parse_json, read_body, require_json_content_type
from api.errors import ApiError, Invalid
from api.handlers.common import json_response, missing_run_record, note
from api.keys import CONFIG, SERVICE
from api.service import Outcome, RunService
from api.validation import find_nul, may_hold_nul
from eventstore import DuplicateEventIdError
from statemachine import (
    ApplyApifyWebhook,
    IgnoredDelivery,
    InvalidDelivery,
    RejectionReason,
    parse_delivery,
)

_KEPT_HEADER_PREFIXES = ("x-apify-", "content-type", "user-agent")


async def apify_webhook(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    require_webhook_token(request, config.webhook_token)
    raw = await read_body(request, config.max_body_bytes)
    service = request.app[SERVICE]
    headers = _kept_headers(request)
    body: Any = None
    try:
        require_json_content_type(request)  # inside: an authenticated body is never thrown away
        body = parse_json(raw)
        nul = find_nul(body) if may_hold_nul(raw) else None
        if nul:
            raise Invalid("the delivery contains a NUL character", details={nul: "NUL character"})
        delivery = parse_delivery(body, headers, run_id_param=request.query.get("run_id"))
    except (ApiError, InvalidDelivery) as err:
        await _dead_letter(service, err, raw, body, headers)
        note(request, outcome="dead_letter")
        raise _as_api_error(err) from None
    if isinstance(delivery, IgnoredDelivery):
        note(request, outcome="ignored", event_type=delivery.event_type)
        return json_response({"outcome": "ignored", "event_type": delivery.event_type})
    note(request, run_id=delivery.run_id, event_type=delivery.event_type)
    try:
        decision = await service.execute(
            ApplyApifyWebhook(run_id=delivery.run_id, delivery=delivery)
        )
    except DuplicateEventIdError:
        # Its dispatch id was stored already, for another run: Apify never reuses one, so
        # this delivery is not what it claims. Kept whole like anything not understood.
        refused = Invalid(
            "the delivery's X-Apify-Webhook-Dispatch-Id was already used for another run",
            details={"X-Apify-Webhook-Dispatch-Id": "already used for another run"},
            code="dispatch_id_reused",
        )
        await _dead_letter(service, refused, raw, body, headers)
        note(request, outcome="dead_letter")
        raise refused from None
    note(request, outcome=decision.outcome.value, position=decision.position)
    if decision.reason is RejectionReason.MISSING_RUN_RECORD:
        return missing_run_record(decision, "the delivery")
    answer: dict[str, Any] = {
        "outcome": decision.outcome.value,
        "run_id": decision.run_id,
        "status": decision.state.status.value if decision.state else None,
        "position": decision.position,
    }
    if decision.reason is not None:
        answer["reason"] = decision.reason.value
    return json_response(answer, 200 if decision.outcome is Outcome.DUPLICATE else 202)


def _kept_headers(request: web.Request) -> dict[str, str]:
    """The headers a replay needs (Apify's own), as received; never the secret or credentials.

    Read from the raw bytes: aiohttp's parsed names are `istr`, which JSON encoders refuse as
    keys, and a value with bytes that are not UTF-8 is kept readable rather than refused.
    """
    kept = {}
    for raw_name, raw_value in request.raw_headers:
        name = raw_name.decode("latin-1")
        if name.lower().startswith(_KEPT_HEADER_PREFIXES):
            kept[name] = raw_value.decode("utf-8", "replace")
    return kept


async def _dead_letter(
    service: RunService,
    err: ApiError | InvalidDelivery,
    raw: bytes,
    body: Any,
    headers: dict[str, str],
) -> None:
    # `body` is None when it could not be parsed; one jsonb cannot hold is kept as base64.
    await service.dead_letter(
        reason=err.code,
        message=err.message,
        details=err.details,
        body=raw,
        parsed=body,
        headers=headers,
    )


def _as_api_error(err: ApiError | InvalidDelivery) -> ApiError:
    if isinstance(err, ApiError):
        return err
    return Invalid(err.message, details=err.details, code=err.code)

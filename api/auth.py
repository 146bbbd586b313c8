"""Who may call: a bearer token for commands and queries, a secret for Apify's webhooks."""

from __future__ import annotations

from aiohttp import web

from api.errors import Unauthorized
from api.tokens import tokens_match

WEBHOOK_TOKEN_HEADER = "X-Runledger-Token"  # noqa: S105 — a header name, not a secret


def require_api_token(request: web.Request, expected: str) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not tokens_match(token.strip() or None, expected):
        raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")


def require_webhook_token(request: web.Request, expected: str) -> None:
    """Apify signs nothing: the secret comes in the webhook URL or a templated header."""
    given = request.query.get("token") or request.headers.get(WEBHOOK_TOKEN_HEADER)
    if not tokens_match(given, expected):
        raise Unauthorized(
            f"the webhook secret is required (query parameter 'token' or {WEBHOOK_TOKEN_HEADER})"
        )

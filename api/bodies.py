"""Reading request bodies: JSON only, limited in size before being read whole, and in time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from api.errors import BodyTooLarge, ClientGone, NotJson, RequestTimeout, UnreadableJson

BODY_READ_TIMEOUT_S = 10.0
"""A body that trickles in slower than this (slow-loris style) is refused."""
MAX_JSON_DEPTH = 64
"""Deeper bodies are refused: orjson writes at most 255 levels, and events wrap the body."""


def require_json_content_type(request: web.Request) -> None:
    ctype = request.content_type
    if ctype != "application/json" and not (
        ctype.startswith("application/") and ctype.endswith("+json")
    ):
        raise NotJson(
            f"the body must be JSON (Content-Type: application/json), not {ctype or 'missing'}"
        )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    # What has arrived already (usually the whole body, with the headers), without a wait.
    first = request.content.read_nowait()
    chunks, size = [first], len(first)
    if size > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    if request.content.at_eof():
        return first
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):
            async for chunk in request.content.iter_chunked(65536):
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"the body is larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout("the body was not received in time") from None
    except OSError:  # ConnectionResetError: the client left mid-body (not the database)
        raise ClientGone("the client closed the connection before sending the whole body") from None
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise UnreadableJson(f"the body is not valid JSON: {err}") from None
    # Nesting needs an opening bracket per level: fewer brackets than the limit (the usual
    # case) cannot nest deeper, and the walk over the whole value is skipped.
    brackets = raw.count(b"{") + raw.count(b"[")
    if brackets > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
        raise UnreadableJson(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (iterative: no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


async def read_json(request: web.Request, limit: int) -> Any:
    require_json_content_type(request)
    return parse_json(await read_body(request, limit))

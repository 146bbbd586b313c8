"""What every query handler shares: the token, `min_position` (read your writes), CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from aiohttp import web

from api.auth import require_api_token
from api.errors import Invalid, Unavailable
from api.keys import CONFIG, PROJECTIONS


async def prepare_query(request: web.Request, projections: Sequence[str]) -> None:
    """Check the token; if `min_position` is given, wait until `projections` have applied it."""
    config = request.app[CONFIG]
    require_api_token(request, config.api_token)
    wanted = request.query.get("min_position")
    if wanted is None:
        return
    position = int_param(request, "min_position", minimum=0)
    assert position is not None
    reached = await request.app[PROJECTIONS].wait_for(
        projections, position, within_s=config.min_position_wait_s
    )
    if not reached:
        raise Unavailable(
            f"the projections have not reached position {position} yet; retry shortly",
            code="projection_behind",
        )


def int_param(
    request: web.Request, name: str, *, minimum: int = 0, maximum: int | None = None
) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²" is a digit to isdigit()
        raise Invalid(f"{name} must be a whole number", details={name: "a whole number"})
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else "")
        raise Invalid(f"{name} is out of range", details={name: bounds})
    return value


def wants_csv(request: web.Request) -> bool:
    return "text/csv" in request.headers.get("Accept", "")


def csv_response(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> web.Response:
    """Rows as CSV with a header line; nested values are written as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return web.Response(text=buffer.getvalue(), content_type="text/csv")


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return "" if value is None else value

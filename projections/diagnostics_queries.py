"""Read-only queries over the diagnostics projections: missing records, rejections, dead letters.

Every list is newest first and keyset-paginated on a log position that never changes once the
row exists (a rejection's or dead letter's own position; a missing record's first attempt), so
a cursor neither repeats nor drops a row while writes go on: new rows land before the cursor.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from eventstore.pool import Connection
from projections.run_queries import InvalidCursorError

_MISSING = """
SELECT run_id, first_seen, last_seen, first_position, last_position, attempts, event_types,
       last_delivery, resolved_at, resolved_position
  FROM missing_records
"""
_REJECTIONS = """
SELECT position, run_id, reason, command, status_before, message, received, rejected_at
  FROM rejections
"""
_DEAD_LETTERS = """
SELECT position, event_id, received_at, reason, message, details, headers, body, body_base64,
       body_preview
  FROM dead_letters
"""
_CURSOR_PREFIX = "p:"


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode()


def _is_position(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() refuses."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    digits = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not _is_position(digits):
        raise InvalidCursorError("the cursor is not one this service handed out")
    return int(digits)


def _iso(value: Any) -> Any:
    return None if value is None else value.isoformat()


async def _page(
    conn: Connection,
    select: str,
    key: str,
    filters: Sequence[tuple[str, Any]],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """Rows of `select` matching `filters`, newest first by `key`, one page after `cursor`.

    A filter is a fixed SQL fragment and its value; `{}` in it is the value's parameter
    number, and a fragment without one takes no value (pass None).
    """
    clauses, params = [], []
    for fragment, value in filters:
        if "{}" in fragment:
            params.append(value)
        clauses.append(fragment.format(len(params)))
    if cursor is not None:
        params.append(decode_cursor(cursor))
        clauses.append(f"{key} < ${len(params)}")
    params.append(limit + 1)
    sql = (
        select
        + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        + f" ORDER BY {key} DESC LIMIT ${len(params)}"
    )
    rows = await conn.fetch(sql, *params)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1][key]) if len(rows) > limit else None
    return page, next_cursor


def missing_record_json(row: Any) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "first_seen": row["first_seen"].isoformat(),
        "last_seen": row["last_seen"].isoformat(),
        "attempts": row["attempts"],
        "event_types": list(row["event_types"]),
        "last_delivery": row["last_delivery"],
        "resolved_at": _iso(row["resolved_at"]),
        "first_position": row["first_position"],
        "last_position": row["last_position"],
        "resolved_position": row["resolved_position"],
    }


async def list_missing_records(
    conn: Connection, *, resolved: bool | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Run ids that got updates without a run record, most recently first seen first."""
    filters: list[tuple[str, Any]] = []
    if resolved is not None:
        filters.append(("resolved_at IS NOT NULL" if resolved else "resolved_at IS NULL", None))
    rows, next_cursor = await _page(
        conn, _MISSING, "first_position", filters, limit=limit, cursor=cursor
    )
    return [missing_record_json(row) for row in rows], next_cursor


def rejection_json(row: Any) -> dict[str, Any]:
    return {**dict(row), "rejected_at": row["rejected_at"].isoformat()}


async def list_rejections(
    conn: Connection, *, reason: str | None, run_id: str | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Every rejected update, newest first, optionally of one reason and/or one run."""
    filters = [
        (fragment, value)
        for fragment, value in (("reason = ${}", reason), ("run_id = ${}", run_id))
        if value is not None
    ]
    rows, next_cursor = await _page(
        conn, _REJECTIONS, "position", filters, limit=limit, cursor=cursor
    )
    return [rejection_json(row) for row in rows], next_cursor


def dead_letter_json(row: Any) -> dict[str, Any]:
    return {
        **dict(row),
        "event_id": str(row["event_id"]),
        "received_at": row["received_at"].isoformat(),
    }


async def list_dead_letters(
    conn: Connection, *, reason: str | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The deliveries that could not be understood, newest first, optionally of one reason."""
    filters = [] if reason is None else [("reason = ${}", reason)]
    rows, next_cursor = await _page(
        conn, _DEAD_LETTERS, "position", filters, limit=limit, cursor=cursor
    )
    return [dead_letter_json(row) for row in rows], next_cursor

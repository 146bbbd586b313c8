"""Read-only queries over run_records for `GET /runs` and `GET /runs/{run_id}`."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventstore.pool import Connection
from projections.run_records import state_from_row

_RECORD_COLUMNS = (
    "run_id, client_id, actor_id, task_id, requested_by, input, status, apify_status, "
    "status_message, created_at, started_at, finished_at, duration_s, dataset_id, usage_usd, "
    "resurrect_count, metrics, event_count, version, last_position, updated_at"
)
_ONE = f"SELECT {_RECORD_COLUMNS} FROM run_records WHERE run_id = $1"

# Each filter is a fixed SQL fragment with its own parameter; values never enter the SQL text.
_FILTERS = {
    "client_id": "client_id = ${}",
    "status": "status = ${}",
    "created_from": "created_at >= ${}",
    "created_to": "created_at < ${}",
}


class InvalidCursorError(ValueError):
    """A cursor that this service did not hand out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    client_id: str | None = None
    status: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def record_json(row: Any) -> dict[str, Any]:
    """A run_records row as API.md's run record."""
    return {**state_from_row(row).to_record(), "version": row["version"]}


async def get_run(conn: Connection, run_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_ONE, run_id)
    return None if row is None else record_json(row)


def encode_cursor(created_at: datetime, run_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{run_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, _, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        moment = datetime.fromisoformat(created)
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidCursorError("the cursor is not one this service handed out") from None
    if not run_id or moment.tzinfo is None:
        raise InvalidCursorError("the cursor is not one this service handed out")
    return moment, run_id


async def list_runs(
    conn: Connection, where: RunFilter, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Runs newest first, keyset-paginated on (created_at, run_id): stable while writes go on,
    because created_at never changes once a run exists."""
    clauses, params = [], []
    for name, fragment in _FILTERS.items():
        value = getattr(where, name)
        if value is not None:
            params.append(value)
            clauses.append(fragment.format(len(params)))
    if cursor is not None:
        params.extend(decode_cursor(cursor))
        clauses.append(f"(created_at, run_id) < (${len(params) - 1}, ${len(params)})")
    params.append(limit + 1)
    sql = (
        f"SELECT {_RECORD_COLUMNS} FROM run_records"
        + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        + f" ORDER BY created_at DESC, run_id DESC LIMIT ${len(params)}"
    )
    rows = await conn.fetch(sql, *params)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last["created_at"], last["run_id"])
    return [record_json(row) for row in page], next_cursor

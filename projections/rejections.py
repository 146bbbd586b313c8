"""`rejections`: every `UpdateRejected`, with its reason, run, command and what was received.

Rows are only ever added, one per rejection, keyed by log position: one INSERT per batch, and
`ON CONFLICT DO NOTHING` so that a row is never written twice. The received delivery or body is
kept as a small summary (see `delivery_summary`); the whole of it stays in the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from eventstore import RecordedEvent
from eventstore.pool import Connection
from projections.delivery_summary import summarize_received
from projections.json_rows import insert_from_json
from statemachine import UpdateRejected, decode

REJECTED_TYPE = "UpdateRejected"

_COLUMNS = (
    "position", "run_id", "reason", "command", "status_before", "message", "received",
    "rejected_at",
)  # fmt: skip
_TYPES = ("int8", "text", "text", "text", "text", "text", "jsonb", "timestamptz")
_INSERT = insert_from_json("rejections", _COLUMNS, _TYPES, key="position", update=False)


def rejection_row(rejection: UpdateRejected, position: int) -> dict[str, Any]:
    """The rejections row of one `UpdateRejected` at `position` in the log."""
    received = summarize_received(rejection.command, rejection.received)
    if rejection.delivery_key is not None:
        received["delivery_key"] = rejection.delivery_key
    if rejection.request_key is not None:
        received["request_key"] = rejection.request_key
    return {
        "position": position,
        "run_id": rejection.run_id,
        "reason": rejection.reason.value,
        "command": rejection.command,
        "status_before": None if rejection.status_before is None else rejection.status_before.value,
        "message": rejection.message,
        "received": received,
        "rejected_at": rejection.at,
    }


class RejectionsProjection:
    """rejections, from every `UpdateRejected` in run and orphan streams."""

    name = "rejections"
    tables = ("rejections",)
    data_of: frozenset[str] | None = frozenset({REJECTED_TYPE})
    data_without: frozenset[str] = frozenset()

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        rows = []
        for recorded in events:
            if recorded.type != REJECTED_TYPE:
                continue
            event = decode(recorded.event_id, recorded.type, recorded.data)
            assert isinstance(event, UpdateRejected)
            rows.append(rejection_row(event, recorded.position))
        if rows:
            await conn.execute(_INSERT, orjson.dumps(rows))

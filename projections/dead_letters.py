"""`dead_letters`: the authenticated deliveries that could not be understood, as they were kept.

api/service.py writes them to the `dead-letters` stream (it owns the shape: why it failed, the
kept headers, the body as JSON or, when jsonb cannot hold it, as base64 with a readable
preview); this projection copies them into a table to list. One INSERT per batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from eventstore import RecordedEvent
from eventstore.pool import Connection
from projections.json_rows import insert_from_json

DEAD_LETTER_STREAM = "dead-letters"
"""The stream api/service.py appends them to (`DEAD_LETTER_STREAM` there; a test ties the two)."""
DEAD_LETTER_TYPE = "DeliveryDeadLettered"

_COLUMNS = (
    "position", "event_id", "received_at", "reason", "message", "details", "headers", "body",
    "body_base64", "body_preview",
)  # fmt: skip
_TYPES = (
    "int8", "uuid", "timestamptz", "text", "text", "jsonb", "jsonb", "jsonb", "text", "text",
)  # fmt: skip
_INSERT = insert_from_json("dead_letters", _COLUMNS, _TYPES, key="position", update=False)


def dead_letter_row(recorded: RecordedEvent) -> dict[str, Any]:
    """The dead_letters row of one dead-letter event (a column copy, absent fields as null)."""
    data: Mapping[str, Any] = recorded.data
    return {
        "position": recorded.position,
        "event_id": str(recorded.event_id),
        "received_at": data.get("received_at") or recorded.recorded_at.isoformat(),
        "reason": str(data.get("reason") or "unknown"),
        "message": str(data.get("message") or ""),
        "details": data.get("details"),
        "headers": data.get("headers") or {},
        "body": data.get("body"),
        "body_base64": data.get("body_base64"),
        "body_preview": data.get("body_preview"),
    }


class DeadLettersProjection:
    """dead_letters, from the dead-letter stream."""

    name = "dead_letters"
    tables = ("dead_letters",)
    data_of: frozenset[str] | None = frozenset({DEAD_LETTER_TYPE})
    data_without: frozenset[str] = frozenset()

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        rows = [
            dead_letter_row(e)
            for e in events
            if e.stream_id == DEAD_LETTER_STREAM and e.type == DEAD_LETTER_TYPE
        ]
        if rows:
            await conn.execute(_INSERT, orjson.dumps(rows))

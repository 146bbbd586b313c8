"""`missing_records`: one row per run id that got updates with no `RunCreated` before them.

Such updates are `UpdateRejected(reason=missing_run_record)` events in the run's orphan stream,
one per attempt (Apify retries a refused delivery for hours). The row counts the attempts,
keeps the distinct event types and a summary of the latest one, and is resolved by the run's
`RunCreated` when the kickoff arrives later; a `RunCreated` for a run id with no row does
nothing. Per batch: one SELECT of the touched rows, a pure fold (`note_attempt`, `resolve`),
one INSERT … ON CONFLICT.

One race is handled on purpose: a process that read the run stream as empty may append its
orphan rejection just after another process appended the `RunCreated`. Such a row is created
already resolved, from the earlier `RunCreated` (looked up in the log), so that the view never
shows a run that exists as missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from eventstore import RecordedEvent
from eventstore.pool import Connection
from projections.delivery_summary import event_type_of, summarize_received
from projections.json_rows import insert_from_json
from statemachine import RunCreated, UpdateRejected, decode

ORPHAN_STREAM_PREFIX = "orphan-"
RUN_STREAM_PREFIX = "run-"

_COLUMNS = (
    "run_id", "first_seen", "last_seen", "first_position", "last_position", "attempts",
    "event_types", "last_delivery", "resolved_at", "resolved_position",
)  # fmt: skip
_TYPES = (
    "text", "timestamptz", "timestamptz", "int8", "int8", "int4", "text[]", "jsonb",
    "timestamptz", "int8",
)  # fmt: skip

_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM missing_records WHERE run_id = ANY($1::text[])"
# Rows travel as one JSON array unpacked by the server (projections/json_rows.py).
_UPSERT = insert_from_json("missing_records", _COLUMNS, _TYPES, key="run_id", update=True)
# The creations logged before this batch of the run ids that got their first row in it (the
# race above). `events` is the log itself: not one of ours, so no rebuild redirects it.
_CREATED_BEFORE = """
SELECT stream_id, position, data->>'at' AS at
  FROM events
 WHERE stream_id = ANY($1::text[]) AND version = 1 AND event_type = 'RunCreated'
   AND position < $2
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class MissingRecord:
    """What is known of one run id's updates that had no run record."""

    run_id: str
    first_seen: datetime
    last_seen: datetime
    first_position: int
    last_position: int
    attempts: int
    event_types: tuple[str, ...]
    """Distinct, in the order they were first seen."""
    last_delivery: dict[str, Any]
    """A summary of the latest attempt (see `delivery_summary`)."""
    resolved_at: datetime | None = None
    resolved_position: int | None = None


def last_delivery_summary(rejection: UpdateRejected, position: int) -> dict[str, Any]:
    """What a person debugging needs of the latest attempt: what, which, when, where."""
    return {
        "event_type": event_type_of(rejection.command),
        "command": rejection.command,
        "at": rejection.at.isoformat(),
        "position": position,
        "delivery_key": rejection.delivery_key,
        "request_key": rejection.request_key,
        **summarize_received(rejection.command, rejection.received),
    }


def note_attempt(
    record: MissingRecord | None, rejection: UpdateRejected, position: int
) -> MissingRecord:
    """`record` with one more attempt (`rejection`, at `position` in the log) counted."""
    event_type = event_type_of(rejection.command)
    summary = last_delivery_summary(rejection, position)
    if record is None:
        return MissingRecord(
            run_id=rejection.run_id,
            first_seen=rejection.at,
            last_seen=rejection.at,
            first_position=position,
            last_position=position,
            attempts=1,
            event_types=(event_type,),
            last_delivery=summary,
        )
    types = record.event_types
    return dataclasses.replace(
        record,
        last_seen=max(record.last_seen, rejection.at),
        last_position=position,
        attempts=record.attempts + 1,
        event_types=types if event_type in types else (*types, event_type),
        last_delivery=summary,
    )


def resolve(record: MissingRecord, created_at: datetime, position: int) -> MissingRecord:
    """`record` resolved by the run's creation; the first creation counts (there is one)."""
    if record.resolved_at is not None:
        return record
    return dataclasses.replace(record, resolved_at=created_at, resolved_position=position)


def record_from_row(row: Any) -> MissingRecord:
    return MissingRecord(
        run_id=row["run_id"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        first_position=row["first_position"],
        last_position=row["last_position"],
        attempts=row["attempts"],
        event_types=tuple(row["event_types"]),
        last_delivery=row["last_delivery"],
        resolved_at=row["resolved_at"],
        resolved_position=row["resolved_position"],
    )


def _row(record: MissingRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _COLUMNS}


def _relevant(events: Sequence[RecordedEvent]) -> list[tuple[int, RunCreated | UpdateRejected]]:
    """The batch's orphan rejections and run creations, decoded, in log order."""
    found: list[tuple[int, RunCreated | UpdateRejected]] = []
    for recorded in events:
        stream = recorded.stream_id
        if (recorded.type == "UpdateRejected" and stream.startswith(ORPHAN_STREAM_PREFIX)) or (
            recorded.type == "RunCreated" and stream.startswith(RUN_STREAM_PREFIX)
        ):
            event = decode(recorded.event_id, recorded.type, recorded.data)
            assert isinstance(event, RunCreated | UpdateRejected)
            found.append((recorded.position, event))
    return found


def fold(
    records: dict[str, MissingRecord], batch: Sequence[tuple[int, RunCreated | UpdateRejected]]
) -> dict[str, MissingRecord]:
    """The rows a batch (positions and events, in log order) changes, folded onto `records`."""
    folded = dict(records)
    created: dict[str, tuple[datetime, int]] = {}
    touched: set[str] = set()
    for position, event in batch:
        run_id = event.run_id
        if isinstance(event, RunCreated):
            created.setdefault(run_id, (event.at, position))
            if run_id in folded:
                folded[run_id] = resolve(folded[run_id], event.at, position)
                touched.add(run_id)
            continue
        is_new = run_id not in folded
        folded[run_id] = note_attempt(folded.get(run_id), event, position)
        touched.add(run_id)
        if is_new and run_id in created:  # created earlier in this batch: the race above
            folded[run_id] = resolve(folded[run_id], *created[run_id])
    return {run_id: folded[run_id] for run_id in touched}


class MissingRecordsProjection:
    """missing_records, from orphan-stream rejections and run creations."""

    name = "missing_records"
    tables = ("missing_records",)
    data_of: frozenset[str] | None = frozenset({"UpdateRejected", "RunCreated"})
    data_without: frozenset[str] = frozenset()

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        batch = _relevant(events)
        if not batch:
            return
        run_ids = list({event.run_id for _, event in batch})
        stored = {row["run_id"]: record_from_row(row) for row in await conn.fetch(_SELECT, run_ids)}
        changed = fold(stored, batch)
        changed = await self._resolve_raced(conn, stored, changed, events[0].position)
        if changed:
            await conn.execute(_UPSERT, orjson.dumps([_row(r) for r in changed.values()]))

    async def _resolve_raced(
        self,
        conn: Connection,
        stored: dict[str, MissingRecord],
        changed: dict[str, MissingRecord],
        batch_start: int,
    ) -> dict[str, MissingRecord]:
        """Resolve the rows new in this batch whose run was created in an earlier batch."""
        fresh = [
            run_id
            for run_id, record in changed.items()
            if run_id not in stored and record.resolved_at is None
        ]
        if not fresh:
            return changed
        streams = [RUN_STREAM_PREFIX + run_id for run_id in fresh]
        result = dict(changed)
        for row in await conn.fetch(_CREATED_BEFORE, streams, batch_start):
            run_id = row["stream_id"][len(RUN_STREAM_PREFIX) :]
            result[run_id] = resolve(
                result[run_id], datetime.fromisoformat(row["at"]), row["position"]
            )
        return result

"""`run_records`: one row per created run, its current record, folded by the state machine.

Per batch: decode the run-stream events, load the rows of the runs they touch (one SELECT),
fold each event through `statemachine.evolve` (the same code that replay and the consistency
check use), and write every touched row back with one INSERT … ON CONFLICT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from eventstore import RecordedEvent
from eventstore.pool import Connection
from projections import client_reports
from projections.json_rows import insert_from_json
from statemachine import RECORD_ONLY_FIELDS, RunState, RunStatus, decode, evolve

RUN_STREAM_PREFIX = "run-"

_COLUMNS = (
    "run_id",
    "client_id",
    "actor_id",
    "task_id",
    "requested_by",
    "input",
    "status",
    "apify_status",
    "status_message",
    "created_at",
    "started_at",
    "finished_at",
    "duration_s",
    "dataset_id",
    "usage_usd",
    "resurrect_count",
    "metrics",
    "event_count",
    "version",
    "last_position",
    "updated_at",
)
_TYPES = (
    "text", "text", "text", "text", "text", "jsonb", "text", "text", "text", "timestamptz",
    "timestamptz", "timestamptz", "float8", "text", "float8", "int4", "jsonb", "int4", "int4",
    "int8", "timestamptz",
)  # fmt: skip

# One primary-key lookup per run of the batch. `run_id = ANY($1)` over a hundred ids made the
# planner scan the whole table while it held under a few hundred thousand rows: every batch
# compared each row with every id (measured: ~30 ms a batch at 10k runs, a third of a core).
_SELECT = f"""
SELECT r.* FROM unnest($1::text[]) AS k(run_id)
 CROSS JOIN LATERAL (SELECT {", ".join(_COLUMNS)} FROM run_records WHERE run_id = k.run_id) r
"""
# The touched rows travel as one JSON array (see projections/json_rows.py for why).
_UPSERT = insert_from_json("run_records", _COLUMNS, _TYPES, key="run_id", update=True)


def state_from_row(row: Any) -> RunState:
    """The RunState a run_records row holds."""
    return RunState(
        run_id=row["run_id"],
        client_id=row["client_id"],
        actor_id=row["actor_id"],
        task_id=row["task_id"],
        requested_by=row["requested_by"],
        input=row["input"],
        status=RunStatus(row["status"]),
        apify_status=row["apify_status"],
        status_message=row["status_message"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_s=row["duration_s"],
        dataset_id=row["dataset_id"],
        usage_usd=row["usage_usd"],
        resurrect_count=row["resurrect_count"],
        metrics=tuple(sorted(row["metrics"].items())),
        event_count=row["event_count"],
        updated_at=row["updated_at"],
    )


def _row(state: RunState, version: int, position: int) -> dict[str, Any]:
    return {
        "run_id": state.run_id,
        "client_id": state.client_id,
        "actor_id": state.actor_id,
        "task_id": state.task_id,
        "requested_by": state.requested_by,
        "input": state.input,
        "status": state.status._value_,
        "apify_status": state.apify_status,
        "status_message": state.status_message,
        "created_at": state.created_at,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "duration_s": state.duration_s,
        "dataset_id": state.dataset_id,
        "usage_usd": state.usage_usd,
        "resurrect_count": state.resurrect_count,
        "metrics": dict(state.metrics),
        "event_count": state.event_count,
        "version": version,
        "last_position": position,
        "updated_at": state.updated_at,
    }


class RunRecordsProjection:
    """run_records, and client_reports from the same changes under the same checkpoint."""

    name = "run_records"
    tables = ("run_records", *client_reports.TABLES)
    data_of: frozenset[str] | None = None
    # The Apify delivery and the request as received are most of an event's bytes, and no
    # run-record field comes from them: they are not read (measured: 8 % of serve's time).
    data_without: frozenset[str] = RECORD_ONLY_FIELDS

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        changes = await self.fold(conn, events)
        await client_reports.apply_changes(conn, changes.values())

    async def fold(
        self, conn: Connection, events: Sequence[RecordedEvent]
    ) -> dict[str, tuple[RunState | None, RunState]]:
        """Fold the batch into run_records; return each touched run's (before, after) state.

        Other projections (client reports) use the before/after pairs for their deltas.
        """
        run_events = [e for e in events if e.stream_id.startswith(RUN_STREAM_PREFIX)]
        if not run_events:
            return {}
        run_ids = list({e.stream_id[len(RUN_STREAM_PREFIX) :] for e in run_events})
        before = {row["run_id"]: state_from_row(row) for row in await conn.fetch(_SELECT, run_ids)}
        states: dict[str, RunState] = dict(before)
        written: dict[str, tuple[int, int]] = {}
        for recorded in run_events:
            event = decode(recorded.event_id, recorded.type, recorded.data, slim=True)
            states[event.run_id] = evolve(states.get(event.run_id), event)
            written[event.run_id] = (recorded.version, recorded.position)
        rows = [_row(states[run_id], *written[run_id]) for run_id in written]
        await conn.execute(_UPSERT, orjson.dumps(rows))
        return {run_id: (before.get(run_id), states[run_id]) for run_id in written}

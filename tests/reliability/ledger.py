"""What the log and the projections must hold after a load: the checks every scenario shares.

- `log_problems`: each operation answered 2xx has its one event in its run's stream, at the
  position it was told; a run's stream holds nothing but the events of operations sent for it
  (so no event is duplicated, invented or turned into an orphan);
- `projection_problems`: run_records equal a fresh replay of every run stream, client_reports
  equal a recount of the replayed runs, and every checkpoint is at the log head.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from projections.run_queries import record_json
from statemachine import TERMINAL_STATUSES, RunState, decode, replay

from .load import Answer

_RUN_EVENTS = """
SELECT event_id, stream_id, position, event_type FROM events
 WHERE stream_id = ANY($1::text[]) ORDER BY position
"""
_RUN_STREAMS = """
SELECT stream_id, event_id, event_type, data FROM events
 WHERE stream_id LIKE 'run-%' ORDER BY position
"""
_ORPHANS = "SELECT count(*) FROM events WHERE stream_id = ANY($1::text[])"
_HEAD = "SELECT coalesce(max(position), 0) FROM events"
_CHECKPOINTS = "SELECT name, position FROM projection_checkpoints ORDER BY name"
_CLIENT_REPORTS = """
SELECT client_id, day, runs, status_counts, duration_count, duration_sum, metrics
  FROM client_reports
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSummary:
    operations: int
    answered_2xx: int
    events: int
    runs: int


async def log_problems(
    conn: asyncpg.Connection, finals: Sequence[Answer]
) -> tuple[list[str], LogSummary]:
    """Differences between what was answered (each operation's last answer) and the log."""
    sent = {a.operation.event_id: a.operation for a in finals}
    answered = {a.operation.event_id: a for a in finals if a.is_success}
    streams = sorted({f"run-{op.run_id}" for op in sent.values()})
    rows = await conn.fetch(_RUN_EVENTS, streams)
    found: dict[uuid.UUID, asyncpg.Record] = {row["event_id"]: row for row in rows}
    problems = []
    for event_id, answer in answered.items():
        row = found.get(event_id)
        op = answer.operation
        if row is None:
            problems.append(f"{op.kind} of {op.run_id} answered {answer.status}: no event")
        elif row["stream_id"] != f"run-{op.run_id}" or row["position"] != answer.position:
            problems.append(
                f"{op.kind} of {op.run_id}: answered position {answer.position}, event at "
                f"{row['position']} in {row['stream_id']}"
            )
    for row in rows:
        if row["event_id"] not in sent:
            problems.append(
                f"{row['stream_id']}: unexpected {row['event_type']} at {row['position']}"
            )
    orphan_streams = [f"orphan-{op.run_id}" for op in sent.values()]
    orphans = await conn.fetchval(_ORPHANS, orphan_streams)
    if orphans:
        problems.append(f"{orphans} orphan events for runs that were kicked off first")
    summary = LogSummary(
        operations=len(sent), answered_2xx=len(answered), events=len(rows), runs=len(streams)
    )
    return problems, summary


async def replayed_states(conn: asyncpg.Connection) -> dict[str, tuple[RunState, int]]:
    """Every run stream replayed from scratch: run id → (state, stream version)."""
    by_stream: dict[str, list[Any]] = defaultdict(list)
    for row in await conn.fetch(_RUN_STREAMS):
        by_stream[row["stream_id"]].append(decode(row["event_id"], row["event_type"], row["data"]))
    states = {}
    for stream, events in by_stream.items():
        state = replay(events)
        assert state is not None, stream
        states[state.run_id] = (state, len(events))
    return states


async def projection_problems(conn: asyncpg.Connection) -> list[str]:
    """run_records vs a replay, client_reports vs a recount, checkpoints vs the head."""
    states = await replayed_states(conn)
    problems = []
    expected = {run_id: {**s.to_record(), "version": v} for run_id, (s, v) in states.items()}
    projected = {r["run_id"]: record_json(r) for r in await conn.fetch("SELECT * FROM run_records")}
    for run_id in sorted(expected.keys() | projected.keys()):
        if expected.get(run_id) != projected.get(run_id):
            problems.append(
                f"run_records[{run_id}]: {projected.get(run_id)} != replay {expected.get(run_id)}"
            )
    problems += _report_problems(
        _recount(s for s, _ in states.values()),
        {(r["client_id"], r["day"]): _figures(r) for r in await conn.fetch(_CLIENT_REPORTS)},
    )
    head = await conn.fetchval(_HEAD)
    for row in await conn.fetch(_CHECKPOINTS):
        if row["position"] != head:
            problems.append(f"checkpoint {row['name']} at {row['position']}, head {head}")
    return problems


def _figures(row: Any) -> dict[str, Any]:
    return {
        "runs": row["runs"],
        "status_counts": dict(row["status_counts"]),
        "duration_count": row["duration_count"],
        "duration_sum": row["duration_sum"],
        "metrics": dict(row["metrics"]),
    }


def _recount(states: Iterable[RunState]) -> dict[tuple[str, date], dict[str, Any]]:
    """client_reports counted again from the replayed runs, without the projection's code."""
    days: dict[tuple[str, date], dict[str, Any]] = {}
    for state in states:
        day = days.setdefault(
            (state.client_id, state.created_at.date()),
            {"runs": 0, "status_counts": Counter(), "duration_count": 0, "duration_sum": 0.0,
             "metrics": Counter()},
        )  # fmt: skip
        day["runs"] += 1
        day["status_counts"][state.status.value] += 1
        if state.status in TERMINAL_STATUSES and state.duration_s is not None:
            day["duration_count"] += 1
            day["duration_sum"] += state.duration_s
        for name, value in state.metrics:
            day["metrics"][name] += value
    for day in days.values():
        day["status_counts"] = {k: v for k, v in day["status_counts"].items() if v}
        day["metrics"] = {k: v for k, v in day["metrics"].items() if v}
    return days


def _report_problems(
    expected: dict[tuple[str, date], dict[str, Any]],
    projected: dict[tuple[str, date], dict[str, Any]],
) -> list[str]:
    problems = []
    for key in sorted(expected.keys() | projected.keys()):
        want, got = expected.get(key), projected.get(key)
        if want is None or got is None:
            if (want or got or {}).get("runs"):
                problems.append(f"client_reports{key}: {got} != recount {want}")
            continue
        same_sum = math.isclose(want["duration_sum"], got["duration_sum"], rel_tol=1e-9)
        strip = {k: v for k, v in want.items() if k != "duration_sum"}
        if not same_sum or strip != {k: v for k, v in got.items() if k != "duration_sum"}:
            problems.append(f"client_reports{key}: {got} != recount {want}")
    return problems


_REJECTED = "SELECT position FROM events WHERE event_type = 'UpdateRejected' ORDER BY position"
_DEAD_LETTERED = """
SELECT position FROM events WHERE event_type = 'DeliveryDeadLettered' ORDER BY position
"""
_ORPHAN_ATTEMPTS = """
SELECT substr(stream_id, length('orphan-') + 1) AS run_id, count(*) AS attempts FROM events
 WHERE stream_id LIKE 'orphan-%' AND event_type = 'UpdateRejected' GROUP BY stream_id
"""


async def diagnostics_problems(conn: asyncpg.Connection) -> list[str]:
    """rejections, dead_letters and missing_records against the log: one row per event (or
    per orphan run, with one attempt per orphan event), none missing, none counted twice."""
    problems = []
    for table, query in (("rejections", _REJECTED), ("dead_letters", _DEAD_LETTERED)):
        logged = [row["position"] for row in await conn.fetch(query)]
        rows = [r["position"] for r in await conn.fetch(f"SELECT position FROM {table}")]
        if sorted(rows) != logged:
            missing, extra = set(logged) - set(rows), Counter(rows) - Counter(logged)
            problems.append(f"{table}: {len(missing)} events missing, {sorted(extra)} extra")
    logged_attempts = {r["run_id"]: r["attempts"] for r in await conn.fetch(_ORPHAN_ATTEMPTS)}
    kept = {
        r["run_id"]: r["attempts"]
        for r in await conn.fetch("SELECT run_id, attempts FROM missing_records")
    }
    if kept != logged_attempts:
        problems.append(f"missing_records attempts {kept} != orphan events {logged_attempts}")
    return problems

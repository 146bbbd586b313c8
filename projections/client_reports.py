"""`client_reports`: per client and day, kept by the run_records projection in the same batch.

Its figures are sums over run records, so they are maintained as deltas of the run records a
batch changed (each run's contribution before the batch is taken away, after it is added) in
the same transaction and under the same checkpoint: the two tables can never disagree.
The arithmetic is pure (`contribution`, `add`); the SQL reads and writes touched rows once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from eventstore.pool import Connection
from projections import durations
from statemachine import RunState, is_terminal

Key = tuple[str, date]

_SELECT = """
SELECT client_id, day, runs, status_counts, duration_count, duration_sum, duration_hist,
       metrics, usage_usd, last_run_at, last_run_id
  FROM client_reports
 WHERE (client_id, day) IN (SELECT * FROM unnest($1::text[], $2::date[]))
"""
_UPSERT = """
INSERT INTO client_reports (client_id, day, runs, status_counts, duration_count, duration_sum,
                            duration_hist, metrics, usage_usd, last_run_at, last_run_id)
SELECT c, d, r, sc, dc, ds, string_to_array(dh, ',')::int[], m, u, la, li
  FROM unnest($1::text[], $2::date[], $3::int4[], $4::jsonb[], $5::int4[], $6::float8[],
              $7::text[], $8::jsonb[], $9::float8[], $10::timestamptz[], $11::text[])
       AS t(c, d, r, sc, dc, ds, dh, m, u, la, li)
ON CONFLICT (client_id, day) DO UPDATE SET
    runs = excluded.runs, status_counts = excluded.status_counts,
    duration_count = excluded.duration_count, duration_sum = excluded.duration_sum,
    duration_hist = excluded.duration_hist, metrics = excluded.metrics,
    usage_usd = excluded.usage_usd, last_run_at = excluded.last_run_at,
    last_run_id = excluded.last_run_id
"""


@dataclass(slots=True, kw_only=True)
class DayFigures:
    """One client's figures for one day (or a delta to them)."""

    runs: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_hist: list[int] = field(default_factory=durations.empty)
    metrics: dict[str, float] = field(default_factory=dict)
    usage_usd: float = 0.0
    last_run_at: datetime | None = None
    last_run_id: str | None = None


def day_of(state: RunState) -> Key:
    return state.client_id, state.created_at.date()


def contribution(state: RunState, sign: int) -> DayFigures:
    """What one run adds to its client's day (sign=+1), or takes away (sign=-1)."""
    figures = DayFigures(runs=sign, status_counts={state.status.value: sign})
    if is_terminal(state.status) and state.duration_s is not None:
        figures.duration_count = sign
        figures.duration_sum = sign * state.duration_s
        figures.duration_hist[durations.bucket_of(state.duration_s)] = sign
    figures.metrics = {name: sign * value for name, value in state.metrics}
    figures.usage_usd = sign * (state.usage_usd or 0.0)
    if sign > 0:
        figures.last_run_at, figures.last_run_id = state.created_at, state.run_id
    return figures


def add(total: DayFigures, delta: DayFigures) -> None:
    """Fold `delta` into `total` in place (zero counts and sums are dropped)."""
    total.runs += delta.runs
    total.status_counts = _summed(total.status_counts, delta.status_counts)
    total.duration_count += delta.duration_count
    total.duration_sum += delta.duration_sum
    total.duration_hist = [
        a + b for a, b in zip(total.duration_hist, delta.duration_hist, strict=True)
    ]
    total.metrics = _summed(total.metrics, delta.metrics)
    total.usage_usd += delta.usage_usd
    if delta.last_run_at is not None and (
        total.last_run_at is None
        or (delta.last_run_at, delta.last_run_id or "")
        > (total.last_run_at, total.last_run_id or "")
    ):
        total.last_run_at, total.last_run_id = delta.last_run_at, delta.last_run_id


def _summed(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for name, value in b.items():
        out[name] = out.get(name, 0) + value
    return {name: value for name, value in out.items() if value != 0}


def deltas(changes: Iterable[tuple[RunState | None, RunState]]) -> dict[Key, DayFigures]:
    """The per-(client, day) deltas of a batch's run changes (before → after)."""
    result: dict[Key, DayFigures] = {}
    for before, after in changes:
        for state, sign in ((before, -1), (after, 1)):
            if state is not None:
                add(result.setdefault(day_of(state), DayFigures()), contribution(state, sign))
    return result


def figures_from_row(row: Any) -> DayFigures:
    return DayFigures(
        runs=row["runs"],
        status_counts=dict(row["status_counts"]),
        duration_count=row["duration_count"],
        duration_sum=row["duration_sum"],
        duration_hist=list(row["duration_hist"]),
        metrics=dict(row["metrics"]),
        usage_usd=row["usage_usd"],
        last_run_at=row["last_run_at"],
        last_run_id=row["last_run_id"],
    )


async def apply_changes(
    conn: Connection, changes: Iterable[tuple[RunState | None, RunState]]
) -> None:
    """Read the touched (client, day) rows once, add the batch's deltas, write them back once.

    Read-modify-write is safe: the runner holds the projection's lock and its checkpoint row.
    """
    batch = deltas(changes)
    if not batch:
        return
    keys = list(batch)
    current = {
        (row["client_id"], row["day"]): figures_from_row(row)
        for row in await conn.fetch(_SELECT, [k[0] for k in keys], [k[1] for k in keys])
    }
    rows = []
    for key, delta in batch.items():
        total = current.get(key, DayFigures())
        add(total, delta)
        rows.append(
            (
                key[0], key[1], total.runs, total.status_counts, total.duration_count,
                total.duration_sum, ",".join(map(str, total.duration_hist)), total.metrics,
                total.usage_usd, total.last_run_at, total.last_run_id,
            )
        )  # fmt: skip
    await conn.execute(_UPSERT, *zip(*rows, strict=True))

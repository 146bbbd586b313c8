"""`client_reports`: per client and day, kept by the run_records projection in the same batch.

Its figures are sums over run records, so they are maintained as deltas of the run records a
batch changed (each run's contribution before the batch is taken away, after it is added) in
the same transaction and under the same checkpoint: the two tables can never disagree.
The arithmetic is pure (`count_run`, `apply_delta`, `add`); the SQL reads and writes touched
rows once. The same deltas, summed per month, keep `client_months` (sql/0009), so that a report
over all days sums a few rows per client instead of one per day. A batch's deltas are summed in
place into one `DayDelta` per (client, day), whose histogram is sparse: a run touches one
bucket, and a rebuild counts ~400,000 contributions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from eventstore.pool import Connection
from projections import durations
from statemachine import TERMINAL_STATUSES, RunState

Key = tuple[str, date]

# Status values as plain strings: a StrEnum member hashes through a Python-level __hash__.
_TERMINAL = frozenset(status._value_ for status in TERMINAL_STATUSES)

_FIGURES = (
    "runs, status_counts, duration_count, duration_sum, duration_hist, metrics, usage_usd, "
    "last_run_at, last_run_id"
)


@dataclass(frozen=True, slots=True)
class _Table:
    """A table of figures per client and period: the days, or their roll-up per month."""

    select: str
    upsert: str


def _table(name: str, period: str) -> _Table:
    return _Table(
        select=f"""
SELECT client_id, {period}, {_FIGURES}
  FROM {name}
 WHERE (client_id, {period}) IN (SELECT * FROM unnest($1::text[], $2::date[]))
""",
        upsert=f"""
INSERT INTO {name} (client_id, {period}, {_FIGURES})
SELECT c, d, r, sc, dc, ds, string_to_array(dh, ',')::int[], m, u, la, li
  FROM unnest($1::text[], $2::date[], $3::int4[], $4::jsonb[], $5::int4[], $6::float8[],
              $7::text[], $8::jsonb[], $9::float8[], $10::timestamptz[], $11::text[])
       AS t(c, d, r, sc, dc, ds, dh, m, u, la, li)
ON CONFLICT (client_id, {period}) DO UPDATE SET
    runs = excluded.runs, status_counts = excluded.status_counts,
    duration_count = excluded.duration_count, duration_sum = excluded.duration_sum,
    duration_hist = excluded.duration_hist, metrics = excluded.metrics,
    usage_usd = excluded.usage_usd, last_run_at = excluded.last_run_at,
    last_run_id = excluded.last_run_id
""",
    )


# The days, and the months that /reports/clients sums instead of every day (sql/0009).
_DAYS = _table("client_reports", "day")
_MONTHS = _table("client_months", "month")
TABLES = ("client_reports", "client_months")


@dataclass(slots=True, kw_only=True)
class DayFigures:
    """One client's figures for one day, or for several days summed."""

    runs: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_hist: list[int] = field(default_factory=durations.empty)
    metrics: dict[str, float] = field(default_factory=dict)
    usage_usd: float = 0.0
    last_run_at: datetime | None = None
    last_run_id: str | None = None


@dataclass(slots=True, kw_only=True)
class DayDelta:
    """What a batch changes in one client's day; `duration_buckets` is bucket → count."""

    runs: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_buckets: dict[int, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    usage_usd: float = 0.0
    last_run_at: datetime | None = None
    last_run_id: str | None = None


def day_of(state: RunState) -> Key:
    return state.client_id, state.created_at.date()


def count_run(delta: DayDelta, state: RunState, sign: int) -> None:
    """Add one run's contribution to its day (sign=+1), or take it away (sign=-1), in place."""
    delta.runs += sign
    status: str = state.status._value_
    delta.status_counts[status] = delta.status_counts.get(status, 0) + sign
    if state.duration_s is not None and status in _TERMINAL:
        delta.duration_count += sign
        delta.duration_sum += sign * state.duration_s
        bucket = durations.bucket_of(state.duration_s)
        delta.duration_buckets[bucket] = delta.duration_buckets.get(bucket, 0) + sign
    metrics = delta.metrics
    for name, value in state.metrics:
        metrics[name] = metrics.get(name, 0) + sign * value
    delta.usage_usd += sign * (state.usage_usd or 0.0)
    if sign > 0 and _is_later(state.created_at, state.run_id, delta.last_run_at, delta.last_run_id):
        delta.last_run_at, delta.last_run_id = state.created_at, state.run_id


def _is_later(at: datetime, run_id: str, than_at: datetime | None, than_id: str | None) -> bool:
    return than_at is None or (at, run_id) > (than_at, than_id or "")


def apply_delta(total: DayFigures, delta: DayDelta) -> None:
    """Fold a batch's `delta` into `total` in place (zero counts and sums are dropped)."""
    total.runs += delta.runs
    total.status_counts = _summed(total.status_counts, delta.status_counts)
    total.duration_count += delta.duration_count
    total.duration_sum += delta.duration_sum
    for bucket, count in delta.duration_buckets.items():
        total.duration_hist[bucket] += count
    total.metrics = _summed(total.metrics, delta.metrics)
    total.usage_usd += delta.usage_usd
    if delta.last_run_at is not None and delta.last_run_id is not None:
        _take_last(total, delta.last_run_at, delta.last_run_id)


def add(total: DayFigures, other: DayFigures) -> None:
    """Add `other` (another day's figures) into `total` in place."""
    total.runs += other.runs
    total.status_counts = _summed(total.status_counts, other.status_counts)
    total.duration_count += other.duration_count
    total.duration_sum += other.duration_sum
    total.duration_hist = [
        a + b for a, b in zip(total.duration_hist, other.duration_hist, strict=True)
    ]
    total.metrics = _summed(total.metrics, other.metrics)
    total.usage_usd += other.usage_usd
    if other.last_run_at is not None and other.last_run_id is not None:
        _take_last(total, other.last_run_at, other.last_run_id)


def _take_last(total: DayFigures, at: datetime, run_id: str) -> None:
    if _is_later(at, run_id, total.last_run_at, total.last_run_id):
        total.last_run_at, total.last_run_id = at, run_id


def _summed(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for name, value in b.items():
        out[name] = out.get(name, 0) + value
    return {name: value for name, value in out.items() if value != 0}


def deltas(changes: Iterable[tuple[RunState | None, RunState]]) -> dict[Key, DayDelta]:
    """The per-(client, day) deltas of a batch's run changes (before → after)."""
    result: dict[Key, DayDelta] = {}
    for before, after in changes:
        if before is not None:
            key = before.client_id, before.created_at.date()
            count_run(result.get(key) or result.setdefault(key, DayDelta()), before, -1)
        key = after.client_id, after.created_at.date()
        count_run(result.get(key) or result.setdefault(key, DayDelta()), after, 1)
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


def merge_delta(total: DayDelta, delta: DayDelta) -> None:
    """Add one delta into another, in place (a month's from its days')."""
    total.runs += delta.runs
    _merge_into(total.status_counts, delta.status_counts)
    total.duration_count += delta.duration_count
    total.duration_sum += delta.duration_sum
    _merge_into(total.duration_buckets, delta.duration_buckets)
    _merge_into(total.metrics, delta.metrics)
    total.usage_usd += delta.usage_usd
    if delta.last_run_at is not None and _is_later(
        delta.last_run_at, delta.last_run_id or "", total.last_run_at, total.last_run_id
    ):
        total.last_run_at, total.last_run_id = delta.last_run_at, delta.last_run_id


def _merge_into(total: dict[Any, Any], delta: Mapping[Any, Any]) -> None:
    for name, value in delta.items():
        total[name] = total.get(name, 0) + value


def month_of(day: date) -> date:
    return day.replace(day=1)


def by_month(batch: Mapping[Key, DayDelta]) -> dict[Key, DayDelta]:
    """The days' deltas summed per client and month."""
    months: dict[Key, DayDelta] = {}
    for (client_id, day), delta in batch.items():
        key = client_id, month_of(day)
        merge_delta(months.get(key) or months.setdefault(key, DayDelta()), delta)
    return months


async def apply_changes(
    conn: Connection, changes: Iterable[tuple[RunState | None, RunState]]
) -> None:
    """Add the batch's deltas to the touched days and months: each table read once, written once.

    Read-modify-write is safe: the runner holds the projection's lock and its checkpoint row.
    """
    batch = deltas(changes)
    if batch:
        await _write(conn, _DAYS, batch)
        await _write(conn, _MONTHS, by_month(batch))


async def _write(conn: Connection, table: _Table, batch: Mapping[Key, DayDelta]) -> None:
    keys = list(batch)
    current = {
        (row[0], row[1]): figures_from_row(row)
        for row in await conn.fetch(table.select, [k[0] for k in keys], [k[1] for k in keys])
    }
    rows = []
    for key, delta in batch.items():
        total = current.get(key) or DayFigures()
        apply_delta(total, delta)
        rows.append(
            (
                key[0], key[1], total.runs, total.status_counts, total.duration_count,
                total.duration_sum, ",".join(map(str, total.duration_hist)), total.metrics,
                total.usage_usd, total.last_run_at, total.last_run_id,
            )
        )  # fmt: skip
    await conn.execute(table.upsert, *zip(*rows, strict=True))

"""Read-only queries over client_reports for `GET /reports/clients` and `/reports/daily`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from eventstore.pool import Connection
from projections import durations
from projections.client_reports import DayFigures, add, figures_from_row

_SELECT = """
SELECT client_id, day, runs, status_counts, duration_count, duration_sum, duration_hist,
       metrics, usage_usd, last_run_at, last_run_id
  FROM client_reports
 WHERE ($1::text IS NULL OR client_id = $1)
   AND ($2::date IS NULL OR day >= $2)
   AND ($3::date IS NULL OR day <= $3)
 ORDER BY client_id, day
"""
FINISHED = ("succeeded", "failed", "timed_out", "aborted")


def summary(figures: DayFigures) -> dict[str, Any]:
    """The report fields of API.md from summed figures."""
    finished = sum(figures.status_counts.get(s, 0) for s in FINISHED)
    succeeded = figures.status_counts.get("succeeded", 0)
    mean = figures.duration_sum / figures.duration_count if figures.duration_count else None
    return {
        "runs": figures.runs,
        "runs_by_status": dict(sorted(figures.status_counts.items())),
        "success_rate": round(succeeded / finished, 4) if finished else None,
        "mean_duration_s": round(mean, 3) if mean is not None else None,
        "p95_duration_s": durations.percentile(figures.duration_hist, 0.95),
        "metrics": {name: figures.metrics[name] for name in sorted(figures.metrics)},
        "usage_usd": round(figures.usage_usd, 6),
        "last_run": (
            {"run_id": figures.last_run_id, "created_at": figures.last_run_at.isoformat()}
            if figures.last_run_at is not None
            else None
        ),
    }


async def _rows(
    conn: Connection, client_id: str | None, start: date | None, end: date | None
) -> Sequence[Any]:
    return await conn.fetch(_SELECT, client_id, start, end)


async def clients_report(
    conn: Connection, *, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """Per client over the days in [start, end]."""
    totals: dict[str, DayFigures] = {}
    for row in await _rows(conn, None, start, end):
        add(totals.setdefault(row["client_id"], DayFigures()), figures_from_row(row))
    return [{"client_id": client, **summary(f)} for client, f in sorted(totals.items())]


async def daily_report(
    conn: Connection, *, client_id: str | None, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """Per client per day in [start, end]."""
    return [
        {
            "client_id": row["client_id"],
            "day": row["day"].isoformat(),
            **summary(figures_from_row(row)),
        }
        for row in await _rows(conn, client_id, start, end)
    ]

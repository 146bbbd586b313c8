"""Scenario 1: PostgreSQL restarted while deliveries are being sent.

A `runledger serve` on a PostgreSQL this test starts itself; a client keeps kickoffs,
deliveries and results going, retrying after a 503 or a broken connection. The database is
stopped in the middle of the load, and started again once the API has answered enough 503s;
three times over.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from api.embedded_db import EmbeddedPostgres
from eventstore.pool import connect

from .conftest import checkpoints_at_head, migrated
from .ledger import log_problems, projection_problems
from .load import Answer, Load, plans
from .processes import BOUND_S, Served, check, free_port
from .report import show, statuses

RUNS = 3000
RESTARTS = 3
BETWEEN = 1500  # 2xx answers before each stop, and after the last start
OUTAGE_503S = 500  # 503 answers seen before the database comes back


def _ok(answer: Answer) -> bool:
    return answer.is_success


@pytest.mark.slow
async def test_deliveries_answered_2xx_survive_a_database_restart_exactly_once(
    embedded: EmbeddedPostgres, tmp_path: Path
) -> None:
    dsn = embedded.dsn()
    await migrated(dsn)
    served = await asyncio.to_thread(Served, dsn, tmp_path, port=free_port())
    load = Load(base_url=lambda: served.url, plans=plans(RUNS, seed=1), concurrency=8)
    started = time.monotonic()
    outages: list[tuple[float, float]] = []
    recoveries: list[float] = []
    sending = asyncio.create_task(load.run())
    try:
        for _ in range(RESTARTS):
            since = time.monotonic()
            await load.wait_until(
                lambda: load.count(lambda a: a.at >= since and a.is_success) >= BETWEEN,  # noqa: B023
                within_s=BOUND_S,
            )
            stopped_at = time.monotonic()
            await asyncio.to_thread(embedded.stop)
            await load.wait_until(
                lambda: (
                    load.count(lambda a: a.at >= stopped_at and a.status == 503)  # noqa: B023
                    >= OUTAGE_503S
                ),
                within_s=BOUND_S,
            )
            await asyncio.to_thread(embedded.start)
            back_at = time.monotonic()
            outages.append((stopped_at, back_at))
            await load.wait_until(
                lambda: load.count(lambda a: a.at >= back_at and a.is_success) > 0,  # noqa: B023
                within_s=BOUND_S,
            )
            recoveries.append(
                min(a.at + a.latency_s for a in load.answers if a.at >= back_at and a.is_success)
                - back_at
            )
        since = time.monotonic()
        await load.wait_until(
            lambda: load.count(lambda a: a.at >= since and a.is_success) >= BETWEEN,
            within_s=BOUND_S,
        )
    finally:
        load.stopping.set()
        await asyncio.wait_for(sending, BOUND_S)
    assert served.process.poll() is None  # recovered without a restart

    during = [a for a in load.answers if any(s <= a.at < b for s, b in outages)]
    unavailable = [a for a in load.answers if a.status == 503]
    conn = await connect(dsn)
    try:
        problems, summary = await log_problems(conn, load.finals)
        head = await checkpoints_at_head(dsn)
        projected = await projection_problems(conn)
    finally:
        await conn.close()
    checked = await asyncio.to_thread(check, dsn, tmp_path)
    served.stop()
    show(
        "database restart",
        seconds=round(time.monotonic() - started, 1),
        attempts=len(load.answers),
        statuses=statuses(load.answers),
        statuses_during_outages=statuses(during),
        outages_s=[round(b - s, 2) for s, b in outages],
        first_2xx_after_each_start_s=[round(r, 2) for r in recoveries],
        summary=summary,
        head=head,
        check_exit=checked.returncode,
    )
    assert problems == []
    assert projected == []
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert {a.status for a in load.finals} <= {200, 201, 202}  # every operation got through
    assert len(unavailable) >= RESTARTS * OUTAGE_503S
    assert [a for a in unavailable if not a.retry_after] == []
    assert {a.status for a in load.answers} <= {0, 200, 201, 202, 503}
    assert served.log_lines_with("unhandled error") == []

"""Scenario 2: `runledger serve` killed with SIGKILL in the middle of a load, then started again.

The client keeps sending, retrying a broken connection with the same request; the new process
takes the same port. Every 2xx answer must be in the log, the projections must catch up with
the head, and `runledger check` must pass.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from eventstore.pool import connect

from .conftest import checkpoints_at_head
from .ledger import log_problems, projection_problems
from .load import Load, plans
from .processes import BOUND_S, Process, Served, check, free_port
from .report import show, statuses

RUNS = 2000
KILLS = 3
BETWEEN = 1500  # 2xx answers before each kill, and after the last start


@pytest.mark.slow
async def test_answers_survive_serve_killed_mid_load_and_projections_catch_up(
    dsn: str, tmp_path: Path, children: list[Process]
) -> None:
    port = free_port()

    def start() -> Served:
        served = Served(dsn, tmp_path, port=port, name=f"serve-{len(children)}")
        children.append(served)
        return served

    current = await asyncio.to_thread(start)
    load = Load(base_url=lambda: current.url, plans=plans(RUNS, seed=2), concurrency=8)
    started = time.monotonic()
    sending = asyncio.create_task(load.run())
    downtimes = []
    try:
        for _ in range(KILLS):
            since = time.monotonic()
            await load.wait_until(
                lambda: load.count(lambda a: a.at >= since and a.is_success) >= BETWEEN,  # noqa: B023
                within_s=BOUND_S,
            )
            killed_at = time.monotonic()
            current.kill()
            current = await asyncio.to_thread(start)
            downtimes.append(time.monotonic() - killed_at)
        since = time.monotonic()
        await load.wait_until(
            lambda: load.count(lambda a: a.at >= since and a.is_success) >= BETWEEN,
            within_s=BOUND_S,
        )
    finally:
        load.stopping.set()
        await asyncio.wait_for(sending, BOUND_S)
    head = await checkpoints_at_head(dsn)
    conn = await connect(dsn)
    try:
        problems, summary = await log_problems(conn, load.finals)
        projected = await projection_problems(conn)
    finally:
        await conn.close()
    checked = await asyncio.to_thread(check, dsn, tmp_path)
    show(
        "serve killed",
        seconds=round(time.monotonic() - started, 1),
        attempts=len(load.answers),
        statuses=statuses(load.answers),
        restart_s=[round(d, 2) for d in downtimes],
        summary=summary,
        head=head,
        check_exit=checked.returncode,
    )
    assert problems == []
    assert projected == []
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert {a.status for a in load.finals} <= {200, 201, 202}
    assert [line for c in children for line in c.log_lines_with("unhandled error")] == []

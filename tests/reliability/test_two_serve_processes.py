"""Scenario 4: two `runledger serve` processes on one database share a load; one is SIGKILLed.

The client alternates its requests between the two processes (as a load balancer would), and
retries a broken connection on the next live one. Each process runs a runner per projection:
exactly one of the two may be active per projection. The process holding `run_records` is
SIGKILLed in the middle of the load; the standbys in the other process must take over (every
checkpoint advanced by the survivor past where it was at the kill: the takeover time), and
in the end every answered operation is in the log exactly once and the projections equal a
replay.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from eventstore.pool import connect

from .conftest import checkpoints_at_head
from .leaders import (
    checkpoints,
    elections,
    one_active_each,
    wait_for_checkpoints,
    wait_for_elections,
)
from .ledger import diagnostics_problems, log_problems, projection_problems
from .load import Load, plans
from .processes import BOUND_S, Process, Served, check, free_port
from .report import show, statuses

RUNS = 2000
BEFORE = 1500  # 2xx answers before the kill, and again after it
WATCHED = "run_records"


class RoundRobin:
    """The load balancer: each call gives the next live process's URL."""

    def __init__(self, served: list[Served]) -> None:
        self.live = list(served)
        self.calls = 0
        self.sent: dict[int, int] = {s.pid: 0 for s in served}

    def __call__(self) -> str:
        chosen = self.live[self.calls % len(self.live)]
        self.calls += 1
        self.sent[chosen.pid] += 1
        return chosen.url


async def test_two_serve_processes_share_a_load_with_one_runner_each_and_survive_one_killed(
    dsn: str, tmp_path: Path, children: list[Process]
) -> None:
    def start(name: str) -> Served:
        served = Served(dsn, tmp_path, port=free_port(), name=name)
        children.append(served)
        return served

    first, second = await asyncio.gather(
        asyncio.to_thread(start, "serve-a"), asyncio.to_thread(start, "serve-b")
    )
    balancer = RoundRobin([first, second])
    load = Load(base_url=balancer, plans=plans(RUNS, seed=4), concurrency=8)
    conn = await connect(dsn)
    started = time.monotonic()
    sending = asyncio.create_task(load.run())
    try:
        shared = await wait_for_elections(
            conn, lambda e: one_active_each(e, waiting=1), within_s=BOUND_S
        )
        await load.wait_until(
            lambda: load.count(lambda a: a.is_success) >= BEFORE, within_s=BOUND_S
        )
        during_load = await elections(conn)
        holders = await wait_for_checkpoints(
            conn, lambda c: c[WATCHED].runner_pid in (first.pid, second.pid), within_s=BOUND_S
        )
        victim = first if holders[WATCHED].runner_pid == first.pid else second
        survivor = second if victim is first else first
        held_by_victim = sorted(n for n, c in holders.items() if c.runner_pid == victim.pid)
        balancer.live.remove(victim)
        victim.kill()
        killed_at = time.monotonic()
        at_kill = await checkpoints(conn)
        head_at_kill = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
        # Taken over: every checkpoint advanced by the survivor past the head at the kill.
        await wait_for_checkpoints(
            conn,
            lambda now: all(
                c.runner_pid == survivor.pid and c.position >= head_at_kill for c in now.values()
            ),
            within_s=BOUND_S,
        )
        takeover_s = time.monotonic() - killed_at
        after_kill = await wait_for_elections(
            conn, lambda e: one_active_each(e, waiting=0), within_s=BOUND_S
        )
        since = time.monotonic()
        await load.wait_until(
            lambda: load.count(lambda a: a.at >= since and a.is_success) >= BEFORE,
            within_s=BOUND_S,
        )
    finally:
        load.stopping.set()
        await asyncio.wait_for(sending, BOUND_S)
    try:
        head = await checkpoints_at_head(dsn)
        problems, summary = await log_problems(conn, load.finals)
        projected = await projection_problems(conn)
        diagnosed = await diagnostics_problems(conn)
    finally:
        await conn.close()
    checked = await asyncio.to_thread(check, dsn, tmp_path)
    survivor.stop()
    show(
        "two serve processes, one killed",
        seconds=round(time.monotonic() - started, 1),
        attempts=len(load.answers),
        attempts_per_process=balancer.sent,
        statuses=statuses(load.answers),
        summary=summary,
        head=head,
        elections_while_both_ran={n: (e.active, e.waiting) for n, e in during_load.items()},
        projections_held_by_the_killed_process=held_by_victim,
        lag_at_kill={n: head_at_kill - c.position for n, c in at_kill.items()},
        takeover_s=round(takeover_s, 2),
        check_exit=checked.returncode,
    )
    assert one_active_each(shared, waiting=1)
    assert one_active_each(during_load, waiting=1)
    assert one_active_each(after_kill, waiting=0)
    assert problems == []
    assert projected == []
    assert diagnosed == []
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert {a.status for a in load.finals} <= {200, 201, 202}
    assert [line for c in children for line in c.log_lines_with("unhandled error")] == []

"""Scenario 3: projection runners killed mid-batch, and two runners started at once.

A backlog is written into the log and appends keep going (as the service writes them, without
HTTP: tests/reliability/backlog.py). Two `runledger projections run` processes start at the
same moment; the advisory locks must elect exactly one active runner per projection. Then, three
times, the process applying `run_records` is SIGKILLed while its batch transaction is open, and
a new runner is started at once: the standby must take over from the checkpoint. At the end
every projection must equal a fresh replay of the log: no event applied twice, none skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from pathlib import Path

import asyncpg

from eventstore import EventStore, create_pool
from eventstore.pool import close_pool, connect

from .backlog import write_backlog
from .conftest import POLL_S, checkpoints_at_head
from .leaders import (
    Checkpoint,
    checkpoints,
    elections,
    one_active_each,
    wait_for_checkpoints,
    wait_for_elections,
)
from .ledger import diagnostics_problems, projection_problems
from .processes import BOUND_S, Process, check, projections_run
from .report import show

BACKLOG_RUNS = 4000  # about 16,000 events before the runners start
RUNS_PER_APPEND = 32  # then about 128 events per round, appended without pause
KILLS = 3
WATCHED = "run_records"  # the projection whose runner is killed (the biggest batches)

_IN_TRANSACTION = "SELECT xact_start IS NOT NULL FROM pg_stat_activity WHERE pid = $1"
_HEAD = "SELECT coalesce(max(position), 0) FROM events"


async def keep_appending(store: EventStore, stop: asyncio.Event, written: list[int]) -> None:
    for seed in itertools.count(1):
        if stop.is_set():
            return
        written.append(await write_backlog(store, RUNS_PER_APPEND, seed=seed))


async def killed_mid_batch(
    conn: asyncpg.Connection, runners: list[Process], *, past: int
) -> tuple[Process, Checkpoint]:
    """Wait until the active runner of WATCHED has advanced past `past` and has a batch
    transaction open on its elected connection; SIGKILL its process at that moment."""
    by_pid = {runner.pid: runner for runner in runners}
    async with asyncio.timeout(BOUND_S):
        while True:
            current = (await checkpoints(conn)).get(WATCHED)
            election = (await elections(conn))[WATCHED]
            if (
                current is not None
                and current.position > past
                and current.runner_pid in by_pid
                and election.active_backends
                and await conn.fetchval(_IN_TRANSACTION, election.active_backends[0])
            ):
                victim = by_pid[current.runner_pid]
                victim.kill()
                return victim, current
            await asyncio.sleep(POLL_S / 10)


async def test_projection_runners_killed_mid_batch_or_started_together_apply_each_event_once(
    dsn: str, tmp_path: Path, children: list[Process]
) -> None:
    pool = await create_pool(dsn, min_size=2, max_size=8)
    conn = await connect(dsn)
    stop = asyncio.Event()
    written: list[int] = []
    takeovers: list[float] = []
    lag_at_kill: list[int] = []
    started = time.monotonic()
    try:
        async with EventStore(pool) as store:
            written.append(await write_backlog(store, BACKLOG_RUNS, seed=0))
            appending = asyncio.create_task(keep_appending(store, stop, written))
            try:

                def start(name: str) -> Process:
                    runner = projections_run(dsn, tmp_path, name=name)
                    children.append(runner)
                    return runner

                # Two runners started at the same moment: one active per projection.
                live = [start("runner-0"), start("runner-1")]
                together = await wait_for_elections(
                    conn, lambda e: one_active_each(e, waiting=1), within_s=BOUND_S
                )
                past = 0
                for kill in range(KILLS):
                    victim, at_kill = await killed_mid_batch(conn, live, past=past)
                    killed_at = time.monotonic()
                    lag_at_kill.append(await conn.fetchval(_HEAD) - at_kill.position)
                    live.remove(victim)
                    live.append(start(f"runner-{kill + 2}"))
                    survivor_pids = {runner.pid for runner in live}
                    before = await checkpoints(conn)
                    await wait_for_checkpoints(
                        conn,
                        lambda now: all(
                            c.runner_pid in survivor_pids  # noqa: B023
                            and c.position > before[c.name].position  # noqa: B023
                            for c in now.values()
                        ),
                        within_s=BOUND_S,
                    )
                    takeovers.append(time.monotonic() - killed_at)
                    await wait_for_elections(
                        conn, lambda e: one_active_each(e, waiting=1), within_s=BOUND_S
                    )
                    past = at_kill.position
            finally:
                stop.set()
                await appending
        head = await checkpoints_at_head(dsn)
        final_elections = await elections(conn)
        projected = await projection_problems(conn)
        diagnosed = await diagnostics_problems(conn)
    finally:
        await conn.close()
        await close_pool(pool)
    checked = await asyncio.to_thread(check, dsn, tmp_path)
    for runner in live:
        with contextlib.suppress(AssertionError):
            runner.stop()
    failed_batches = [
        line for r in children for line in r.log_lines_with("projection failed on a batch")
    ]
    show(
        "projection runners killed mid-batch",
        seconds=round(time.monotonic() - started, 1),
        events=sum(written),
        head=head,
        runners_started=len(children),
        kills=KILLS,
        lag_of_run_records_at_each_kill=lag_at_kill,
        takeover_s=[round(t, 2) for t in takeovers],
        elections_when_started_together={n: (e.active, e.waiting) for n, e in together.items()},
        failed_batches=len(failed_batches),
        check_exit=checked.returncode,
    )
    assert one_active_each(final_elections, waiting=1)
    assert projected == []
    assert diagnosed == []
    assert failed_batches == []
    assert checked.returncode == 0, checked.stdout + checked.stderr

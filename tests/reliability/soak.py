"""Scenario 8: a sustained mixed load for several minutes (not part of the default test run).

    .venv/bin/python -m tests.reliability.soak --minutes 5

One `runledger serve` on a fresh database (found as the tests find theirs). Writers keep
kickoffs, Apify deliveries (shuffled: out of order, one of each run's sent twice) and results
going as fast as the server answers; readers keep queries going (a run just written, with
`min_position`; lists by client; the client report). Printed: throughput, p50/p99 latency of
commands and queries, the serve process's resident memory sampled over time, and then the
checks: every answered operation in the log exactly once, the projections equal to a fresh
replay, `runledger check` exit 0. Exit status 0 when all hold, 1 otherwise.

The module's name does not start with `test_`: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import aiohttp

from eventstore.pool import connect
from tests import databases

from .conftest import checkpoints_at_head
from .ledger import diagnostics_problems, log_problems, projection_problems
from .load import API_TOKEN, Load, RunPlan, plan_run
from .processes import Served, check, free_port
from .report import percentile, statuses

RSS_EVERY_S = 10.0
QUERY_TIMEOUT_S = 30.0


class Plans(Sequence[RunPlan]):
    """As many run plans as a soak can use, each made when it is first asked for."""

    def __init__(self, seed: int, count: int = 10_000_000) -> None:
        self._seed, self._count = seed, count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> RunPlan: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RunPlan]: ...
    def __getitem__(self, index: int | slice) -> RunPlan | Sequence[RunPlan]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        return plan_run(random.Random(self._seed * 1_000_003 + index), index)


@dataclass(slots=True)
class Queries:
    """Readers: each query's status and latency."""

    served: Served
    load: Load
    stopping: asyncio.Event
    answers: list[tuple[str, int, float]] = field(default_factory=list)

    async def run(self, concurrency: int) -> None:
        timeout = aiohttp.ClientTimeout(total=QUERY_TIMEOUT_S)
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            await asyncio.gather(*(self._reader(session, n) for n in range(concurrency)))

    async def _reader(self, session: aiohttp.ClientSession, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stopping.is_set():
            recent = [a for a in self.load.finals[-200:] if a.is_success and a.position]
            if not recent:
                await asyncio.sleep(0.05)
                continue
            answer = rng.choice(recent)
            kind, path = rng.choice(
                [
                    ("run", f"/runs/{answer.operation.run_id}?min_position={answer.position}"),
                    ("list", f"/runs?client_id=client-{rng.randint(1, 5)}&limit=50"),
                    ("report", "/reports/clients"),
                    ("events", f"/runs/{answer.operation.run_id}/events"),
                ]
            )
            started = time.monotonic()
            try:
                async with session.get(self.served.url + path) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            self.answers.append((kind, status, time.monotonic() - started))


async def sample_rss(
    served: Served, stopping: asyncio.Event, samples: list[tuple[float, int]]
) -> None:
    started = time.monotonic()
    while not stopping.is_set():
        samples.append((time.monotonic() - started, served.rss_kib()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), RSS_EVERY_S)
    samples.append((time.monotonic() - started, served.rss_kib()))


def latency_ms(values: Sequence[float]) -> str:
    return (
        f"p50 {percentile(values, 0.5) * 1000:.1f} ms, p99 {percentile(values, 0.99) * 1000:.1f} "
        f"ms, max {max(values, default=0) * 1000:.1f} ms"
    )


def rss_growth(samples: Sequence[tuple[float, int]]) -> float:
    """Mean RSS of the last quarter over the mean of the second quarter (after warm-up)."""
    values = [kib for _, kib in samples]
    quarter = max(1, len(values) // 4)
    second = values[quarter : 2 * quarter] or values
    last = values[-quarter:]
    return (sum(last) / len(last)) / (sum(second) / len(second))


async def soak(dsn: str, workdir: Path, *, minutes: float, writers: int, readers: int) -> int:
    served = await asyncio.to_thread(Served, dsn, workdir, port=free_port())
    try:
        load = Load(base_url=lambda: served.url, plans=Plans(seed=8), concurrency=writers)
        queries = Queries(served, load, load.stopping)
        rss: list[tuple[float, int]] = []
        started = time.monotonic()
        tasks = [
            asyncio.create_task(load.run()),
            asyncio.create_task(queries.run(readers)),
            asyncio.create_task(sample_rss(served, load.stopping, rss)),
        ]
        deadline = started + minutes * 60
        while time.monotonic() < deadline and not any(t.done() for t in tasks):
            await asyncio.sleep(min(30.0, max(0.0, deadline - time.monotonic())))
            elapsed = time.monotonic() - started
            print(
                f"  {elapsed:6.0f} s: {len(load.answers)} commands, {len(queries.answers)} "
                f"queries, rss {served.rss_kib() // 1024} MiB",
                flush=True,
            )
        load.stopping.set()
        await asyncio.gather(*tasks)
        seconds = time.monotonic() - started
        head = await checkpoints_at_head(dsn, within_s=300)
        conn = await connect(dsn)
        try:
            problems, summary = await log_problems(conn, load.finals)
            problems += await projection_problems(conn)
            problems += await diagnostics_problems(conn)
        finally:
            await conn.close()
        checked = await asyncio.to_thread(check, dsn, workdir)
        unhandled = served.log_lines_with("unhandled error")
    finally:
        served.stop()
    command_latency = [a.latency_s for a in load.answers]
    by_kind = Counter(a.operation.kind for a in load.finals)
    query_latency = [latency for _, _, latency in queries.answers]
    growth = rss_growth(rss)
    print(f"\n[soak] {seconds / 60:.1f} minutes, {writers} writers, {readers} readers")
    print(f"  commands: {len(load.answers)} attempts, {dict(by_kind)} operations")
    print(f"  command statuses: {statuses(load.answers)}")
    print(f"  command throughput: {len(load.answers) / seconds:.0f} requests/s")
    print(f"  command latency: {latency_ms(command_latency)}")
    query_statuses = dict(sorted(Counter(s for _, s, _ in queries.answers).items()))
    print(f"  queries: {len(queries.answers)}, statuses {query_statuses}")
    print(f"  query throughput: {len(queries.answers) / seconds:.0f} requests/s")
    print(f"  query latency: {latency_ms(query_latency)}")
    print(f"  log: {summary}, head {head}")
    print("  serve RSS (s: MiB): " + ", ".join(f"{t:.0f}: {kib / 1024:.0f}" for t, kib in rss))
    print(f"  RSS last quarter / second quarter: {growth:.3f}")
    print(f"  check exit: {checked.returncode}; unhandled errors logged: {len(unhandled)}")
    failed = bool(problems) or checked.returncode != 0 or bool(unhandled)
    failed |= not {a.status for a in load.finals} <= {200, 201, 202}
    failed |= any(status >= 500 for _, status, _ in queries.answers)
    failed |= growth > 1.25
    for problem in problems[:50]:
        print(f"  PROBLEM: {problem}")
    print("  result: " + ("FAILED" if failed else "ok: nothing lost, duplicated or invented"))
    return 1 if failed else 0


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=16, help="concurrent command clients")
    parser.add_argument("--readers", type=int, default=4, help="concurrent query clients")
    args = parser.parse_args(argv)
    admin_dsn, embedded = await asyncio.to_thread(databases.find_server)
    template = await databases.create_template(admin_dsn)
    name = await databases.clone_database(admin_dsn, template)
    try:
        with tempfile.TemporaryDirectory(prefix="runledger-soak-") as workdir:
            return await soak(
                databases.with_database(admin_dsn, name), Path(workdir),
                minutes=args.minutes, writers=args.writers, readers=args.readers,
            )  # fmt: skip
    finally:
        await databases.drop_database(admin_dsn, name)
        await databases.drop_database(admin_dsn, template)
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

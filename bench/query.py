"""Query latency benchmark: the read endpoints over real HTTP, at 10,000 and at 200,000 runs.

For each size it takes the log bench/loggen.py writes (cached; the same 40 clients over the
same 90 days, only denser, so the number of runs is what changes), COPYs it into a database
cloned from a freshly migrated template, projects run_records, client_reports and
client_months with the projection itself (`projections.rebuild.rebuild`), starts
`runledger serve` on that database as a separate process, and sends sequential requests over
one keep-alive connection from this process:
  GET /runs?client_id=C                    the first page (100 runs) of the biggest client
  GET /runs?client_id=C&cursor=…           a page from the middle of that client's runs
  GET /reports/clients                     every client over all days
  GET /reports/daily?client_id=C           the biggest client, one row per day
It prints p50/p99/max latency (request sent → body read) per endpoint and size, and checks the
clients report against a recount from run_records.

    .venv/bin/python -m bench.query                    # 10,000 and 200,000 runs
    .venv/bin/python -m bench.query --requests 300

Targets (issue 5): p99 ≤ 20 ms at 200,000 runs, and ≤ 1.2 × the p99 at 10,000 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

from bench.append import background_load
from bench.common import ROOT, BenchServer, bench_server, machine_facts, percentile, print_table
from bench.loggen import LogSpec, ensure_log, load
from eventstore import EventStore, create_pool
from eventstore.pool import close_pool
from projections.rebuild import rebuild
from projections.registry import all_projections
from projections.run_queries import encode_cursor

TARGET_P99_MS = 20.0
TARGET_RATIO = 1.2
API_TOKEN = "bench-api-token-0123456789abcdef"  # noqa: S105 — a throw-away local server's
SIZES = {10_000: 50_000, 200_000: 1_000_000}  # runs → events (~5 events a run)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    runs: int
    endpoint: str
    latencies: list[float]

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000


async def project(dsn: str) -> float:
    """Build every read model from the log with the projections' own code; return seconds.

    All of them, not only run_records: the server then starts caught up, rather than replaying
    the log into the others while it is being measured.
    """
    pool = await create_pool(dsn, min_size=2, max_size=4)
    try:
        async with EventStore(pool) as store:
            started = time.perf_counter()
            for projection in all_projections():
                await rebuild(pool, store, projection)
            seconds = time.perf_counter() - started
        await pool.execute("ANALYZE")
    finally:
        await close_pool(pool)
    return seconds


async def targets(dsn: str) -> tuple[str, str, int]:
    """The biggest client, a cursor halfway through its runs, and how many runs it has."""
    conn = await asyncpg.connect(dsn)
    try:
        biggest = await conn.fetchrow(
            "SELECT client_id, count(*) FROM run_records GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        )
        assert biggest is not None
        client, count = biggest
        middle = await conn.fetchrow(
            "SELECT created_at, run_id FROM run_records WHERE client_id = $1"
            " ORDER BY created_at DESC, run_id DESC OFFSET $2 LIMIT 1",
            client,
            count // 2,
        )
    finally:
        await conn.close()
    assert middle is not None
    return client, encode_cursor(middle["created_at"], middle["run_id"]), count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_server(dsn: str, port: int, data_dir: str) -> asyncio.subprocess.Process:
    """`runledger serve` on `dsn`; returns once it announces its address."""
    env = {**os.environ, "DATABASE_URL": dsn, "RUNLEDGER_API_TOKEN": API_TOKEN}
    env["RUNLEDGER_WEBHOOK_TOKEN"] = "bench-webhook-secret-0123456789"  # noqa: S105
    server = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "runledger"), "serve", "--port", str(port),
        "--data-dir", data_dir, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert server.stdout is not None
    async with asyncio.timeout(60):
        while b"runledger is serving on" not in await server.stdout.readline():
            if server.returncode is not None:
                raise RuntimeError("runledger serve exited before serving")
    return server


async def time_endpoint(
    session: aiohttp.ClientSession, url: str, *, warmup: int, requests: int
) -> list[float]:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    latencies = []
    for n in range(warmup + requests):
        started = time.perf_counter()
        async with session.get(url, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {url} answered {response.status}")
        if n >= warmup:
            latencies.append(time.perf_counter() - started)
    return latencies


async def check_reports(session: aiohttp.ClientSession, base: str, dsn: str) -> list[str]:
    """The clients report against a recount of run_records: runs and runs by status."""
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with session.get(f"{base}/reports/clients", headers=headers) as response:
        items = (await response.json())["items"]
    served = {i["client_id"]: (i["runs"], i["runs_by_status"]) for i in items}
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT client_id, status, count(*) AS n FROM run_records GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    recount: dict[str, tuple[int, dict[str, int]]] = {}
    for row in rows:
        runs, by_status = recount.get(row["client_id"], (0, {}))
        recount[row["client_id"]] = (runs + row["n"], {**by_status, row["status"]: row["n"]})
    return [] if served == recount else ["/reports/clients differs from a recount of run_records"]


async def measure_size(
    server_dsn: BenchServer, runs: int, args: argparse.Namespace
) -> tuple[list[Timing], list[str]]:
    spec = LogSpec(events=SIZES[runs], runs=runs, seed=args.seed)
    log = ensure_log(spec)
    async with server_dsn.fresh_database() as dsn:
        loaded = await load(dsn, log)
        projected = await project(dsn)
        client, cursor, count = await targets(dsn)
        print(
            f"{log.runs:,} runs ({log.events:,} events): loaded in {loaded:.0f} s, projected in"
            f" {projected:.0f} s; biggest client {client} with {count:,} runs",
            flush=True,
        )
        port = free_port()
        with tempfile.TemporaryDirectory() as data_dir:
            server = await start_server(dsn, port, data_dir)
            try:
                base = f"http://127.0.0.1:{port}"
                endpoints = {
                    "GET /runs?client_id= (first page)": f"/runs?client_id={client}",
                    "GET /runs?client_id= (deep cursor)": (
                        f"/runs?client_id={client}&cursor={cursor}"
                    ),
                    "GET /reports/clients": "/reports/clients",
                    "GET /reports/daily?client_id=": f"/reports/daily?client_id={client}",
                }  # fmt: skip
                timings = []
                async with aiohttp.ClientSession() as session:
                    for name, path in endpoints.items():
                        latencies = await time_endpoint(
                            session, base + path, warmup=args.warmup, requests=args.requests
                        )
                        timings.append(Timing(runs=log.runs, endpoint=name, latencies=latencies))
                    problems = await check_reports(session, base, dsn)
            finally:
                server.terminate()
                await server.wait()
    return timings, problems


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests", type=int, default=1000, help="measured requests per endpoint")
    p.add_argument("--warmup", type=int, default=50, help="unmeasured requests first")
    p.add_argument("--sizes", default="10000,200000", help="runs: 10000 and/or 200000")
    p.add_argument("--seed", type=int, default=LogSpec().seed)
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    facts = await machine_facts()
    busy = await background_load()
    print("query latency benchmark —", time.strftime("%Y-%m-%d %H:%M %Z"))
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(f"machine busy before the run (1 s sample): {busy:.0%}")
    print("command:", " ".join([Path(sys.executable).name, "-m", "bench.query", *sys.argv[1:]]))
    print(f"{args.requests} sequential requests per endpoint after {args.warmup} of warm-up")
    timings: list[Timing] = []
    problems: list[str] = []
    async with bench_server() as server:
        for runs in (int(size) for size in args.sizes.split(",")):
            found, wrong = await measure_size(server, runs, args)
            timings += found
            problems += wrong
    print()
    rows = [[t.endpoint, t.runs, t.p50_ms, t.p99_ms, max(t.latencies) * 1000] for t in timings]
    print_table(["endpoint", "runs", "p50 ms", "p99 ms", "max ms"], rows)
    print()
    for problem in problems:
        print("CHECK FAILED:", problem)
    if not problems:
        print("check: /reports/clients equals a recount of run_records (runs, runs by status)")
    verdict(timings)
    return 1 if problems else 0


def verdict(timings: list[Timing]) -> None:
    sizes = sorted({t.runs for t in timings})
    big = [t for t in timings if t.runs == sizes[-1]]
    small = {t.endpoint: t for t in timings if t.runs == sizes[0]}
    print(
        f"target: p99 ≤ {TARGET_P99_MS:.0f} ms at {sizes[-1]:,} runs and ≤ {TARGET_RATIO}× "
        f"the p99 at {sizes[0]:,} runs"
    )
    for t in big:
        ratio = t.p99_ms / small[t.endpoint].p99_ms if len(sizes) > 1 else float("nan")
        met = t.p99_ms <= TARGET_P99_MS and (len(sizes) == 1 or ratio <= TARGET_RATIO)
        print(
            f"  {t.endpoint}: p99 {t.p99_ms:.1f} ms, {ratio:.2f}× → {'MET' if met else 'NOT MET'}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (OSError, RuntimeError, asyncpg.PostgresError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

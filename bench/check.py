"""How fast `runledger check` replays the whole log and compares it with the projections.

From a log of 1,000,000 events for about 200,000 runs written by the real state machine
(bench/loggen.py: realistic deliveries, orphans, resurrections, results; cached under
bench/.cache/) COPYed into a fresh database, it rebuilds every projection (so that they agree
with the log), then measures, in a child process so that the peak RSS is its own:
  check   `projections.check.check` as the CLI calls it: read_all pages, decode and fold every
          run-stream event, compare every run_records row, orphan streams vs missing_records;
and then runs the real command, `runledger check --json`, twice: on the consistent database
(expect exit 0) and after corrupting one run_records row by hand (expect exit 1, that run).

    .venv/bin/python -m bench.check                          # 1,000,000 events, ~200,000 runs
    .venv/bin/python -m bench.check --events 50000 --runs 10000

Target (issue 6): 1,000,000 events checked in under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, bench_server, machine_facts, print_table, run_json_subprocess
from bench.loggen import LogSpec, ensure_log, load
from eventstore import EventStore, create_pool
from eventstore.pool import close_pool
from projections.check import check
from projections.rebuild import rebuild
from projections.registry import all_projections

TARGET_S = 60.0


async def measure(dsn: str) -> dict[str, Any]:
    pool = await create_pool(dsn, min_size=2, max_size=3)
    try:
        async with EventStore(pool) as store:
            baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            cpu0, wall0 = time.process_time(), time.perf_counter()
            result = await check(pool, store, pause_gc=True)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        await close_pool(pool)
    return {
        "events": result.events_read,
        "runs": result.runs_checked,
        "differences": len(result.differences),
        "notes": list(result.notes),
        "seconds": wall,
        "cpu_s": cpu,
        "baseline_mb": baseline / 1024,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


async def project(dsn: str) -> float:
    started = time.perf_counter()
    pool = await create_pool(dsn, min_size=2, max_size=4)
    try:
        async with EventStore(pool) as store:
            for projection in all_projections():
                await rebuild(pool, store, projection)
    finally:
        await close_pool(pool)
    return time.perf_counter() - started


def run_cli(dsn: str) -> tuple[int, float, dict[str, Any]]:
    """`runledger check --json`: exit code, wall seconds (process start included), result."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "runledger"), "check", "--json", "--database-url", dsn],
        capture_output=True, text=True, timeout=3600, check=False, cwd=ROOT,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"runledger check failed: {done.stderr.strip()[-500:]}")
    body: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, seconds, body


async def corrupt_one_row(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        run_id: str = await conn.fetchval(
            "UPDATE run_records SET status = 'failed' WHERE run_id ="
            " (SELECT run_id FROM run_records WHERE status = 'succeeded' LIMIT 1) RETURNING run_id"
        )
    finally:
        await conn.close()
    return run_id


async def run(args: argparse.Namespace) -> int:
    facts = await machine_facts()
    print("consistency check benchmark —", time.strftime("%Y-%m-%d %H:%M %Z"))
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items()))
    print("command:", " ".join([Path(sys.executable).name, "-m", "bench.check", *sys.argv[1:]]))
    spec = LogSpec(events=args.events, runs=args.runs)
    log = ensure_log(spec)
    how = "from the cache" if log.cached else f"generated in {log.seconds:.0f} s"
    print(f"log: {log.events:,} events, {log.runs:,} runs ({how})")
    async with bench_server() as server, server.fresh_database() as dsn:
        print(f"loaded by COPY + VACUUM ANALYZE in {await load(dsn, log):.1f} s", flush=True)
        print(f"every projection rebuilt in {await project(dsn):.1f} s", flush=True)
        out = run_json_subprocess([sys.executable, "-m", "bench.check", "--dsn", dsn], timeout=3600)
        figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        clean = run_cli(dsn)
        corrupted = await corrupt_one_row(dsn)
        drift = run_cli(dsn)
    print()
    rate = figures["events"] / figures["seconds"]
    print_table(
        ["phase", "events", "runs", "differences", "seconds", "events/s", "CPU/wall",
         "ru_maxrss MB"],
        [["check()", figures["events"], figures["runs"], figures["differences"],
          figures["seconds"], rate, f"{figures['cpu_s'] / figures['seconds']:.2f}",
          figures["maxrss_mb"]]],
    )  # fmt: skip
    for note in figures["notes"]:
        print("note:", note)
    print()
    print(f"`runledger check --json`, consistent: exit {clean[0]}, {clean[1]:.1f} s wall")
    found = [(d["run_id"], d["field"]) for d in drift[2]["differences"]]
    print(
        f"after corrupting run {corrupted}: exit {drift[0]}, {drift[1]:.1f} s wall, found {found}"
    )
    ok = clean[0] == 0 and drift[0] == 1 and found == [(corrupted, "status")]
    total = figures["seconds"]
    met = total < TARGET_S * figures["events"] / 1_000_000
    print(
        f"target: 1,000,000 events in under {TARGET_S:.0f} s: {figures['events']:,} events in "
        f"{total:.1f} s ({rate:,.0f} events/s) → {'MET' if met else 'NOT MET'}"
        + ("" if figures["events"] >= 1_000_000 else " (pro rata)")
    )
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = LogSpec()
    p.add_argument("--events", type=int, default=default.events, help="events in the log")
    p.add_argument("--runs", type=int, default=default.runs, help="about this many runs")
    p.add_argument("--dsn", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.dsn:
            print(json.dumps(asyncio.run(measure(args.dsn))))
            return 0
        return asyncio.run(run(args))
    except (OSError, RuntimeError, asyncpg.PostgresError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

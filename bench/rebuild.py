"""Projection rebuild benchmark: `rebuild` of run_records (+ client_reports) beside a bare read.

From a log of 1,000,000 events for about 200,000 runs, written by the real state machine with
realistic deliveries (bench/loggen.py; cached under bench/.cache/, so reruns skip generating
it) and COPYed into a database cloned from a freshly migrated template, it measures, each in a
fresh child process so that its peak RSS is its own:
  read      the rate at which the log is merely read and decoded: `EventStore.read_all` pages
            and `statemachine.decode` of every run-stream event (what the projection decodes);
  rebuild   `projections.rebuild.rebuild` of run_records, which keeps client_reports too:
            read, decode, fold, write into fresh tables, swap.
and prints events/s, peak RSS (ru_maxrss, and RSS sampled every 100 ms), CPU, the ratio
rebuild ÷ read, and checks the rebuilt tables against a replay of sampled runs.

    .venv/bin/python -m bench.rebuild                        # 1,000,000 events, ~200,000 runs
    .venv/bin/python -m bench.rebuild --events 50000 --runs 10000

Targets (issue 5): rebuild ≥ 30,000 events/s and peak RSS ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg

from bench.append import Meter, background_load
from bench.common import bench_server, machine_facts, print_table, run_json_subprocess
from bench.loggen import LogSpec, ensure_log, load
from eventstore import EventStore, create_pool
from eventstore.pool import close_pool
from projections.rebuild import REBUILD_PAGE, rebuild
from projections.run_queries import record_json
from projections.run_records import RUN_STREAM_PREFIX, RunRecordsProjection
from statemachine import decode, replay

TARGET_RATE = 30_000.0
TARGET_RSS_MB = 300.0
SAMPLED_RUNS = 500


class RssSampler:
    """The peak resident set size of this process, read from /proc every `every` seconds."""

    def __init__(self, every: float = 0.1) -> None:
        self._every = every
        self._stop = threading.Event()
        self.peak_kb = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, rss_kb())
            if self._stop.wait(self._every):
                return


def rss_kb() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() // 1024


# --- the measurements, each run in a child process --------------------------------------------


async def _read_and_decode(store: EventStore, page_size: int) -> int:
    count, position = 0, 0
    while page := await store.read_all(after_position=position, limit=page_size):
        for event in page:
            if event.stream_id.startswith(RUN_STREAM_PREFIX):
                decode(event.event_id, event.type, event.data)
        position, count = page[-1].position, count + len(page)
    return count


async def measure(what: str, dsn: str, page_size: int) -> dict[str, Any]:
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        async with EventStore(pool) as store:
            baseline_kb = rss_kb()
            with RssSampler() as sampler, Meter() as meter:
                if what == "read":
                    events = await _read_and_decode(store, page_size)
                else:
                    result = await rebuild(pool, store, RunRecordsProjection(), page_size=page_size)
                    events = result.events
    finally:
        await close_pool(pool)
    return {
        "what": what,
        "events": events,
        "seconds": meter.seconds,
        "cpu_s": meter.client_cpu,
        "machine_busy": meter.machine_busy,
        "baseline_mb": baseline_kb / 1024,
        "sampled_peak_mb": sampler.peak_kb / 1024,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(what: str, dsn: str, page_size: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.rebuild", "--measure", what, "--dsn", dsn]
    out = run_json_subprocess([*argv, "--page-size", str(page_size)], timeout=3600)
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


# --- checking what was rebuilt ----------------------------------------------------------------


async def verify(dsn: str, runs_created: int, *, seed: int = 3) -> list[str]:
    """Problems found: counts, client_reports against run_records, sampled runs vs replay."""
    problems: list[str] = []
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        records = await pool.fetchval("SELECT count(*) FROM run_records")
        reported = await pool.fetchval("SELECT coalesce(sum(runs), 0) FROM client_reports")
        if records != runs_created:
            problems.append(f"run_records has {records} rows, the log created {runs_created} runs")
        if reported != records:
            problems.append(f"client_reports counts {reported} runs, run_records {records}")
        ids = [r[0] for r in await pool.fetch("SELECT run_id FROM run_records ORDER BY run_id")]
        async with EventStore(pool) as store:
            for run_id in random.Random(seed).sample(ids, min(SAMPLED_RUNS, len(ids))):
                stream = await store.read_stream(f"run-{run_id}")
                state = replay(decode(e.event_id, e.type, e.data) for e in stream)
                assert state is not None
                expected = {**state.to_record(), "version": stream[-1].version}
                row = await pool.fetchrow("SELECT * FROM run_records WHERE run_id = $1", run_id)
                if row is None or record_json(row) != expected:
                    problems.append(f"run {run_id}: the rebuilt record differs from its replay")
    finally:
        await close_pool(pool)
    return problems


# --- the run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = LogSpec()
    p.add_argument("--events", type=int, default=default.events, help="events in the log")
    p.add_argument("--runs", type=int, default=default.runs, help="about this many runs")
    p.add_argument("--clients", type=int, default=default.clients)
    p.add_argument("--days", type=int, default=default.days, help="the span of the kickoffs")
    p.add_argument("--seed", type=int, default=default.seed)
    p.add_argument("--page-size", type=int, default=REBUILD_PAGE, help="events per read page")
    p.add_argument("--skip-read", action="store_true", help="measure the rebuild only")
    p.add_argument("--measure", choices=("read", "rebuild"), help=argparse.SUPPRESS)
    p.add_argument("--dsn", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def spec_of(args: argparse.Namespace) -> LogSpec:
    return LogSpec(
        events=args.events, runs=args.runs, clients=args.clients, days=args.days, seed=args.seed
    )


async def run(args: argparse.Namespace) -> int:
    facts = await machine_facts()
    busy = await background_load()
    print("projection rebuild benchmark —", time.strftime("%Y-%m-%d %H:%M %Z"))
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(f"machine busy before the run (1 s sample): {busy:.0%}")
    print("command:", " ".join([Path(sys.executable).name, "-m", "bench.rebuild", *sys.argv[1:]]))
    log = ensure_log(spec_of(args))
    how = "from the cache" if log.cached else f"generated in {log.seconds:.0f} s"
    size = log.path.stat().st_size / 1e6
    print(f"log: {log.events:,} events, {log.runs:,} runs, {size:,.0f} MB of COPY text ({how})")
    async with bench_server() as server, server.fresh_database() as dsn:
        print(f"loaded by COPY + VACUUM ANALYZE in {await load(dsn, log):.1f} s", flush=True)
        results = [] if args.skip_read else [run_child("read", dsn, args.page_size)]
        results.append(run_child("rebuild", dsn, args.page_size))
        problems = await verify(dsn, log.runs)
    print()
    report(results, args.page_size)
    print()
    for problem in problems[:10]:
        print("CHECK FAILED:", problem)
    if not problems:
        print(f"check: counts agree; {SAMPLED_RUNS} sampled runs equal their replay")
    return verdict(results) if not problems else 1


def report(results: list[dict[str, Any]], page_size: int) -> None:
    labels = {
        "read": f"read_all ({page_size:,}/page) + decode",
        "rebuild": "rebuild run_records + client_reports",
    }
    rows = [
        [
            labels[r["what"]], r["events"], r["seconds"], r["events"] / r["seconds"],
            r["cpu_s"] / r["seconds"], f"{r['machine_busy']:.0%}", r["baseline_mb"],
            r["sampled_peak_mb"], r["maxrss_mb"],
        ]
        for r in results
    ]  # fmt: skip
    headers = [
        "phase", "events", "seconds", "events/s", "client CPU/wall", "CPU busy",
        "RSS at start MB", "RSS peak (sampled) MB", "ru_maxrss MB",
    ]  # fmt: skip
    print_table(headers, rows)


def verdict(results: list[dict[str, Any]]) -> int:
    by = {r["what"]: r for r in results}
    rebuilt = by["rebuild"]
    rate = rebuilt["events"] / rebuilt["seconds"]
    peak = max(rebuilt["maxrss_mb"], rebuilt["sampled_peak_mb"])
    if "read" in by:
        read_rate = by["read"]["events"] / by["read"]["seconds"]
        print(f"rebuild ÷ read+decode: {rate / read_rate:.2f}")
    met = rate >= TARGET_RATE and peak <= TARGET_RSS_MB
    print(
        f"target: ≥ {TARGET_RATE:,.0f} events/s and peak RSS ≤ {TARGET_RSS_MB:.0f} MB: "
        f"{rate:,.0f} events/s, {peak:.0f} MB → {'MET' if met else 'NOT MET'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.measure:
            figures = asyncio.run(measure(args.measure, args.dsn, args.page_size))
            print(json.dumps(figures))
            return 0
        return asyncio.run(run(args))
    except (OSError, RuntimeError, asyncpg.PostgresError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""How long replaying one run takes: reading its two streams, and folding them into a timeline.

For runs of 10, 100 and 1000 events (each begins with one orphan rejection, then a kickoff and
cycles of Apify deliveries from the shared fixtures — applied, stale and invalid ones — with
resurrections and results reports, all decided by `statemachine.decide`), written into a fresh
database by COPY, it replays each run many times, round robin, as `runledger replay` and
`GET /runs/{id}/timeline` do, and prints p50/p99 milliseconds of:
  read    `EventStore.read_streams([run-<id>, orphan-<id>])` (the pool, the query, jsonb decoding)
  fold    `projections.timeline.build_timeline`: decode, `evolve`, the steps and their changes
  total   read + fold
  json    `orjson.dumps(timeline.to_json())`, what the endpoint adds on top

    .venv/bin/python -m bench.replay [--runs 20] [--rounds 20]

Target (issue 6): a run of 100 events replays (read + fold) in ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_server, machine_facts, percentile, print_table
from eventstore import EventStore, connect, create_pool
from eventstore.pool import close_pool
from projections.timeline import build_timeline
from statemachine import Command, Event, decide, encode, orphan_stream, run_stream, stream_for
from tests.builders import kickoff, record_results, webhook

SIZES = (10, 100, 1000)
TARGET_MS = 5.0
START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
_COLUMNS = ["stream_id", "version", "event_id", "event_type", "data", "recorded_at"]


def commands(run_id: str) -> Iterator[Command]:
    """An orphan, the kickoff, then generation after generation of deliveries and results."""
    yield webhook("run-created", run_id=run_id)  # before the kickoff: an orphan rejection
    yield kickoff(run_id=run_id)
    generation = 0
    while True:
        gen = generation or None  # the fixtures are of generation 0
        yield webhook("run-created", run_id=run_id, resurrect_count=gen)  # stale after gen 0
        yield webhook("run-succeeded", run_id=run_id, resurrect_count=gen)
        late = f"late-{run_id}-{generation}"
        yield webhook("run-created", run_id=run_id, dispatch_id=late, resurrect_count=gen)
        yield webhook("run-failed", run_id=run_id, resurrect_count=gen)  # invalid_transition
        yield record_results(run_id=run_id, request_key=f"results-{generation}")
        generation += 1
        yield webhook("run-resurrected", run_id=run_id, resurrect_count=generation)


def history(run_id: str, size: int) -> list[tuple[str, int, Event]]:
    """Exactly `size` events: (stream, version, event), in the order they were decided."""
    run: list[Event] = []
    out: list[tuple[str, int, Event]] = []
    orphans = 0
    for step, command in enumerate(commands(run_id)):
        for event in decide(run, command, now=START + timedelta(seconds=step)):
            if stream_for(event) == run_stream(run_id):
                run.append(event)
                out.append((run_stream(run_id), len(run), event))
            else:
                orphans += 1
                out.append((orphan_stream(run_id), orphans, event))
        if len(out) == size:
            return out
    raise AssertionError("unreachable")


async def write_runs(dsn: str, runs: int) -> dict[int, list[str]]:
    """`runs` runs of each size, COPYed in; the run ids by size."""
    conn = await connect(dsn)
    ids: dict[int, list[str]] = {}
    try:
        for size in SIZES:
            ids[size] = [f"bench-{size}-{n}" for n in range(runs)]
            records = [
                (stream, version, event.event_id, *encode(event), event.at)
                for run_id in ids[size]
                for stream, version, event in history(run_id, size)
            ]
            await conn.copy_records_to_table("events", records=records, columns=_COLUMNS)
        await conn.execute("VACUUM (ANALYZE) events")
    finally:
        await conn.close()
    return ids


async def measure(store: EventStore, run_ids: Sequence[str], rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each stage, for `rounds` passes over the runs (after one warm-up pass)."""
    times: dict[str, list[float]] = {"read": [], "fold": [], "total": [], "json": []}
    for round_ in range(rounds + 1):
        for run_id in run_ids:
            t0 = time.perf_counter()
            recorded = await store.read_streams([run_stream(run_id), orphan_stream(run_id)])
            t1 = time.perf_counter()
            timeline = build_timeline(run_id, recorded)
            t2 = time.perf_counter()
            orjson.dumps(timeline.to_json())
            t3 = time.perf_counter()
            if round_ == 0:
                continue  # warm-up: the first read of each run also loads its pages
            times["read"].append((t1 - t0) * 1e3)
            times["fold"].append((t2 - t1) * 1e3)
            times["total"].append((t2 - t0) * 1e3)
            times["json"].append((t3 - t2) * 1e3)
    return times


async def run(args: argparse.Namespace) -> int:
    facts = await machine_facts()
    print("replay benchmark —", time.strftime("%Y-%m-%d %H:%M %Z"))
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items()))
    print("command:", " ".join([Path(sys.executable).name, "-m", "bench.replay", *sys.argv[1:]]))
    rows, verdict = [], 0
    async with bench_server() as server, server.fresh_database() as dsn:
        ids = await write_runs(dsn, args.runs)
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            async with EventStore(pool) as store:
                for size in SIZES:
                    times = await measure(store, ids[size], args.rounds)
                    row: list[object] = [f"{size:,} events", len(times["total"])]
                    for stage in ("read", "fold", "total", "json"):
                        row += [statistics.median(times[stage]), percentile(times[stage], 99)]
                    rows.append(row)
                    if size == 100:
                        verdict = 0 if percentile(times["total"], 99) <= TARGET_MS else 1
                        p50, p99 = statistics.median(times["total"]), percentile(times["total"], 99)
        finally:
            await close_pool(pool)
    print()
    headers = ["run", "replays"]
    for stage in ("read", "fold", "read+fold", "json"):
        headers += [f"{stage} p50 ms", f"{stage} p99 ms"]
    print_table(headers, [[r[0], r[1], *(f"{v:.3f}" for v in r[2:])] for r in rows])
    print()
    print(
        f"target: a run of 100 events replays (read + fold) in ≤ {TARGET_MS:.0f} ms: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms → {'MET' if verdict == 0 else 'NOT MET'} (p99)"
    )
    return verdict


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=20, help="runs of each size")
    p.add_argument("--rounds", type=int, default=20, help="replays of each run, after a warm-up")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(run(parse_args(argv)))
    except (OSError, asyncpg.PostgresError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

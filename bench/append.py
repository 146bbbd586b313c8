"""Event store append benchmark: the store against the machine's ceiling and the Python peer.

One run prints, side by side, for events of ~1.7 KB of JSON shaped like an Apify delivery:
  store      EventStore.append of one event per call from 1, 16, 64 concurrent callers (asyncio
             tasks over one EventStore), to new streams (NO_STREAM), to existing streams with
             ANY, and to existing streams with the exact version; p50/p99 latency per append.
  ceiling    the same rows into an identical events table: asyncpg executemany of 1,000 rows
             per transaction, and COPY (copy_records_to_table) of 1,000 rows per call.
  naive      one INSERT per transaction from 16 connections.
  peer       the `eventsourcing` library (9.5, PostgreSQL persistence) saving the same
             deliveries, run in the benchmark venv made by bench/setup_peer.sh.
Every scenario runs in its own database cloned from a freshly migrated template (sql/), on the
local server (or BENCH_DATABASE_URL), and is bounded by a duration and a count.

    .venv/bin/python -m bench.append            # defaults: about 2 minutes on 2 cores
    .venv/bin/python -m bench.append --duration 2 --callers 1,64 --skip peer
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import math
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import (
    ROOT,
    BenchServer,
    bench_server,
    machine_facts,
    percentile,
    print_table,
    run_json_subprocess,
)
from eventstore import ANY, NO_STREAM, EventStore, ExpectedVersion, NewEvent, connect, create_pool

FIXTURE = ROOT.parent / "shared" / "fixtures" / "apify" / "run-succeeded.json"
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
PEER_SCRIPT = ROOT / "bench" / "peer_eventsourcing.py"

EVENT_TYPE = "ApifyWebhookReceived"
COLUMNS = ["stream_id", "version", "event_id", "event_type", "data", "metadata"]
INSERT_ROW = (
    "INSERT INTO events (stream_id, version, event_id, event_type, data, metadata) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)
KINDS = {
    "new": "store, new streams (NO_STREAM)",
    "any": "store, existing streams (ANY)",
    "exact": "store, existing streams (exact version)",
}
TARGET_RATIO = 0.60
TARGET_P99_MS = 50.0

Row = tuple[str, int, uuid.UUID, str, dict[str, Any], dict[str, Any]]


# --- the events -------------------------------------------------------------------------------


def _apify_id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(rng.choices(alphabet, k=17))


def apify_deliveries(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """`count` distinct deliveries: the fixture's body with fresh run, dataset and store ids."""
    body = json.loads(FIXTURE.read_text(encoding="utf-8"))["body"]
    rng = random.Random(seed)
    deliveries = []
    for i in range(count):
        d = copy.deepcopy(body)
        run_id, dataset_id, store_id = _apify_id(rng), _apify_id(rng), _apify_id(rng)
        d["createdAt"] = f"2026-03-14T09:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"
        d["eventData"]["actorRunId"] = run_id
        resource = d["resource"]
        resource["id"] = run_id
        resource["defaultDatasetId"] = dataset_id
        resource["defaultKeyValueStoreId"] = store_id
        resource["storageIds"]["datasets"]["default"] = dataset_id
        resource["storageIds"]["keyValueStores"]["default"] = store_id
        resource["stats"]["durationMillis"] = rng.randrange(1_000, 3_600_000)
        deliveries.append(d)
    return deliveries


def metadata_for(n: int) -> dict[str, Any]:
    return {"source": "apify", "dispatch_id": f"aD1spTch{n:09d}"}


# --- results ------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Result:
    name: str
    callers: int
    events: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per append
    client_cpu: float = 0.0  # CPU seconds of this process during the measurement
    machine_busy: float = math.nan  # share of all cores busy during the measurement
    batches: int = 0  # group-commit transactions (store scenarios)
    p50_ms: float = math.nan
    p99_ms: float = math.nan

    def __post_init__(self) -> None:
        if self.latencies:
            self.p50_ms = percentile(self.latencies, 50) * 1000
            self.p99_ms = percentile(self.latencies, 99) * 1000

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else math.nan


class Meter:
    """Wall time, this process's CPU time, and the whole machine's busy share (/proc/stat)."""

    def __enter__(self) -> Meter:
        self._busy0, self._total0 = _cpu_ticks()
        self._cpu0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.client_cpu = time.process_time() - self._cpu0
        busy, total = _cpu_ticks()
        self.machine_busy = (
            (busy - self._busy0) / (total - self._total0) if total > self._total0 else math.nan
        )


async def background_load(seconds: float = 1.0) -> float:
    """Share of all cores busy while this program sleeps: others' load skews the figures."""
    busy0, total0 = _cpu_ticks()
    await asyncio.sleep(seconds)
    busy, total = _cpu_ticks()
    return (busy - busy0) / (total - total0) if total > total0 else math.nan


def _cpu_ticks() -> tuple[int, int]:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


# --- the store -----------------------------------------------------------------------------


async def seed_streams(
    dsn: str, streams: Sequence[str], deliveries: Sequence[dict[str, Any]]
) -> None:
    """One event in each of `streams` (version 1), written with COPY, not measured."""
    conn = await connect(dsn)
    try:
        rows = [
            (s, 1, uuid.uuid4(), EVENT_TYPE, deliveries[i % len(deliveries)], metadata_for(i))
            for i, s in enumerate(streams)
        ]
        await conn.copy_records_to_table("events", records=rows, columns=COLUMNS)
        await conn.execute("ANALYZE events")
    finally:
        await conn.close()


async def store_scenario(
    server: BenchServer,
    kind: str,
    callers: int,
    args: argparse.Namespace,
    deliveries: list[dict[str, Any]],
) -> Result:
    async with server.fresh_database() as dsn:
        streams = [f"run-existing-{i:06d}" for i in range(max(args.streams, callers))]
        if kind != "new":
            await seed_streams(dsn, streams, deliveries)
        pool = await create_pool(dsn, min_size=args.pool, max_size=args.pool)
        try:
            async with EventStore(pool, writers=args.writers) as store:
                # Each caller owns the streams i, i + callers, …: exact versions never conflict.
                versions = dict.fromkeys(streams, 1)
                owned = [streams[i::callers] for i in range(callers)]
                counter = [0]

                def target(caller: int, n: int, rng: random.Random) -> tuple[str, ExpectedVersion]:
                    if kind == "new":
                        return f"run-{uuid.uuid4().hex}", NO_STREAM
                    if kind == "any":
                        return streams[rng.randrange(len(streams))], ANY
                    stream = owned[caller][n % len(owned[caller])]
                    return stream, versions[stream]

                async def append(caller: int, n: int, rng: random.Random) -> None:
                    stream, expected = target(caller, n, rng)
                    counter[0] += 1
                    event = NewEvent(
                        event_id=uuid.uuid4(),
                        type=EVENT_TYPE,
                        data=deliveries[counter[0] % len(deliveries)],
                        metadata=metadata_for(counter[0]),
                    )
                    result = await store.append(stream, [event], expected_version=expected)
                    if kind == "exact":
                        versions[stream] = result.last_version

                await run_callers(append, callers, args.warmup, args.max_per_caller)
                batches_before = store.batches_written
                result = await run_callers(append, callers, args.duration, args.max_per_caller)
                result.name = KINDS[kind]
                result.batches = store.batches_written - batches_before
                return result
        finally:
            await pool.close()


async def run_callers(
    append: Callable[[int, int, random.Random], Awaitable[None]],
    callers: int,
    duration: float,
    max_per_caller: int,
) -> Result:
    """`callers` tasks append one event per call until the deadline or their cap."""
    latencies: list[list[float]] = [[] for _ in range(callers)]
    deadline = time.perf_counter() + duration

    async def caller(index: int) -> None:
        rng = random.Random(index)
        mine = latencies[index]
        for n in range(max_per_caller):
            begun = time.perf_counter()
            if begun >= deadline:
                return
            await append(index, n, rng)
            mine.append(time.perf_counter() - begun)

    with Meter() as meter:
        async with asyncio.TaskGroup() as group:
            for i in range(callers):
                group.create_task(caller(i))
    flat = [x for mine in latencies for x in mine]
    return Result(
        name="",
        callers=callers,
        events=len(flat),
        seconds=meter.seconds,
        latencies=flat,
        client_cpu=meter.client_cpu,
        machine_busy=meter.machine_busy,
    )


# --- the ceiling and the naive baseline ----------------------------------------------------------


def ceiling_rows(count: int, deliveries: Sequence[dict[str, Any]], prefix: str) -> list[Row]:
    return [
        (
            f"{prefix}-{i:08d}",
            1,
            uuid.uuid4(),
            EVENT_TYPE,
            deliveries[i % len(deliveries)],
            metadata_for(i),
        )
        for i in range(count)
    ]


async def ceiling_scenario(
    server: BenchServer, how: str, args: argparse.Namespace, deliveries: list[dict[str, Any]]
) -> Result:
    """One connection writes `--ceiling-rows` rows, `--rows-per-tx` per transaction."""
    async with server.fresh_database() as dsn:
        conn = await connect(dsn)  # the store's own codecs: jsonb through orjson, binary
        try:
            per_tx = args.rows_per_tx
            warm = ceiling_rows(per_tx, deliveries, "warm")
            rows = ceiling_rows(args.ceiling_rows, deliveries, how)
            chunks = [rows[i : i + per_tx] for i in range(0, len(rows), per_tx)]

            async def write(chunk: list[Row]) -> None:
                if how == "copy":
                    await conn.copy_records_to_table("events", records=chunk, columns=COLUMNS)
                else:
                    async with conn.transaction():
                        await conn.executemany(INSERT_ROW, chunk)

            await write(warm)
            with Meter() as meter:
                for chunk in chunks:
                    await write(chunk)
        finally:
            await conn.close()
    label = {
        "executemany": f"ceiling: executemany, {per_tx:,} rows/tx",
        "copy": f"ceiling: COPY, {per_tx:,} rows/call",
    }[how]
    return Result(
        name=label,
        callers=1,
        events=len(rows),
        seconds=meter.seconds,
        client_cpu=meter.client_cpu,
        machine_busy=meter.machine_busy,
    )


async def naive_scenario(
    server: BenchServer, args: argparse.Namespace, deliveries: list[dict[str, Any]]
) -> Result:
    """`--naive-connections` connections, each one INSERT per (autocommit) transaction."""
    async with server.fresh_database() as dsn:
        conns = [await connect(dsn) for _ in range(args.naive_connections)]
        try:
            counter = [0]

            async def append(caller: int, n: int, rng: random.Random) -> None:
                counter[0] += 1
                i = counter[0]
                await conns[caller].execute(
                    INSERT_ROW,
                    f"naive-{caller}-{n}-{uuid.uuid4().hex[:8]}",
                    1,
                    uuid.uuid4(),
                    EVENT_TYPE,
                    deliveries[i % len(deliveries)],
                    metadata_for(i),
                )

            await run_callers(append, len(conns), args.warmup, args.max_per_caller)
            result = await run_callers(append, len(conns), args.duration, args.max_per_caller)
        finally:
            for conn in conns:
                await conn.close()
    result.name = "naive: 1 INSERT per transaction"
    return result


# --- the Python peer -------------------------------------------------------------------------


async def peer_scenarios(server: BenchServer, args: argparse.Namespace) -> list[Result] | str:
    """Figures from bench/peer_eventsourcing.py run in the benchmark venv, or why there are none."""
    if not PEER_PYTHON.exists():
        return "peer: not installed (run bench/setup_peer.sh)"
    async with server.fresh_database() as dsn:
        argv = [
            str(PEER_PYTHON),
            str(PEER_SCRIPT),
            "--dsn",
            dsn,
            "--fixture",
            str(FIXTURE),
            "--callers",
            args.peer_callers,
            "--modes",
            args.peer_modes,
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
            "--max-per-caller",
            str(args.max_per_caller),
        ]
        budget = 60 + 4 * (args.duration + args.warmup) * len(args.peer_callers.split(","))
        try:
            out = await asyncio.to_thread(run_json_subprocess, argv, timeout=budget)
        except (RuntimeError, OSError) as err:
            return f"peer: failed ({err})"
    results = []
    for figures in json.loads(out.strip().splitlines()[-1]):
        result = Result(
            name=f"peer: eventsourcing {figures['mode']}",
            callers=int(figures["callers"]),
            events=int(figures["events"]),
            seconds=float(figures["seconds"]),
        )
        result.p50_ms = float(figures["p50_ms"])
        result.p99_ms = float(figures["p99_ms"])
        results.append(result)
    return results


# --- the run -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=4.0, help="seconds measured per scenario")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per scenario")
    p.add_argument("--callers", default="1,16,64", help="concurrent callers of the store")
    p.add_argument("--kinds", default="new,any,exact", help="store scenarios: new,any,exact")
    p.add_argument("--pool", type=int, default=16, help="connections in the store's pool")
    p.add_argument("--writers", type=int, default=2, help="the store's batches in flight")
    p.add_argument("--streams", type=int, default=1000, help="existing streams (any/exact)")
    p.add_argument("--ceiling-rows", type=int, default=30_000, help="rows per ceiling run")
    p.add_argument("--rows-per-tx", type=int, default=1000, help="rows per ceiling transaction")
    p.add_argument("--naive-connections", type=int, default=16)
    p.add_argument("--peer-callers", default="1,16,64", help="threads of the eventsourcing peer")
    p.add_argument("--peer-modes", default="recorder,application")
    p.add_argument("--max-per-caller", type=int, default=200_000, help="cap per caller")
    p.add_argument("--deliveries", type=int, default=2000, help="distinct payloads to cycle")
    p.add_argument(
        "--skip", default="", help="comma-separated groups to leave out: store,ceiling,naive,peer"
    )
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    skip = {s for s in args.skip.split(",") if s}
    callers_list = [int(c) for c in args.callers.split(",") if c]
    kinds = [k for k in args.kinds.split(",") if k]
    deliveries = apify_deliveries(args.deliveries)
    size = len(json.dumps(deliveries[0], separators=(",", ":")))
    facts = await machine_facts()
    background = await background_load()
    print("event store append benchmark —", time.strftime("%Y-%m-%d %H:%M %Z"))
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(f"event: one Apify delivery, {size:,} bytes of JSON; one event per append")
    print(f"machine busy before the run (1 s sample): {background:.0%}")
    if background > 0.15:
        print("  warning: something else is using the CPU; the figures will be low and noisy")
    print("command:", " ".join([Path(sys.executable).name, "-m", "bench.append", *sys.argv[1:]]))
    print()

    results: list[Result] = []
    notes: list[str] = []
    async with bench_server() as server:
        if "ceiling" not in skip:
            for how in ("executemany", "copy"):
                results.append(await ceiling_scenario(server, how, args, deliveries))
                _progress(results[-1])
        if "naive" not in skip:
            results.append(await naive_scenario(server, args, deliveries))
            _progress(results[-1])
        if "store" not in skip:
            for kind in kinds:
                for callers in callers_list:
                    results.append(await store_scenario(server, kind, callers, args, deliveries))
                    _progress(results[-1])
        if "peer" not in skip:
            peer = await peer_scenarios(server, args)
            if isinstance(peer, str):
                notes.append(peer)
                print(peer, file=sys.stderr)
            else:
                results.extend(peer)
                for r in peer:
                    _progress(r)

    ceiling = next((r for r in results if r.name.startswith("ceiling: executemany")), None)
    print()
    report(results, ceiling)
    for note in notes:
        print(note)
    return verdict(results, ceiling)


def _progress(r: Result) -> None:
    print(f"  done: {r.name}, {r.callers} callers: {r.rate:,.0f} events/s", file=sys.stderr)


def report(results: list[Result], ceiling: Result | None) -> None:
    rows = []
    for r in results:
        ratio = r.rate / ceiling.rate if ceiling else math.nan
        batch = r.events / r.batches if r.batches else math.nan
        cpu_us = r.client_cpu / r.events * 1e6 if r.events and r.client_cpu else math.nan
        rows.append(
            [
                r.name,
                r.callers,
                r.events,
                round(r.rate),
                r.p50_ms,
                r.p99_ms,
                f"{ratio:.0%}" if ceiling else "",
                batch,
                cpu_us,
                f"{r.machine_busy:.0%}" if not math.isnan(r.machine_busy) else "",
            ]
        )
    print_table(
        [
            "scenario",
            "callers",
            "events",
            "events/s",
            "p50 ms",
            "p99 ms",
            "÷ executemany",
            "events/batch",
            "client µs/event",
            "CPU busy",
        ],
        rows,
    )


def verdict(results: list[Result], ceiling: Result | None) -> int:
    """Print the target check at the highest caller count; 0 always (it is a report)."""
    store = [r for r in results if r.name.startswith("store")]
    if not store or ceiling is None:
        return 0
    top = max(r.callers for r in store)
    print()
    print(
        f"target: at {top} callers ≥ {TARGET_RATIO:.0%} of executemany "
        f"({ceiling.rate:,.0f} events/s) with p99 < {TARGET_P99_MS:.0f} ms"
    )
    peers = [r for r in results if r.name.startswith("peer") and r.callers == top]
    for r in (r for r in store if r.callers == top):
        ratio = r.rate / ceiling.rate
        met = ratio >= TARGET_RATIO and r.p99_ms < TARGET_P99_MS
        vs_peer = "".join(f", {r.rate / p.rate:.1f}× {p.name[6:]}" for p in peers)
        print(
            f"  {r.name}: {r.rate:,.0f} events/s = {ratio:.2f} × executemany, "
            f"p99 {r.p99_ms:.1f} ms{vs_peer} → {'MET' if met else 'NOT MET'}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (OSError, asyncpg.PostgresError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

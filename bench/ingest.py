"""HTTP ingest benchmark: `runledger serve` beside a bare aiohttp handler, and projection lag.

One run, on a fresh database it creates on the local server (or BENCH_DATABASE_URL's) and drops:
  1. starts `runledger serve` (the installed console script) on that database with fixed tokens,
     bench/bare_server.py (reads the body, parses it with orjson, answers 202) and the two
     durable floors of bench/floor_server.py (parse, then commit each body before answering:
     `floor-insert` a bare batched INSERT, `floor-store` runledger's EventStore with no run
     logic), each on a free loopback port (the floors on databases of their own), and waits for
     their /health;
  2. drives each from a separate load process (bench/ingest_load.py, --connections keep-alive
     connections, one request in flight on each) in turn, each phase after a CHECKPOINT (so
     that none pays for an earlier one's writes):
       kickoffs    `POST /runs` with new run ids;
       deliveries  `POST /webhooks/apify` to the runs kicked off beforehand, Apify fixture bodies
                   with fresh ids, each delivery a distinct one that is applied (202 applied);
     the bare server and the floors get the same requests;
  3. while runledger takes the load, samples the projection lag of run_records every
     --lag-interval s from the database: head position − checkpoint, and how old the oldest
     unprojected event is (now − its recorded_at); then waits until the projection caught up
     and checks that the log holds one event per 2xx answer;
  4. prints requests/s, p50/p99 latency, errors, CPU per process, each server ÷ bare and
     runledger ÷ each floor, the lag percentiles and the targets; stops the servers (SIGTERM)
     and drops the databases.

    .venv/bin/python -m bench.ingest                  # about 3 minutes on 2 cores
    .venv/bin/python -m bench.ingest --targets bare,runledger   # the issue's pair alone
    .venv/bin/python -m bench.ingest --duration 5 --profile /tmp/serve.svg
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from bench.common import ROOT, bench_server, machine_facts, percentile, print_table

SERVE = ROOT / ".venv" / "bin" / "runledger"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
PROJECTION = "run_records"

TARGET_RATIO = 0.50
TARGET_P99_MS = 50.0
TARGET_LAG_P99_S = 1.0

_LAG = """
SELECT h.head,
       c.position,
       (SELECT e.recorded_at FROM events e WHERE e.position > c.position
        ORDER BY e.position LIMIT 1) AS oldest,
       clock_timestamp() AS now
FROM (SELECT coalesce(max(position), 0) AS head FROM events) h,
     (SELECT coalesce(max(position), 0) AS position FROM projection_checkpoints
      WHERE name = $1) c
"""
_EVENT_COUNTS = "SELECT event_type, count(*) FROM events GROUP BY event_type ORDER BY 1"


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Server:
    """A server process on loopback, its output in a file."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not stop in time. Its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_process(name: str, argv: Sequence[str], env: dict[str, str], log: Path) -> Server:
    port = env["_PORT"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={k: v for k, v in env.items() if k != "_PORT"},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Server(name=name, url=f"http://127.0.0.1:{port}", process=process, log=log)


async def wait_healthy(server: Server, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as session:
        while True:
            if server.process.poll() is not None:
                tail = server.log.read_text(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"{server.name} exited: " + " | ".join(tail))
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(server.url + "/health") as answer:
                    if answer.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not healthy after {within_s:.0f} s")
            await asyncio.sleep(0.1)


@dataclass(frozen=True, slots=True)
class Tokens:
    api: str
    webhook: str


TARGETS = ("bare", "floor-insert", "floor-store", "runledger")
"""What `--targets` may name: the bare handler, the two durable floors (bench/floor_server.py)
and runledger serve."""


@dataclass(frozen=True, slots=True)
class Databases:
    """runledger's fresh database, and one of its own for each floor server."""

    runledger: str
    floors: dict[str, str]

    def of(self, target: str) -> str | None:
        return self.runledger if target == "runledger" else self.floors.get(target)


@contextlib.asynccontextmanager
async def servers(
    targets: Sequence[str], databases: Databases, workdir: Path, tokens: Tokens
) -> AsyncIterator[dict[str, Server]]:
    """The servers `targets` name, healthy; all stopped (SIGTERM) on the way out."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_")}
    base_env.pop("DATABASE_URL", None)
    started: dict[str, Server] = {}
    try:
        for target in targets:
            port = str(free_port())
            env = {**base_env, "_PORT": port}
            if target == "runledger":
                env |= {
                    "DATABASE_URL": databases.runledger,
                    "RUNLEDGER_DATA_DIR": str(workdir / "data"),
                    "RUNLEDGER_API_TOKEN": tokens.api,
                    "RUNLEDGER_WEBHOOK_TOKEN": tokens.webhook,
                }
                argv = [str(SERVE), "serve", "--host", "127.0.0.1", "--port", port]
            elif target == "bare":
                argv = [sys.executable, "-m", "bench.bare_server", "--port", port]
            else:
                env["DATABASE_URL"] = databases.floors[target]
                mode = target.removeprefix("floor-")
                argv = [sys.executable, "-m", "bench.floor_server", "--mode", mode, "--port", port]
            started[target] = start_process(target, argv, env, workdir / f"{target}.log")
        for server in started.values():
            await wait_healthy(server)
        yield started
    finally:
        for server in started.values():
            code = await asyncio.to_thread(server.stop)
            if code not in (0, -signal.SIGTERM):
                print(f"warning: {server.name} exited with {code}", file=sys.stderr)


# --- CPU accounting ----------------------------------------------------------------------------


def _machine_ticks() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _process_ticks(pid: int) -> int:
    """utime + stime of `pid` (and of its reaped children), in clock ticks; 0 if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


_OUR_POSTGRES = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() OR backend_type IN ('walwriter', 'checkpointer',
      'background writer', 'autovacuum launcher', 'logical replication launcher')
"""


async def postgres_pids(dsn: str) -> list[int]:
    """The server processes working for this benchmark: its database's backends, and the
    shared ones (WAL writer, checkpointer…); not the backends of other databases."""
    conn = await asyncpg.connect(dsn)
    try:
        return [int(r[0]) for r in await conn.fetch(_OUR_POSTGRES)]
    finally:
        await conn.close()


@dataclass(slots=True)
class CpuMeter:
    """Cores used by the server process, by our PostgreSQL processes, by this process, and
    the machine's busy share (the rest is someone else's: other work on the machine)."""

    server_pid: int
    postgres: list[int] = field(default_factory=list)
    seconds: float = 0.0
    server_cores: float = math.nan
    postgres_cores: float = math.nan
    self_cores: float = math.nan
    machine_busy: float = math.nan
    _t0: float = 0.0
    _self0: float = 0.0
    _server0: int = 0
    _postgres0: dict[int, int] = field(default_factory=dict)
    _machine0: tuple[int, int] = (0, 0)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._self0 = time.process_time()
        self._server0 = _process_ticks(self.server_pid)
        self._postgres0 = {pid: _process_ticks(pid) for pid in self.postgres}
        self._machine0 = _machine_ticks()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self._t0
        hz = os.sysconf("SC_CLK_TCK")
        busy0, total0 = self._machine0
        busy, total = _machine_ticks()
        self.server_cores = (_process_ticks(self.server_pid) - self._server0) / hz / self.seconds
        postgres = 0
        for pid, ticks0 in self._postgres0.items():
            ticks = _process_ticks(pid)
            postgres += max(ticks - ticks0, 0)  # a backend that went is counted as nothing
        self.postgres_cores = postgres / hz / self.seconds
        self.self_cores = (time.process_time() - self._self0) / self.seconds
        self.machine_busy = (busy - busy0) / (total - total0) if total > total0 else math.nan

    def other_cores(self, load_cores: float) -> float:
        """Cores busy on the machine that none of the benchmark's processes used."""
        used = self.server_cores + self.postgres_cores + self.self_cores + load_cores
        return self.machine_busy * (os.cpu_count() or 1) - used


async def background_load(seconds: float = 1.0) -> float:
    """Share of all cores busy while nothing of the benchmark runs."""
    busy0, total0 = _machine_ticks()
    await asyncio.sleep(seconds)
    busy, total = _machine_ticks()
    return (busy - busy0) / (total - total0) if total > total0 else math.nan


async def wait_quiet(within_s: float, threshold: float = 0.10) -> float:
    """Wait (up to `within_s`) for the machine to be idle; the last busy share sampled."""
    deadline = time.monotonic() + within_s
    busy = await background_load()
    while busy > threshold and time.monotonic() < deadline:
        busy = await background_load()
    return busy


async def checkpoint(dsn: str) -> bool:
    """Write the dirty pages of earlier phases now, so that no phase pays for another's
    checkpoint (a floor writes ~0.5 GB of WAL: enough to start one). False without the right."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        return False
    finally:
        await conn.close()
    return True


# --- the load and the lag ----------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    target: str
    mode: str
    figures: dict[str, Any]
    cpu: CpuMeter
    lag_events: list[int] = field(default_factory=list)
    lag_seconds: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return float(self.figures["rate"])


async def run_load(argv: Sequence[str], measuring: asyncio.Event | None = None) -> dict[str, Any]:
    """Run a load process; set `measuring` when its measured window opens. Its figures."""
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    last = b""
    async for line in process.stdout:
        if line.strip() == b"measuring":
            if measuring is not None:
                measuring.set()
        elif line.strip():
            last = line
    err = await process.stderr.read()
    if await process.wait() != 0 or not last:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError("load process failed: " + " | ".join(tail))
    figures: dict[str, Any] = orjson.loads(last)
    return figures


async def sample_lag(
    dsn: str, interval: float, stop: asyncio.Event, events: list[int], seconds: list[float]
) -> None:
    """Every `interval` s: head − checkpoint, and the age of the oldest unprojected event."""
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            row = await conn.fetchrow(_LAG, PROJECTION)
            assert row is not None
            events.append(int(row["head"]) - int(row["position"]))
            oldest: datetime | None = row["oldest"]
            now: datetime = row["now"]
            seconds.append((now - oldest).total_seconds() if oldest is not None else 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        await conn.close()


async def wait_caught_up(dsn: str, within_s: float) -> float:
    """Seconds until the checkpoint reaches the head (NaN when it did not within `within_s`)."""
    conn = await asyncpg.connect(dsn)
    began = time.perf_counter()
    try:
        while time.perf_counter() - began < within_s:
            row = await conn.fetchrow(_LAG, PROJECTION)
            assert row is not None
            if row["head"] == row["position"]:
                return time.perf_counter() - began
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return math.nan


@dataclass(slots=True)
class Bench:
    args: argparse.Namespace
    databases: Databases
    workdir: Path
    tokens: Tokens
    servers: dict[str, Server]
    phases: list[Phase] = field(default_factory=list)
    profile: Path | None = None
    _loads: int = 0

    def _load_argv(self, target: str, mode: str, **options: object) -> list[str]:
        self._loads += 1
        argv = [
            sys.executable,
            "-m",
            "bench.ingest_load",
            "--url",
            self.servers[target].url,
            "--mode",
            mode,
            "--connections",
            str(self.args.connections),
            "--duration",
            str(self.args.duration),
            "--warmup",
            str(self.args.warmup),
            # `=`: a token may begin with "-", which argparse would take for an option
            f"--api-token={self.tokens.api}",
            f"--webhook-token={self.tokens.webhook}",
            "--tag",
            f"{target[0]}{self._loads}",
            "--seed",
            str(self._loads),
        ]
        for name, value in options.items():
            argv += [f"--{name.replace('_', '-')}", str(value)]
        return argv

    async def phase(self, target: str, mode: str, **options: object) -> Phase:
        if not await checkpoint(self.databases.runledger):
            print("  warning: no CHECKPOINT between phases (not allowed)", file=sys.stderr)
        busy = await wait_quiet(self.args.wait_quiet)
        if busy > 0.10:
            print(
                f"  warning: the machine is {busy:.0%} busy before {target} {mode}", file=sys.stderr
            )
        server = self.servers[target]
        cpu = CpuMeter(server.pid)
        phase = Phase(target=target, mode=mode, figures={}, cpu=cpu)
        stop, measuring = asyncio.Event(), asyncio.Event()
        load = asyncio.create_task(run_load(self._load_argv(target, mode, **options), measuring))
        spy = None
        if self.profile is not None and target == "runledger" and mode == "deliveries":
            spy = subprocess.Popen(  # noqa: ASYNC220 — started, not waited for, here
                [
                    str(PY_SPY),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--output",
                    str(self.profile),
                    "--rate",
                    "100",
                    "--nonblocking",
                    "--format",
                    "raw" if self.profile.suffix == ".txt" else "flamegraph",
                    "--duration",
                    str(math.ceil(self.args.warmup + self.args.duration)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        sampler = None
        try:
            waiting = asyncio.create_task(measuring.wait())
            await asyncio.wait([waiting, load], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            database = self.databases.of(target)
            if database is not None:
                cpu.postgres = await postgres_pids(database)
            cpu.start()
            if target == "runledger":
                sampler = asyncio.create_task(
                    sample_lag(
                        self.databases.runledger,
                        self.args.lag_interval,
                        stop,
                        phase.lag_events,
                        phase.lag_seconds,
                    )
                )
            phase.figures = await load
        finally:
            stop.set()
            if sampler is not None:
                await sampler
            if spy is not None:
                await asyncio.to_thread(spy.wait)
        cpu.stop()
        self.phases.append(phase)
        f = phase.figures
        print(
            f"  done: {target} {mode}: {f['rate']:,.0f}/s, p99 {f['p99_ms']:.1f} ms, "
            f"{f['errors']} errors",
            file=sys.stderr,
        )
        return phase

    async def kickoffs(self, target: str) -> Path:
        """Measure kickoffs; the run ids created, for the deliveries (topped up if too few)."""
        created = self.workdir / f"{target}-runs.json"
        phase = await self.phase(target, "kickoffs", created_file=created)
        need = self.args.delivery_runs - int(phase.figures["created"])
        if need > 0:  # not measured: enough runs for the delivery phase to never run dry
            more = self.workdir / f"{target}-more-runs.json"
            argv = self._load_argv(target, "kickoffs", created_file=more, count=need)
            await run_load([*argv, "--duration", "600", "--warmup", "0"])
            runs = orjson.loads(created.read_bytes()) + orjson.loads(more.read_bytes())
            created.write_bytes(orjson.dumps(runs))
        return created

    async def run(self) -> None:
        for target in self.args.targets:
            runs = await self.kickoffs(target)
            await self.phase(target, "deliveries", runs_file=runs)


# --- the report --------------------------------------------------------------------------------


def _ms(value: Any) -> float:
    return float(value) if value is not None else math.nan


def report(phases: list[Phase]) -> None:
    rows = []
    for p in phases:
        f = p.figures
        rows.append(
            [
                f"{p.target} {p.mode}",
                f["requests"],
                round(f["rate"]),
                _ms(f["p50_ms"]),
                _ms(f["p90_ms"]),
                _ms(f["p99_ms"]),
                _ms(f["max_ms"]),
                f["errors"],
                _answers(f),
                f"{p.cpu.server_cores:.2f}",
                p.cpu.server_cores * 1e6 / f["rate"] if f["rate"] else math.nan,
                f"{p.cpu.postgres_cores:.2f}",
                f"{load_cores(f):.2f}",
                f"{p.cpu.other_cores(load_cores(f)):.2f}",
                f"{p.cpu.machine_busy:.0%}",
            ]
        )
    print_table(
        [
            "phase",
            "requests",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "errors",
            "answers",
            "server cores",
            "server µs/req",
            "postgres cores",
            "load cores",
            "others' cores",
            "machine busy",
        ],
        rows,
    )


def load_cores(figures: dict[str, Any]) -> float:
    return float(figures["client_cpu_s"]) / max(float(figures["wall_s"]), 1e-9)


def _answers(figures: dict[str, Any]) -> str:
    """The statuses counted, and the outcomes the bodies named (e.g. `202:900 applied:900`)."""
    statuses = [f"{k}:{v}" for k, v in sorted(figures["statuses"].items())]
    outcomes = [f"{k}:{v}" for k, v in sorted(figures["outcomes"].items()) if k != "accepted"]
    return " ".join(statuses + outcomes)


def ratios(phases: list[Phase]) -> dict[str, float]:
    """runledger ÷ bare per mode (the target's ratio); `deliveries` is the one the target names."""
    return {
        mode: ratio
        for (target, reference, mode), ratio in all_ratios(phases).items()
        if (target, reference) == ("runledger", "bare")
    }


def all_ratios(phases: list[Phase]) -> dict[tuple[str, str, str], float]:
    """Each server's rate over the bare handler's, and runledger's over each floor's."""
    by = {(p.target, p.mode): p for p in phases}
    pairs = [(t, "bare") for t in TARGETS[1:]] + [("runledger", t) for t in TARGETS[1:3]]
    out = {}
    for target, reference in pairs:
        for mode in ("kickoffs", "deliveries"):
            ours, theirs = by.get((target, mode)), by.get((reference, mode))
            if ours and theirs and theirs.rate:
                out[(target, reference, mode)] = ours.rate / theirs.rate
    return out


def lag_figures(phase: Phase) -> dict[str, float]:
    return {
        "samples": len(phase.lag_events),
        "events_p50": percentile(phase.lag_events, 50),
        "events_p99": percentile(phase.lag_events, 99),
        "events_max": max(phase.lag_events, default=0),
        "seconds_p50": percentile(phase.lag_seconds, 50),
        "seconds_p99": percentile(phase.lag_seconds, 99),
        "seconds_max": max(phase.lag_seconds, default=0.0),
    }


def report_lag(phases: list[Phase]) -> None:
    rows = []
    for p in phases:
        if not p.lag_events:
            continue
        lag = lag_figures(p)
        rows.append(
            [
                f"runledger {p.mode}",
                lag["samples"],
                lag["events_p50"],
                lag["events_p99"],
                lag["events_max"],
                lag["seconds_p50"] * 1000,
                lag["seconds_p99"] * 1000,
                lag["seconds_max"] * 1000,
            ]
        )
    print_table(
        [
            "projection lag (run_records)",
            "samples",
            "events p50",
            "events p99",
            "events max",
            "age p50 ms",
            "age p99 ms",
            "age max ms",
        ],
        rows,
    )


def verdict(phases: list[Phase]) -> dict[str, bool]:
    by = {(p.target, p.mode): p for p in phases}
    met: dict[str, bool] = {}
    ratio = ratios(phases).get("deliveries")
    deliveries = by.get(("runledger", "deliveries"))
    print()
    if ratio is not None:
        met["ratio"] = ratio >= TARGET_RATIO
        print(
            f"target: runledger deliveries ≥ {TARGET_RATIO:.0%} of the bare handler's: "
            f"{ratio:.0%} → {'MET' if met['ratio'] else 'NOT MET'}"
        )
    for mode in ("kickoffs", "deliveries"):
        p = by.get(("runledger", mode))
        if p is not None:
            p99 = _ms(p.figures["p99_ms"])
            met[f"p99_{mode}"] = p99 <= TARGET_P99_MS
            print(
                f"target: runledger {mode} p99 ≤ {TARGET_P99_MS:.0f} ms: {p99:.1f} ms → "
                f"{'MET' if met[f'p99_{mode}'] else 'NOT MET'}"
            )
    if deliveries is not None and deliveries.lag_seconds:
        lag = lag_figures(deliveries)["seconds_p99"]
        met["lag"] = lag <= TARGET_LAG_P99_S
        print(
            f"target: projection lag p99 ≤ {TARGET_LAG_P99_S:.0f} s under the delivery load: "
            f"{lag * 1000:.0f} ms → {'MET' if met['lag'] else 'NOT MET'}"
        )
    return met


_FLOOR_ROWS = {
    "floor-insert": "SELECT count(*) FROM bench_floor",
    "floor-store": "SELECT count(*) FROM events",
}


async def _count(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def check_log(databases: Databases, phases: list[Phase]) -> tuple[dict[str, int], list[str]]:
    """runledger's events by type, and any disagreement with the answers the load counted:
    an error answer from any server, or fewer events or rows stored than 2xx answers."""
    rows = await _count(databases.runledger, _EVENT_COUNTS)
    counts = {str(r[0]): int(r[1]) for r in rows}
    problems = [
        f"{p.target} {p.mode}: {p.figures['errors']} errors {p.figures['statuses']}"
        for p in phases
        if p.figures["errors"]
    ]
    delivery_events = sum(n for t, n in counts.items() if t.startswith("Run") and t != "RunCreated")
    applied = sum(
        int(p.figures["outcomes"].get("applied", 0))
        for p in phases
        if p.target == "runledger" and p.mode == "deliveries"
    )
    if delivery_events < applied:
        problems.append(f"{applied} deliveries answered applied, {delivery_events} in the log")
    for target, dsn in databases.floors.items():
        stored = int((await _count(dsn, _FLOOR_ROWS[target]))[0][0])
        answered = sum(
            n
            for p in phases
            if p.target == target
            for status, n in p.figures["statuses"].items()
            if status.startswith("2")
        )
        if stored < answered:
            problems.append(f"{target}: {answered} answered 2xx, {stored} stored")
    return counts, problems


# --- the run -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    p.add_argument("--connections", type=int, default=64, help="concurrent connections")
    p.add_argument(
        "--targets", default=",".join(TARGETS), help=f"servers to drive, in order: {TARGETS}"
    )
    p.add_argument(
        "--delivery-runs",
        type=int,
        default=20_000,
        help="runs to have kicked off before the delivery phase (topped up, not measured)",
    )
    p.add_argument("--lag-interval", type=float, default=0.1, help="seconds between lag samples")
    p.add_argument("--catch-up-timeout", type=float, default=120.0)
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        help="before each phase, wait up to this many seconds for the machine to be idle",
    )
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy profile of serve during the deliveries: an SVG flame graph, or collapsed "
        "stacks when the name ends in .txt",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--keep-logs", type=Path, help="copy the servers' logs into this folder")
    args = p.parse_args(argv)
    args.targets = [t for t in args.targets.split(",") if t]
    if not set(args.targets) <= set(TARGETS):
        p.error(f"--targets: some of {', '.join(TARGETS)}")
    return args


async def run(args: argparse.Namespace) -> int:
    facts = await machine_facts()
    print("HTTP ingest benchmark —", time.strftime("%Y-%m-%d %H:%M %Z"))
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(
        f"load: {args.connections} keep-alive connections, one request in flight on each; "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured per phase"
    )
    print("command:", " ".join([Path(sys.executable).name, "-m", "bench.ingest", *sys.argv[1:]]))
    print()
    tokens = Tokens(api=secrets.token_urlsafe(24), webhook=secrets.token_urlsafe(24))
    with tempfile.TemporaryDirectory(prefix="runledger-ingest-") as tmp:
        workdir = Path(tmp)
        async with bench_server() as server, contextlib.AsyncExitStack() as stack:
            dsn = await stack.enter_async_context(server.fresh_database())
            floors = {
                target: await stack.enter_async_context(server.fresh_database())
                for target in args.targets
                if target.startswith("floor-")
            }
            databases = Databases(runledger=dsn, floors=floors)
            started = await stack.enter_async_context(
                servers(args.targets, databases, workdir, tokens)
            )
            bench = Bench(args, databases, workdir, tokens, started, profile=args.profile)
            try:
                await bench.run()
                catch_up = await wait_caught_up(dsn, args.catch_up_timeout)
                counts, problems = await check_log(databases, bench.phases)
            finally:
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    for s in started.values():
                        (args.keep_logs / s.log.name).write_bytes(s.log.read_bytes())
    print()
    report(bench.phases)
    print()
    for (target, reference, mode), ratio in all_ratios(bench.phases).items():
        print(f"{target} ÷ {reference}, {mode}: {ratio:.2f}")
    print()
    report_lag(bench.phases)
    print(
        f"caught up {catch_up:.2f} s after the last request"
        if not math.isnan(catch_up)
        else f"not caught up within {args.catch_up_timeout:.0f} s"
    )
    print("events in the log:", ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    for problem in problems:
        print("PROBLEM:", problem)
    met = verdict(bench.phases)
    if args.profile:
        print(f"profile of runledger serve during the deliveries: {args.profile}")
    if args.json:
        args.json.write_bytes(
            orjson.dumps(
                {
                    "facts": facts,
                    "phases": [
                        {
                            "target": p.target,
                            "mode": p.mode,
                            **p.figures,
                            "server_cores": p.cpu.server_cores,
                            "postgres_cores": p.cpu.postgres_cores,
                            "machine_busy": p.cpu.machine_busy,
                            **({"lag": lag_figures(p)} if p.lag_events else {}),
                        }
                        for p in bench.phases
                    ],
                    "ratios": ratios(bench.phases),
                    "catch_up_s": catch_up,
                    "events": counts,
                    "problems": problems,
                    "met": met,
                },
                option=orjson.OPT_INDENT_2,
            )
        )
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (OSError, RuntimeError, asyncpg.PostgresError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

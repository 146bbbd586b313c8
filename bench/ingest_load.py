"""The ingest benchmark's load process: N keep-alive HTTP/1.1 connections, one request in flight
on each, against runledger or the bare server. Started by bench/ingest.py; prints one JSON line.

The client is a minimal HTTP/1.1 speaker on asyncio's protocol layer (requests built as bytes,
answers parsed by Content-Length), so that the load process spends as little of the machine's
two cores as it can: it is the server that is measured, not the client.

  kickoffs    `POST /runs` with new run ids (written to --created-file when answered 2xx).
  deliveries  `POST /webhooks/apify?token=…` for the runs in --runs-file, bodies from the Apify
              fixtures with fresh ids; each run's deliveries in lifecycle order on one
              connection (CREATED, then a final event; some runs resurrect and finish again),
              each with its own dispatch id: every one is a distinct delivery to apply.

    .venv/bin/python -m bench.ingest_load --url http://127.0.0.1:8181 --mode kickoffs ...
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "apify"

# The ids the fixtures use for their one run; every delivery gets fresh ones in their place.
_FIXTURE_RUN_ID = b"fJ9xM3bQw6TzY1kDe"
_FIXTURE_DATASET_ID = b"Lm8vR2kXw5QaT9jNe"
_FIXTURE_STORE_ID = b"Ys4cD7nPq1ZrW6tBm"
_FIXTURE_QUEUE_ID = b"Cz6hB1tYs4MpK8dRq"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
_BASE_TIME = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)

# Per run, the deliveries in the order Apify fires them, with how often each story occurs.
STORIES: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.70, ("run-created", "run-succeeded")),
    (0.12, ("run-created", "run-failed")),
    (0.08, ("run-created", "run-aborted")),
    (0.05, ("run-created", "run-timed-out")),
    (0.05, ("run-created", "run-succeeded", "run-resurrected", "run-succeeded-gen1")),
)


def apify_id(rng: random.Random) -> str:
    return "".join(rng.choices(_ALPHABET, k=17))


@dataclass(frozen=True, slots=True)
class Template:
    """One fixture delivery as bytes, its createdAt, and the Apify headers it comes with."""

    body: bytes
    created_at: bytes
    headers: tuple[tuple[str, str], ...]


def load_templates(fixtures: Path = FIXTURES) -> dict[str, Template]:
    templates = {}
    for name in (
        "run-created",
        "run-succeeded",
        "run-failed",
        "run-aborted",
        "run-timed-out",
        "run-resurrected",
    ):
        delivery = orjson.loads((fixtures / f"{name}.json").read_bytes())
        templates[name] = _template(delivery)
        if name == "run-succeeded":  # the second ending of a resurrected run: generation 1
            delivery["body"]["resource"]["stats"]["resurrectCount"] = 1
            templates["run-succeeded-gen1"] = _template(delivery)
    return templates


def _template(delivery: dict[str, Any]) -> Template:
    headers = tuple(
        (k, v)
        for k, v in delivery["headers"].items()
        if k.lower() not in ("content-type", "x-apify-webhook-dispatch-id")
    )
    body = orjson.dumps(delivery["body"])
    return Template(body=body, created_at=delivery["body"]["createdAt"].encode(), headers=headers)


@dataclass(slots=True)
class Requests:
    """Builds the request bytes for one target: host, tokens, counters for fresh ids."""

    host: str
    api_token: str
    webhook_token: str
    tag: str
    templates: dict[str, Template]
    rng: random.Random
    sent: int = 0

    def post(self, path: str, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    def kickoff(self, run_id: str) -> bytes:
        body = orjson.dumps(
            {
                "run_id": run_id,
                "client_id": f"client-{self.rng.randrange(40):02d}",
                "actor_id": "Hk7sPq2VnR4mZt8Lc",
                "input": {"profiles": [f"profile-{self.rng.randrange(1000)}"], "maxItems": 500},
                "requested_by": "scheduler",
            }
        )
        return self.post("/runs", [("Authorization", f"Bearer {self.api_token}")], body)

    def story(self) -> tuple[str, ...]:
        pick = self.rng.random()
        for weight, story in STORIES:
            if pick < weight:
                return story
            pick -= weight
        return STORIES[0][1]

    def delivery(self, run_id: str, name: str, storage: tuple[bytes, bytes, bytes]) -> bytes:
        self.sent += 1
        template = self.templates[name]
        created = _BASE_TIME + timedelta(milliseconds=self.sent)
        body = (
            template.body.replace(_FIXTURE_RUN_ID, run_id.encode())
            .replace(_FIXTURE_DATASET_ID, storage[0])
            .replace(_FIXTURE_STORE_ID, storage[1])
            .replace(_FIXTURE_QUEUE_ID, storage[2])
            .replace(
                template.created_at, created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3].encode() + b"Z"
            )
        )
        dispatch = f"d{self.tag}{self.sent:012d}"
        headers = [*template.headers, ("X-Apify-Webhook-Dispatch-Id", dispatch)]
        return self.post(f"/webhooks/apify?token={self.webhook_token}", headers, body)

    def storage_ids(self) -> tuple[bytes, bytes, bytes]:
        return (
            apify_id(self.rng).encode(),
            apify_id(self.rng).encode(),
            apify_id(self.rng).encode(),
        )


# --- the client -------------------------------------------------------------------------------


class ConnectionClosedError(Exception):
    """The server closed the connection before answering."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection with one request in flight; answers parsed by Content-Length."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionClosedError(str(exc or "closed")))

    async def request(self, raw: bytes) -> tuple[int, bytes, bool]:
        """Send `raw`; (status, body, whether the server will close the connection)."""
        assert self._transport is not None
        if self.closed:
            raise ConnectionClosedError("closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def _complete(self) -> None:
        if self._waiter is None or self._waiter.done():
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(self._buffer) < total:
            return
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        self._waiter.set_result((int(head[9:12]), body, b"\r\nconnection: close" in head))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def connect(host: str, port: int) -> HttpConnection:
    _, protocol = await asyncio.get_running_loop().create_connection(HttpConnection, host, port)
    return protocol


# --- the load ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """What the measured window saw (requests begun after the warm-up, before the deadline)."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    last_done: float = 0.0


@dataclass(slots=True)
class Load:
    mode: str
    host: str
    port: int
    requests: Requests
    runs: list[str]
    measure_from: float
    deadline: float
    count: int
    expect: frozenset[int]
    tally: Tally = field(default_factory=Tally)
    created: list[str] = field(default_factory=list)
    begun: int = 0
    exhausted: bool = False
    _next_run: int = 0

    def next_run(self) -> str | None:
        if self._next_run >= len(self.runs):
            self.exhausted = True
            return None
        run = self.runs[self._next_run]
        self._next_run += 1
        return run

    def may_begin(self) -> bool:
        return time.perf_counter() < self.deadline and self.begun < self.count

    async def worker(self) -> None:
        conn = await connect(self.host, self.port)
        try:
            if self.mode == "kickoffs":
                while self.may_begin():
                    run_id = apify_id(self.requests.rng)
                    conn, status = await self._send(conn, self.requests.kickoff(run_id))
                    if 200 <= status < 300:
                        self.created.append(run_id)
            else:
                while self.may_begin():
                    next_run = self.next_run()
                    if next_run is None:
                        return
                    run_id = next_run
                    storage = self.requests.storage_ids()
                    for name in self.requests.story():
                        if not self.may_begin():
                            return
                        raw = self.requests.delivery(run_id, name, storage)
                        conn, _ = await self._send(conn, raw)
        finally:
            conn.close()

    async def _send(self, conn: HttpConnection, raw: bytes) -> tuple[HttpConnection, int]:
        self.begun += 1
        begun = time.perf_counter()
        measured = begun >= self.measure_from
        try:
            status, body, closing = await conn.request(raw)
        except (ConnectionClosedError, OSError) as err:
            if measured:
                self.tally.errors += 1
                self.tally.statuses[type(err).__name__] += 1
            return await connect(self.host, self.port), 0
        done = time.perf_counter()
        if measured:
            tally = self.tally
            tally.latencies.append(done - begun)
            tally.statuses[str(status)] += 1
            tally.last_done = done
            if status not in self.expect:
                tally.errors += 1
            if body.startswith(b"{"):
                outcome = orjson.loads(body).get("outcome")
                if isinstance(outcome, str):
                    tally.outcomes[outcome] += 1
        if closing:
            conn.close()
            conn = await connect(self.host, self.port)
        return conn, status


async def _read(path: str) -> bytes:
    return await asyncio.to_thread(Path(path).read_bytes)


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    templates = await asyncio.to_thread(load_templates, Path(args.fixtures))
    requests = Requests(
        host=f"{host}:{port}",
        api_token=args.api_token,
        webhook_token=args.webhook_token,
        tag=args.tag,
        templates=templates,
        rng=random.Random(args.seed),
    )
    runs = orjson.loads(await _read(args.runs_file)) if args.runs_file else []
    expect = frozenset({201, 202} if args.expect is None else map(int, args.expect.split(",")))
    started = time.perf_counter()
    load = Load(
        mode=args.mode,
        host=host,
        port=port,
        requests=requests,
        runs=runs,
        measure_from=started + args.warmup,
        deadline=started + args.warmup + args.duration,
        count=args.count,
        expect=expect,
    )
    cpu0 = time.process_time()
    loop = asyncio.get_running_loop()
    # Tells bench/ingest.py when the measured window opens (its CPU meters and lag sampler).
    loop.call_later(args.warmup, _say, "measuring")
    async with asyncio.TaskGroup() as group:
        for _ in range(args.connections):
            group.create_task(load.worker())
    cpu = time.process_time() - cpu0
    if args.created_file:
        await asyncio.to_thread(Path(args.created_file).write_bytes, orjson.dumps(load.created))
    tally = load.tally
    ordered = sorted(tally.latencies)
    seconds = max(tally.last_done - load.measure_from, 1e-9) if ordered else 0.0
    return {
        "mode": args.mode,
        "connections": args.connections,
        "requests": len(ordered),
        "seconds": seconds,
        "rate": len(ordered) / seconds if seconds else 0.0,
        "p50_ms": _percentile(ordered, 50) * 1000,
        "p90_ms": _percentile(ordered, 90) * 1000,
        "p99_ms": _percentile(ordered, 99) * 1000,
        "max_ms": (ordered[-1] * 1000) if ordered else float("nan"),
        "errors": tally.errors,
        "statuses": dict(tally.statuses),
        "outcomes": dict(tally.outcomes),
        "created": len(load.created),
        "begun": load.begun,
        "exhausted": load.exhausted,
        "client_cpu_s": cpu,
        "wall_s": time.perf_counter() - started,
    }


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8181")
    p.add_argument("--mode", choices=("kickoffs", "deliveries"), required=True)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds sent but not measured")
    p.add_argument("--count", type=int, default=10_000_000, help="stop after this many requests")
    p.add_argument("--api-token", default="")
    p.add_argument("--webhook-token", default="")
    p.add_argument("--runs-file", help="JSON list of run ids to deliver to (deliveries)")
    p.add_argument("--created-file", help="where to write the run ids answered 2xx (kickoffs)")
    p.add_argument("--expect", default=None, help="statuses that count as success (201,202)")
    p.add_argument("--tag", default="x", help="makes the dispatch ids of one run distinct")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fixtures", default=str(FIXTURES))
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    result = asyncio.run(run(parse_args(argv)))
    _say(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The Python peer: the `eventsourcing` library (9.5, PostgreSQL persistence) saving the events.

Runs in the benchmark-only venv made by bench/setup_peer.sh (the project venv never has
eventsourcing); bench/append.py starts it with that venv's python and reads the JSON it prints
on its last line. Each caller is a thread (the library is synchronous, psycopg 3 underneath);
every save writes one new aggregate's first event, so no caller conflicts with another.

Modes:
  recorder     PostgresApplicationRecorder.insert_events of one StoredEvent whose state is the
               orjson-encoded delivery: the library's own write path (a transaction that locks
               the table, NOTIFYs, inserts) without its domain-model layer.
  application  Application.save of an Aggregate created with the delivery as its data: what an
               application written with the library does (its transcoder encodes the state).

Note: the library stores `state` as bytea, so the server does not parse JSON for these rows, which
the runledger rows (jsonb) pay for.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from eventsourcing.application import Application  # type: ignore[import-not-found]
from eventsourcing.domain import Aggregate  # type: ignore[import-not-found]
from eventsourcing.persistence import StoredEvent  # type: ignore[import-not-found]
from eventsourcing.postgres import (  # type: ignore[import-not-found]
    PostgresApplicationRecorder,
    PostgresDatastore,
)


class Delivery(Aggregate):  # type: ignore[misc]
    """An aggregate whose creation event carries one Apify delivery."""

    def __init__(self, delivery: dict[str, Any]) -> None:
        self.delivery = delivery


class DeliveryLog(Application):  # type: ignore[misc]
    """The smallest application that saves Delivery aggregates."""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def run_threads(
    save: Callable[[int, int], None], callers: int, duration: float, max_per_caller: int
) -> dict[str, Any]:
    """Each thread saves until the deadline (or its cap); returns rate and latency figures."""
    latencies: list[list[float]] = [[] for _ in range(callers)]
    start = threading.Barrier(callers + 1)
    deadline = [0.0]

    errors: list[Exception] = []

    def work(index: int) -> None:
        start.wait()
        mine = latencies[index]
        try:
            for n in range(max_per_caller):
                begun = time.perf_counter()
                if begun >= deadline[0]:
                    break
                save(index, n)
                mine.append(time.perf_counter() - begun)
        except Exception as err:  # noqa: BLE001 — a failed caller fails the run, not thins it
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    deadline[0] = began + duration
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} of {callers} callers failed: {errors[0]!r}")
    flat = [x for mine in latencies for x in mine]
    return {
        "callers": callers,
        "events": len(flat),
        "seconds": elapsed,
        "rate": len(flat) / elapsed,
        "p50_ms": percentile(flat, 50) * 1000,
        "p99_ms": percentile(flat, 99) * 1000,
    }


def make_bodies(fixture: Path, count: int) -> list[dict[str, Any]]:
    body = json.loads(fixture.read_text(encoding="utf-8"))["body"]
    bodies = []
    for i in range(count):
        b = copy.deepcopy(body)
        run_id = f"peer{i:013d}"
        b["eventData"]["actorRunId"] = run_id
        b["resource"]["id"] = run_id
        bodies.append(b)
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--fixture", type=Path, required=True)
    parser.add_argument("--callers", default="1,16,64")
    parser.add_argument("--modes", default="recorder,application")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--pool", type=int, default=16)
    parser.add_argument("--max-per-caller", type=int, default=200_000)
    args = parser.parse_args()

    dsn = urlsplit(args.dsn)
    settings = {
        "dbname": dsn.path.lstrip("/"),
        "host": dsn.hostname or "127.0.0.1",
        "port": str(dsn.port or 5432),
        "user": dsn.username or "postgres",
        "password": dsn.password or "",
    }
    bodies = make_bodies(args.fixture, 500)
    results = []

    for mode in args.modes.split(","):
        for callers in [int(c) for c in args.callers.split(",")]:
            pool = min(callers, args.pool)
            if mode == "recorder":
                datastore = PostgresDatastore(**settings, pool_size=pool, connect_timeout=30)
                recorder = PostgresApplicationRecorder(
                    datastore, events_table_name=f"stored_events_{callers}"
                )
                recorder.create_table()

                def save_stored_event(index: int, n: int, recorder: Any = recorder) -> None:
                    body = bodies[(index * 7919 + n) % len(bodies)]
                    recorder.insert_events(
                        [
                            StoredEvent(
                                originator_id=uuid.uuid4(),
                                originator_version=1,
                                topic="bench:ApifyWebhookReceived",
                                state=orjson.dumps(body),
                            )
                        ]
                    )

                save: Callable[[int, int], None] = save_stored_event
                closer: Callable[[], None] = datastore.close
            else:
                env = {
                    "PERSISTENCE_MODULE": "eventsourcing.postgres",
                    "POSTGRES_DBNAME": settings["dbname"],
                    "POSTGRES_HOST": settings["host"],
                    "POSTGRES_PORT": settings["port"],
                    "POSTGRES_USER": settings["user"],
                    "POSTGRES_PASSWORD": settings["password"],
                    "POSTGRES_POOL_SIZE": str(pool),
                    "POSTGRES_CONNECT_TIMEOUT": "30",
                }
                os.environ.update(env)
                app = DeliveryLog()

                def save_aggregate(index: int, n: int, app: Any = app) -> None:
                    app.save(Delivery(bodies[(index * 7919 + n) % len(bodies)]))

                save = save_aggregate
                closer = app.close
            run_threads(save, callers, args.warmup, args.max_per_caller)
            figures = run_threads(save, callers, args.duration, args.max_per_caller)
            figures["mode"] = mode
            results.append(figures)
            closer()
    print(json.dumps(results))


if __name__ == "__main__":
    main()

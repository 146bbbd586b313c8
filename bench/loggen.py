"""A realistic event log, written by the real state machine, cached on disk and loaded by COPY.

Runs are kicked off at a steady pace over `days` days by `clients` clients (a few big ones, a
long tail). Each run gets what Apify and the results processor really send, decided by
`statemachine.decide` command by command, as `RunService` would: the CREATED delivery (sometimes
twice, sometimes only after the final one: a stale rejection, sometimes before the kickoff: an
orphan rejection, then its retry), one final delivery (succeeded, failed, aborted, timed out;
a few runs never finish), resurrections with a second final delivery, one to three results
reports, repeated kickoffs and deliveries (which add no event), and a few dead letters. Bodies
are the fixture files of shared/fixtures/apify with fresh ids, times and figures.

The events of all runs are merged in time order (a heap bounded by the longest run) and
written as a PostgreSQL COPY text file under bench/.cache/, named after the parameters, so a
rerun skips the generation. `load` copies it into `events` of a migrated database.
"""

from __future__ import annotations

import heapq
import math
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from api.service import DEAD_LETTER_STREAM, DEAD_LETTER_TYPE
from bench.common import ROOT
from eventstore import connect
from statemachine import (
    ApifyDelivery,
    ApplyApifyWebhook,
    Command,
    Event,
    KickoffRun,
    RecordResults,
    decide,
    encode,
    parse_delivery,
    run_stream,
    stream_for,
)

GENERATOR_VERSION = 1  # bump when the generated log changes, so stale caches are not reused
CACHE_DIR = ROOT / "bench" / ".cache"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "apify"
START = datetime(2026, 1, 5, tzinfo=UTC)
COLUMNS = ["stream_id", "version", "event_id", "event_type", "data", "metadata", "recorded_at"]
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
_FIXTURE_OF = {
    "created": "run-created",
    "succeeded": "run-succeeded",
    "failed": "run-failed",
    "aborted": "run-aborted",
    "timed_out": "run-timed-out",
    "resurrected": "run-resurrected",
}
_ENDINGS = (("succeeded", 0.86), ("failed", 0.07), ("aborted", 0.04), ("never", 0.03))
_ACTORS = ("Hk7sPq2VnR4mZt8Lc", "Qm3rT9wLx2NpB6vKd", "Zt5yH8cVb1MnR4qWe")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSpec:
    """What to generate: `events` exactly, runs kicked off `span/runs` apart over `days`."""

    events: int = 1_000_000
    runs: int = 200_000
    clients: int = 40
    days: int = 90
    seed: int = 11

    def path(self) -> Path:
        name = "-".join(f"{k}{v}" for k, v in asdict(self).items())
        return CACHE_DIR / f"log-{name}-v{GENERATOR_VERSION}.copy"


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFile:
    path: Path
    events: int
    runs: int
    seconds: float  # generation time; 0 when it came from the cache
    cached: bool


def apify_id(rng: random.Random) -> str:
    return "".join(rng.choices(_ALPHABET, k=17))


def client_names(count: int) -> list[str]:
    return [f"client-{i:03d}" for i in range(1, count + 1)]


def _iso(seconds: float) -> str:
    moment = START + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Bodies:
    """Fresh delivery bodies from the fixture files (parsed anew each time: no shared state)."""

    def __init__(self) -> None:
        self._raw = {
            name: (FIXTURES / f"{file}.json").read_bytes() for name, file in _FIXTURE_OF.items()
        }

    def delivery(self, kind: str, run: _Run, fired: float, *, generation: int) -> ApifyDelivery:
        fixture = orjson.loads(self._raw[kind])
        headers: dict[str, str] = fixture["headers"]
        body: dict[str, Any] = fixture["body"]
        headers["X-Apify-Webhook-Dispatch-Id"] = apify_id(run.rng)
        body["createdAt"] = _iso(fired)
        body["eventData"].update(actorRunId=run.run_id, actorId=run.actor_id)
        resource = body["resource"]
        resource.update(id=run.run_id, actId=run.actor_id, startedAt=_iso(run.started))
        resource["stats"]["resurrectCount"] = generation
        resource["defaultDatasetId"] = run.dataset_id
        resource["storageIds"]["datasets"]["default"] = run.dataset_id
        if kind not in ("created", "resurrected"):
            runtime = fired - run.started
            resource["finishedAt"] = _iso(fired)
            stats = resource["stats"]
            stats["runTimeSecs"], stats["durationMillis"] = round(runtime, 3), int(runtime * 1e3)
            resource["usageTotalUsd"] = round(runtime * 0.0014, 4)
            if kind == "succeeded":
                message = f"Scraped {run.posts} posts from {run.profiles} profiles"
                resource["statusMessage"] = message
        parsed = parse_delivery(body, headers, run_id_param=None)
        assert isinstance(parsed, ApifyDelivery)
        return parsed


@dataclass(slots=True)
class _Run:
    rng: random.Random
    run_id: str
    client_id: str
    actor_id: str
    dataset_id: str
    kicked_off: float
    started: float
    posts: int
    profiles: int


def _webhook(delivery: ApifyDelivery) -> ApplyApifyWebhook:
    return ApplyApifyWebhook(run_id=delivery.run_id, delivery=delivery)


def _commands(run: _Run, bodies: _Bodies) -> list[tuple[float, Command]]:
    """One run's commands with their arrival times (seconds from START)."""
    rng, t0 = run.rng, run.kicked_off
    profiles = [f"https://www.linkedin.com/in/p{rng.randrange(10**6)}" for _ in range(3)]
    kickoff = KickoffRun(
        run_id=run.run_id, client_id=run.client_id, actor_id=run.actor_id, task_id=None,
        input={"profiles": profiles, "maxPosts": 50}, requested_by="harvest-scheduler",
        request_key=uuid.UUID(int=rng.getrandbits(128)).hex,
    )  # fmt: skip
    out: list[tuple[float, Command]] = [(t0, kickoff)]
    if rng.random() < 0.04:
        out.append((t0 + rng.uniform(0.5, 5), kickoff))  # a client retry: no new event
    created = _webhook(bodies.delivery("created", run, run.started, generation=0))
    runtime = min(rng.lognormvariate(math.log(240), 1.0), 3600.0)
    ending = rng.choices([e for e, _ in _ENDINGS], weights=[w for _, w in _ENDINGS])[0]
    if runtime >= 3600.0:
        ending = "timed_out"
    finished = run.started + runtime
    late = rng.random() < 0.10  # the CREATED delivery only gets through after the final one
    if rng.random() < 0.03:  # delivered before the kickoff was recorded: orphan, then a retry
        out.append((t0 - rng.uniform(0.1, 0.9), created))
        out.append((t0 + 60.0, created))
    elif late and ending != "never":
        out.append((finished + rng.uniform(30, 600), created))
    else:
        out.append((run.started + rng.uniform(0.05, 2.0), created))
        if rng.random() < 0.2:
            out.append((run.started + rng.uniform(2, 60), created))  # redelivered: no event
    if ending == "never":
        return out
    final = _webhook(bodies.delivery(ending, run, finished, generation=0))
    out.append((finished + rng.uniform(0.05, 2.0), final))
    if rng.random() < 0.2:
        out.append((finished + rng.uniform(2, 60), final))
    last = finished
    if rng.random() < 0.04:  # resurrected later, and finished again
        resurrected_at = finished + rng.uniform(600, 7200)
        resurrected = bodies.delivery("resurrected", run, resurrected_at, generation=1)
        out.append((resurrected_at + 0.5, _webhook(resurrected)))
        last = resurrected_at + rng.uniform(30, 900)
        again = _webhook(bodies.delivery("succeeded", run, last, generation=1))
        out.append((last + 0.5, again))
    if ending == "succeeded" or rng.random() < 0.3:
        out += _results(run, last)
    return out


def _results(run: _Run, after: float) -> list[tuple[float, Command]]:
    rng, moment = run.rng, after
    out: list[tuple[float, Command]] = []
    for part in range(1, rng.randint(1, 3) + 1):
        moment += rng.uniform(5, 300)
        metrics = {
            "posts_harvested": float(run.posts * part),
            "profiles_processed": float(run.profiles),
            "errors": float(rng.randrange(3)),
        }
        received = {"metrics": metrics, "details": {"part": part}}
        command = RecordResults(
            run_id=run.run_id, metrics=tuple(sorted(metrics.items())), details={"part": part},
            request_key=f"results-{part}", received=received,
        )  # fmt: skip
        out.append((moment, command))
        if rng.random() < 0.1:
            out.append((moment + rng.uniform(1, 30), command))  # a retried report: no event
    return out


_Pending = tuple[float, int, str, int, Event | dict[str, Any]]


def _run_events(run: _Run, bodies: _Bodies, seq: Iterator[int]) -> Iterator[_Pending]:
    """Decide the run's commands in arrival order, as RunService does, one stream at a time."""
    history: list[Event] = []
    own, orphans = run_stream(run.run_id), 0
    for moment, command in sorted(_commands(run, bodies), key=lambda c: c[0]):
        for event in decide(history, command, now=START + timedelta(seconds=moment)):
            if stream_for(event) == own:
                history.append(event)
                yield moment, next(seq), own, len(history), event
            else:
                orphans += 1
                yield moment, next(seq), stream_for(event), orphans, event


def _dead_letter(rng: random.Random, moment: float) -> dict[str, Any]:
    return {
        "reason": "invalid_delivery",
        "message": "the delivery is not an Apify run event we can read (resource: required)",
        "details": {"resource": "required, an object"},
        "headers": {"X-Apify-Webhook-Dispatch-Id": apify_id(rng)},
        "received_at": _iso(moment),
        "body": {"eventType": "ACTOR.RUN.SUCCEEDED", "eventData": {}, "createdAt": _iso(moment)},
    }


def _copy_line(stream: str, version: int, event: Event | dict[str, Any], moment: float) -> bytes:
    if isinstance(event, dict):
        event_id, type_name, data = uuid.uuid4(), DEAD_LETTER_TYPE, event
    else:
        event_id = event.event_id
        type_name, data = encode(event)
    # COPY text format: a backslash is the escape character; orjson emits no raw tab or newline.
    payload = orjson.dumps(data).replace(b"\\", b"\\\\").decode()
    at = (START + timedelta(seconds=moment)).isoformat()
    return f"{stream}\t{version}\t{event_id}\t{type_name}\t{payload}\t{{}}\t{at}\n".encode()


def generate(spec: LogSpec, path: Path) -> tuple[int, int]:
    """Write the log to `path` in time order; return (events, runs created)."""
    rng = random.Random(spec.seed)
    bodies = _Bodies()
    clients = client_names(spec.clients)
    weights = [1 / (i + 1) for i in range(spec.clients)]  # a few big clients, a long tail
    pace = spec.days * 86_400 / spec.runs
    seq = iter(range(1 << 62))
    pending: list[_Pending] = []
    written = runs = dead = 0
    with path.open("wb", buffering=1 << 20) as out:
        for n in range(1 << 62):
            kicked_off = n * pace + rng.uniform(0, pace)
            # Every event of a later run comes after its kickoff minus one second (an orphan).
            while pending and pending[0][0] < kicked_off - 1.0 and written < spec.events:
                moment, _, stream, version, event = heapq.heappop(pending)
                if stream == DEAD_LETTER_STREAM:
                    dead += 1
                    version = dead
                out.write(_copy_line(stream, version, event, moment))
                written += 1
                runs += type(event).__name__ == "RunCreated"
            if written >= spec.events:
                break
            run_rng = random.Random(rng.getrandbits(64))
            run = _Run(
                rng=run_rng, run_id=apify_id(run_rng),
                client_id=rng.choices(clients, weights=weights)[0],
                actor_id=rng.choice(_ACTORS), dataset_id=apify_id(run_rng),
                kicked_off=kicked_off, started=kicked_off + run_rng.uniform(0.5, 3.0),
                posts=run_rng.randrange(1, 400), profiles=run_rng.randrange(1, 30),
            )  # fmt: skip
            for item in _run_events(run, bodies, seq):
                heapq.heappush(pending, item)
            if rng.random() < 0.002:
                letter = _dead_letter(rng, kicked_off)
                heapq.heappush(pending, (kicked_off, next(seq), DEAD_LETTER_STREAM, 0, letter))
    return written, runs


def ensure_log(spec: LogSpec) -> LogFile:
    """The cached log of `spec`, generated first when there is none."""
    path = spec.path()
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        facts = orjson.loads(meta.read_bytes())
        events, runs = facts["events"], facts["runs"]
        return LogFile(path=path, events=events, runs=runs, seconds=0.0, cached=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".partial-{os.getpid()}")
    started = time.perf_counter()
    events, runs = generate(spec, partial)
    seconds = time.perf_counter() - started
    partial.replace(path)
    meta.write_bytes(orjson.dumps({"events": events, "runs": runs, "spec": asdict(spec)}))
    return LogFile(path=path, events=events, runs=runs, seconds=seconds, cached=False)


async def load(dsn: str, log: LogFile) -> float:
    """COPY the log into `events` of the (empty, migrated) database `dsn`; VACUUM ANALYZE it.

    Return the seconds it took. VACUUM sets the hint bits and the visibility map, as a log
    written over weeks has them, so the first read is not also a write.
    """
    started = time.perf_counter()
    conn = await connect(dsn)
    try:
        await conn.copy_to_table("events", source=log.path, columns=COLUMNS, format="text")
        await conn.execute("VACUUM (ANALYZE) events")
    finally:
        await conn.close()
    return time.perf_counter() - started

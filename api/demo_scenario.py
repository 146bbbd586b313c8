"""A simulated day of LinkedIn harvesting, as the requests a real day would send runledger.

Pure and seeded: the same seed gives the same requests (`runledger demo` sends them). Each run
gets its kickoff, Apify's deliveries and a results report, with what real days bring: repeated
deliveries, a CREATED that arrives after the final status (stale), a contradicting final
(invalid transition), resurrections with a second final, deliveries for runs that were never
kicked off (missing run record), one delivery that beats its kickoff and is applied on Apify's
retry, and the console's TEST ping.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

CLIENTS = ("acme-recruiting", "northwind-talent", "globex-sales", "initech-hr")
ACTOR_ID = "Hk7sPq2VnR4mZt8Lc"
USER_ID = "Wq3nT8vKz2LpX9bRa"
# Final statuses and how often a LinkedIn harvest ends in each.
FINALS = (("SUCCEEDED", 0.75), ("FAILED", 0.1), ("ABORTED", 0.05), ("TIMED-OUT", 0.1))
_EVENT_TYPE = {
    "READY": "ACTOR.RUN.CREATED",
    "RUNNING": "ACTOR.RUN.RESURRECTED",
    "SUCCEEDED": "ACTOR.RUN.SUCCEEDED",
    "FAILED": "ACTOR.RUN.FAILED",
    "ABORTED": "ACTOR.RUN.ABORTED",
    "TIMED-OUT": "ACTOR.RUN.TIMED_OUT",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRequest:
    """One request of the day: `kind` is kickoff, webhook or results; `why` is for the reader."""

    kind: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    why: str = ""


def apify_id(rng: random.Random) -> str:
    """An id in Apify's shape: 17 letters and digits."""
    return "".join(rng.choices(string.ascii_letters + string.digits, k=17))


@dataclass(slots=True)
class _Run:
    rng: random.Random
    run_id: str
    client_id: str
    started: datetime
    duration_s: int
    resurrect_count: int = 0

    def kickoff(self, why: str = "kickoff") -> DemoRequest:
        body = {
            "run_id": self.run_id,
            "client_id": self.client_id,
            "actor_id": ACTOR_ID,
            "input": {"profiles": [f"https://www.linkedin.com/in/{self.client_id}-{self.run_id}"]},
            "requested_by": "harvest-scheduler",
        }
        headers = {"Idempotency-Key": f"kickoff-{self.run_id}"}
        return DemoRequest(kind="kickoff", path="/runs", body=body, headers=headers, why=why)

    def delivery(self, status: str, at: datetime, why: str) -> DemoRequest:
        finished = None if status in ("READY", "RUNNING") else at
        resource = {
            "id": self.run_id,
            "actId": ACTOR_ID,
            "userId": USER_ID,
            "status": status,
            "startedAt": _iso(self.started),
            "finishedAt": _iso(finished) if finished else None,
            "statusMessage": _status_message(status),
            "stats": {"resurrectCount": self.resurrect_count, "runTimeSecs": self.duration_s},
            "defaultDatasetId": f"ds{self.run_id[:15]}",
            "usageTotalUsd": round(self.duration_s * 0.0012, 4),
        }
        body = {
            "userId": USER_ID,
            "createdAt": _iso(at),
            "eventType": _EVENT_TYPE[status],
            "eventData": {"actorId": ACTOR_ID, "actorRunId": self.run_id},
            "resource": resource,
        }
        headers = {"X-Apify-Webhook-Dispatch-Id": apify_id(self.rng)}
        return DemoRequest(kind="webhook", path="/webhooks/apify", body=body, headers=headers,
                           why=why)  # fmt: skip

    def results(self) -> DemoRequest:
        posts = self.rng.randint(20, 400)
        metrics = {"posts_harvested": posts, "profiles_scanned": self.rng.randint(3, 40),
                   "errors": self.rng.choice((0, 0, 0, 1, 2))}  # fmt: skip
        return DemoRequest(
            kind="results",
            path=f"/runs/{self.run_id}/results",
            body={"metrics": metrics},
            headers={"Idempotency-Key": f"results-{self.run_id}"},
            why="results report",
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _status_message(status: str) -> str:
    return {
        "READY": "Starting the actor",
        "RUNNING": "Resurrected",
        "SUCCEEDED": "Scraped the posts",
        "FAILED": "LinkedIn answered 999: blocked",
        "ABORTED": "Aborted by the scheduler",
        "TIMED-OUT": "Timed out after 3600 s",
    }[status]


def _final(rng: random.Random) -> str:
    return rng.choices([s for s, _ in FINALS], weights=[w for _, w in FINALS])[0]


def _run_day(run: _Run) -> Iterator[DemoRequest]:
    """One run's requests in the order they reach runledger (not the order they happened)."""
    rng, end = run.rng, run.started + timedelta(seconds=run.duration_s)
    final = _final(rng)
    yield run.kickoff()
    created = run.delivery("READY", run.started, "Apify: run created")
    finished = run.delivery(final, end, f"Apify: run {final.lower()}")
    if rng.random() < 0.15:  # CREATED delayed past the final status: stale
        yield finished
        yield DemoRequest(**{**_fields(created), "why": "Apify: late CREATED (stale)"})
    else:
        yield created
        yield finished
    if rng.random() < 0.3:  # Apify delivers at least once: the same delivery again
        yield DemoRequest(**{**_fields(finished), "why": "Apify: repeated delivery"})
    if final == "SUCCEEDED" and rng.random() < 0.08:  # a contradicting final: invalid
        yield run.delivery("FAILED", end + timedelta(seconds=5), "Apify: FAILED after SUCCEEDED")
    if final != "SUCCEEDED" and rng.random() < 0.4:  # resurrected, and this time it succeeds
        run.resurrect_count += 1
        again = end + timedelta(minutes=10)
        yield run.delivery("RUNNING", again, "Apify: run resurrected")
        run.duration_s += 300
        yield run.delivery("SUCCEEDED", again + timedelta(minutes=5), "Apify: succeeded after all")
        final = "SUCCEEDED"
    if final == "SUCCEEDED":
        yield run.results()


def _fields(request: DemoRequest) -> dict[str, Any]:
    return {"kind": request.kind, "path": request.path, "body": request.body,
            "headers": request.headers}  # fmt: skip


def _orphans(rng: random.Random, day: datetime) -> Iterator[list[DemoRequest]]:
    """Runs started on Apify by hand, never kicked off: rejected at every retry."""
    for hour in (11, 15):
        run = _Run(rng, apify_id(rng), CLIENTS[0], day + timedelta(hours=hour), 240)
        delivery = run.delivery("SUCCEEDED", run.started + timedelta(seconds=240),
                                "Apify: run nobody kicked off")  # fmt: skip
        retry = DemoRequest(**{**_fields(delivery), "why": "Apify: retry of the orphan"})
        yield [delivery, retry]


def _beats_its_kickoff(rng: random.Random, day: datetime) -> list[DemoRequest]:
    """A CREATED delivery that arrives before the kickoff, then Apify's retry applies it."""
    run = _Run(rng, apify_id(rng), CLIENTS[1], day + timedelta(hours=13), 420)
    created = run.delivery("READY", run.started, "Apify: CREATED before the kickoff")
    retry = DemoRequest(**{**_fields(created), "why": "Apify: retry, after the kickoff"})
    finished = run.delivery("SUCCEEDED", run.started + timedelta(seconds=420), "Apify: succeeded")
    return [created, run.kickoff("kickoff, late"), retry, finished, run.results()]


def _test_ping(rng: random.Random) -> DemoRequest:
    body = {"userId": USER_ID, "createdAt": "2026-03-14T09:00:00.000Z", "eventType": "TEST",
            "eventData": {}, "resource": {}}  # fmt: skip
    return DemoRequest(kind="webhook", path="/webhooks/apify", body=body,
                       headers={"X-Apify-Webhook-Dispatch-Id": apify_id(rng)},
                       why="Apify console: test button")  # fmt: skip


def demo_day(*, day: datetime, runs: int, seed: int) -> list[DemoRequest]:
    """The day's requests: each run's own order kept, the runs interleaved as a real day is."""
    rng = random.Random(seed)  # noqa: S311 — a reproducible simulation, not a secret
    lanes: list[list[DemoRequest]] = []
    for i in range(runs):
        started = day + timedelta(hours=8, minutes=i * 25 + rng.randint(0, 20))
        run = _Run(rng, apify_id(rng), CLIENTS[i % len(CLIENTS)], started, rng.randint(90, 1500))
        lanes.append(list(_run_day(run)))
    lanes.extend(_orphans(rng, day))
    lanes.append(_beats_its_kickoff(rng, day))
    lanes.append([_test_ping(rng)])
    day_requests: list[DemoRequest] = []
    while lanes:
        lane = rng.choice(lanes)
        day_requests.append(lane.pop(0))
        if not lane:
            lanes.remove(lane)
    return day_requests

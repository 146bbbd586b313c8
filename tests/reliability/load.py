"""A client that keeps a load of kickoffs, deliveries and results going and records every answer.

Each run gets a plan of operations, each with the id of the one event it must produce:
the kickoff (with an Idempotency-Key), its Apify deliveries in a shuffled order with one of
them sent twice (the repeat has the same dispatch id), and a results report. An operation is
retried with the same key after a 503 or a broken connection — as Apify and the orchestrator
do — until it gets any other answer, so every operation ends with a final answer.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from statemachine import delivery_event_id, kickoff_event_id, results_event_id
from tests.api.deliveries import delivery

API_TOKEN = "reliability-api-token-0123456789"
WEBHOOK_TOKEN = "reliability-webhook-secret-0123456789"
FINALS = ("ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED", "ACTOR.RUN.ABORTED", "ACTOR.RUN.TIMED_OUT")
REQUEST_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 400  # a ceiling for a failing run, not a timing assumption
RETRY_DELAY_S = 0.05
"""The pause before a retry: the client's back-off, shorter than Retry-After to keep runs short."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One logical request, and the event it must leave in the log (exactly once)."""

    kind: str
    run_id: str
    method: str
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    event_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """One attempt of one operation: its status (0 for a broken connection) and when."""

    operation: Operation
    attempt: int
    status: int
    retry_after: str | None
    position: int | None
    latency_s: float
    at: float
    error: str | None = None
    body_text: str | None = None
    """The answer's body, when the load keeps bodies (`Load(keep_bodies=True)`)."""

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


def _json_headers(**extra: str) -> tuple[tuple[str, str], ...]:
    return (("Content-Type", "application/json"), *extra.items())


def kickoff(run_id: str, client_id: str) -> Operation:
    key = f"kick-{run_id}"
    body = {"run_id": run_id, "client_id": client_id, "actor_id": "actor-1", "input": {}}
    return Operation(
        kind="kickoff", run_id=run_id, method="POST", path="/runs", body=orjson.dumps(body),
        headers=_json_headers(Authorization=f"Bearer {API_TOKEN}", **{"Idempotency-Key": key}),
        event_id=kickoff_event_id(run_id, f"key:{key}"),
    )  # fmt: skip


def webhook(event_type: str, run_id: str) -> Operation:
    sent = delivery(event_type, run_id)
    dispatch_id = sent["headers"]["X-Apify-Webhook-Dispatch-Id"]
    headers = {**sent["headers"], "Content-Type": "application/json"}
    return Operation(
        kind="delivery", run_id=run_id, method="POST",
        path=f"/webhooks/apify?token={WEBHOOK_TOKEN}", body=orjson.dumps(sent["body"]),
        headers=tuple(headers.items()), event_id=delivery_event_id(dispatch_id),
    )  # fmt: skip


def results(run_id: str, posts: int) -> Operation:
    key = f"res-{run_id}"
    body = {"metrics": {"posts_harvested": posts, "errors": 0}}
    return Operation(
        kind="results", run_id=run_id, method="POST", path=f"/runs/{run_id}/results",
        body=orjson.dumps(body),
        headers=_json_headers(Authorization=f"Bearer {API_TOKEN}", **{"Idempotency-Key": key}),
        event_id=results_event_id(run_id, f"key:{key}"),
    )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """A run's operations: the kickoff first, then the rest in this (shuffled) order."""

    run_id: str
    first: Operation
    then: tuple[Operation, ...]


def plan_run(rng: random.Random, index: int) -> RunPlan:
    """Kickoff; CREATED and a final status shuffled, one of them sent twice; then results."""
    run_id = f"rel{index:06d}{uuid.uuid4().hex[:8]}"
    deliveries = [webhook("ACTOR.RUN.CREATED", run_id), webhook(rng.choice(FINALS), run_id)]
    deliveries.append(rng.choice(deliveries))  # a duplicate delivery
    rng.shuffle(deliveries)
    return RunPlan(
        run_id=run_id,
        first=kickoff(run_id, f"client-{rng.randint(1, 5)}"),
        then=(*deliveries, results(run_id, rng.randint(0, 500))),
    )


@dataclass(slots=True)
class Load:
    """Runs plans with `concurrency` workers against `base_url()`, recording every attempt."""

    base_url: Callable[[], str]
    plans: Sequence[RunPlan]
    concurrency: int = 8
    keep_bodies: bool = False
    answers: list[Answer] = field(default_factory=list)
    finals: list[Answer] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _next: int = 0

    def count(self, predicate: Callable[[Answer], bool]) -> int:
        return sum(1 for answer in self.answers if predicate(answer))

    async def wait_until(self, condition: Callable[[], bool], *, within_s: float) -> None:
        """Return once `condition()` holds (it is re-evaluated after every answer)."""
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(condition)

    async def run(self) -> None:
        """Send every plan (or stop taking new runs once `stopping` is set)."""
        connector = aiohttp.TCPConnector(limit=self.concurrency, force_close=False)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(self._worker(session) for _ in range(self.concurrency)))

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        while not self.stopping.is_set() and self._next < len(self.plans):
            plan = self.plans[self._next]
            self._next += 1
            if (await self.send(session, plan.first)).is_success:
                for operation in plan.then:
                    await self.send(session, operation)

    async def send(self, session: aiohttp.ClientSession, operation: Operation) -> Answer:
        """Send until the answer is neither a 503 nor a broken connection; return the last."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            answer = await self._attempt(session, operation, attempt)
            await self._record(answer)
            if answer.status not in (0, 503):
                break
            await asyncio.sleep(RETRY_DELAY_S)
        self.finals.append(answer)
        return answer

    async def _attempt(
        self, session: aiohttp.ClientSession, operation: Operation, attempt: int
    ) -> Answer:
        started = time.monotonic()
        common: dict[str, Any] = {"operation": operation, "attempt": attempt, "at": started}
        try:
            async with session.request(
                operation.method, self.base_url() + operation.path,
                data=operation.body, headers=dict(operation.headers),
            ) as response:  # fmt: skip
                raw = await response.read()
                position = _position(raw)
                return Answer(
                    **common, status=response.status, position=position,
                    retry_after=response.headers.get("Retry-After"),
                    latency_s=time.monotonic() - started,
                    body_text=raw.decode(errors="replace") if self.keep_bodies else None,
                )  # fmt: skip
        except (aiohttp.ClientError, TimeoutError) as err:
            return Answer(
                **common, status=0, position=None, retry_after=None,
                latency_s=time.monotonic() - started, error=type(err).__name__,
            )  # fmt: skip

    async def _record(self, answer: Answer) -> None:
        self.answers.append(answer)
        async with self._changed:
            self._changed.notify_all()


def _position(raw: bytes) -> int | None:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    position = parsed.get("position") if isinstance(parsed, dict) else None
    return position if isinstance(position, int) else None


def plans(count: int, *, seed: int) -> list[RunPlan]:
    rng = random.Random(seed)
    return [plan_run(rng, index) for index in range(count)]

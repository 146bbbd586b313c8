"""Writing realistic run histories through the real service, and reading projections back."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from api.service import RunService
from eventstore import EventStore
from projections.run_queries import record_json
from projections.runner import ProjectionRunner
from statemachine import ApplyApifyWebhook, KickoffRun, RecordResults, decode, replay
from tests.builders import apify_delivery

START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
FINALS = ("run-succeeded", "run-failed", "run-aborted", "run-timed-out")


class SteppingClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def write_runs(store: EventStore, run_ids: Sequence[str], *, seed: int = 1) -> int:
    """Kick off each run and send it shuffled, duplicated deliveries and a results report;
    return the log head."""
    rng = random.Random(seed)
    service = RunService(store, SteppingClock())
    for run_id in run_ids:
        await service.execute(
            KickoffRun(
                run_id=run_id, client_id=f"client-{rng.randint(1, 3)}", actor_id="actor",
                task_id=None, input={}, requested_by="test", request_key=f"k-{run_id}",
            )
        )  # fmt: skip
        names = ["run-created", rng.choice(FINALS)]
        deliveries = [apify_delivery(name, run_id=run_id) for name in names]
        for delivery in rng.sample(deliveries * 2, k=4):
            await service.execute(ApplyApifyWebhook(run_id=run_id, delivery=delivery))
        await service.execute(
            RecordResults(
                run_id=run_id, metrics=(("posts", float(rng.randint(0, 99))),), details=None,
                request_key=f"r-{run_id}", received={},
            )
        )  # fmt: skip
    return await store.head_position()


async def replayed_records(store: EventStore, run_ids: Sequence[str]) -> dict[str, dict]:  # type: ignore[type-arg]
    """What run_records must hold: each run's stream replayed from scratch."""
    records = {}
    for run_id in run_ids:
        stream = await store.read_stream(f"run-{run_id}")
        state = replay(decode(e.event_id, e.type, e.data) for e in stream)
        assert state is not None
        records[run_id] = {**state.to_record(), "version": stream[-1].version}
    return records


async def projected_records(pool: asyncpg.Pool) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = await pool.fetch("SELECT * FROM run_records")
    return {row["run_id"]: record_json(row) for row in rows}


@contextlib.asynccontextmanager
async def running(*runners: ProjectionRunner) -> AsyncIterator[None]:
    """Run the runners as tasks for the block; cancel and await them after it."""
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

"""A large backlog in the log, written as the service would write it but without HTTP.

Each run's commands are decided by the same state machine the service uses, and its events
appended in one call, many runs at once (the store's group commit): tens of thousands of
events in seconds, for the projection runners to chew through.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from eventstore import NO_STREAM, EventStore, NewEvent
from statemachine import (
    ApplyApifyWebhook,
    Command,
    Event,
    KickoffRun,
    RecordResults,
    decide,
    encode,
    run_stream,
)
from tests.builders import FINAL_FIXTURES, apify_delivery

START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
CONCURRENT_APPENDS = 64


def run_commands(rng: random.Random, run_id: str) -> list[Command]:
    """Kickoff, CREATED and a final status (shuffled, one repeated), results."""
    names = ["run-created", rng.choice(FINAL_FIXTURES)]
    names.append(rng.choice(names))
    rng.shuffle(names)
    deliveries: list[Command] = [
        ApplyApifyWebhook(run_id=run_id, delivery=apify_delivery(name, run_id=run_id))
        for name in names
    ]
    return [
        KickoffRun(
            run_id=run_id, client_id=f"client-{rng.randint(1, 5)}", actor_id="actor",
            task_id=None, input={}, requested_by="backlog", request_key=f"key:k-{run_id}",
        ),
        *deliveries,
        RecordResults(
            run_id=run_id, metrics=(("posts_harvested", float(rng.randint(0, 500))),),
            details=None, request_key=f"key:r-{run_id}", received={},
        ),
    ]  # fmt: skip


def decided(commands: list[Command], start: datetime) -> list[Event]:
    history: list[Event] = []
    for step, command in enumerate(commands):
        history += decide(history, command, now=start + timedelta(seconds=step))
    return history


async def write_backlog(store: EventStore, runs: int, *, seed: int) -> int:
    """Write `runs` runs (about 4 events each); return the number of events written."""
    rng = random.Random(seed)
    streams = []
    for index in range(runs):
        run_id = f"bl{seed}x{index:07d}"
        events = decided(run_commands(rng, run_id), START + timedelta(minutes=index))
        streams.append((run_stream(run_id), events))
    written = 0
    for chunk in range(0, len(streams), CONCURRENT_APPENDS):
        batch = streams[chunk : chunk + CONCURRENT_APPENDS]
        await asyncio.gather(*(_append(store, stream, events) for stream, events in batch))
        written += sum(len(events) for _, events in batch)
    return written


async def _append(store: EventStore, stream: str, events: list[Event]) -> None:
    new = []
    for event in events:
        event_type, data = encode(event)
        new.append(NewEvent(event_id=event.event_id, type=event_type, data=data))
    await store.append(stream, new, expected_version=NO_STREAM)

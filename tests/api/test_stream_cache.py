"""RunService's stream cache: decisions from cached (slim) streams equal those from the log,
and a run another process wrote meanwhile is read again, never decided from a stale copy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from api.service import MAX_ATTEMPTS, Outcome, RunContendedError, RunService
from api.stream_cache import StreamCache
from eventstore import AppendResult, EventStore, ExpectedVersion, NewEvent
from statemachine import Command, RejectionReason, decide, replay, slim
from tests.builders import history_of, kickoff, record_results, webhook

START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
RUN = "cAcHeRuN000000001"


class SteppingClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_decisions_from_slim_histories_equal_decisions_from_full_ones() -> None:
    history = history_of(
        kickoff(run_id=RUN),
        webhook("run-created", run_id=RUN),
        webhook("run-succeeded", run_id=RUN),
        webhook("run-failed", run_id=RUN),  # rejected: stale after SUCCEEDED
        webhook("run-resurrected", run_id=RUN),
        record_results(run_id=RUN),
    )
    slimmed = [slim(event) for event in history]
    now = START + timedelta(hours=1)
    nexts: list[Command] = [
        kickoff(run_id=RUN),
        kickoff(run_id=RUN, request_key="another"),
        webhook("run-created", run_id=RUN),
        webhook("run-succeeded", run_id=RUN, resurrect_count=1),
        webhook("run-aborted", run_id=RUN, resurrect_count=0),
        record_results(run_id=RUN, request_key="results-key-2"),
    ]
    assert replay(slimmed) == replay(history)
    assert [e.event_id for e in slimmed] == [e.event_id for e in history]
    for command in nexts:
        assert decide(slimmed, command, now=now) == decide(history, command, now=now)


async def test_a_run_written_by_another_process_is_read_again_not_decided_from_the_cache(
    store: EventStore,
) -> None:
    here, elsewhere = RunService(store, SteppingClock()), RunService(store, SteppingClock())
    await here.execute(kickoff(run_id=RUN))  # `here` caches the run at version 1
    started = await elsewhere.execute(webhook("run-created", run_id=RUN))
    assert started.outcome is Outcome.APPLIED

    succeeded = await here.execute(webhook("run-succeeded", run_id=RUN))

    assert succeeded.outcome is Outcome.APPLIED
    assert succeeded.version == 3
    assert succeeded.state is not None
    assert succeeded.state.started_at is not None  # decided with elsewhere's RunStarted
    stream = await store.read_stream(f"run-{RUN}")
    assert [e.type for e in stream] == ["RunCreated", "RunStarted", "RunSucceeded"]


async def test_a_delivery_seen_elsewhere_is_a_duplicate_here_despite_the_cache(
    store: EventStore,
) -> None:
    here, elsewhere = RunService(store, SteppingClock()), RunService(store, SteppingClock())
    await here.execute(kickoff(run_id=RUN))
    first = await elsewhere.execute(webhook("run-created", run_id=RUN, dispatch_id="dsp-1"))

    again = await here.execute(webhook("run-created", run_id=RUN, dispatch_id="dsp-1"))

    assert again.outcome is Outcome.DUPLICATE
    assert again.position == first.position
    assert again.version == 2
    assert len(await store.read_stream(f"run-{RUN}")) == 2


async def test_a_kickoff_repeated_after_the_run_left_the_cache_answers_as_a_repeat(
    store: EventStore,
) -> None:
    service = RunService(store, SteppingClock(), cached_runs=0)
    created = await service.execute(kickoff(run_id=RUN))

    again = await service.execute(kickoff(run_id=RUN))

    assert again.outcome is Outcome.DUPLICATE
    assert (again.position, again.version) == (created.position, 1)
    assert len(await store.read_stream(f"run-{RUN}")) == 1


async def test_a_different_kickoff_of_a_run_created_elsewhere_is_a_duplicate_creation(
    store: EventStore,
) -> None:
    here, elsewhere = RunService(store, SteppingClock()), RunService(store, SteppingClock())
    await elsewhere.execute(kickoff(run_id=RUN))

    other = await here.execute(kickoff(run_id=RUN, request_key="a-different-request"))

    assert other.outcome is Outcome.REJECTED
    assert other.reason is RejectionReason.DUPLICATE_CREATION
    stream = await store.read_stream(f"run-{RUN}")
    assert [e.type for e in stream] == ["RunCreated", "UpdateRejected"]
    assert other.version == 2


def test_the_cache_keeps_the_most_recently_used_runs_and_forgets_the_oldest() -> None:
    cache = StreamCache(2)
    histories = {run: history_of(kickoff(run_id=run)) for run in ("run-a", "run-b", "run-c")}
    cache.put("run-a", histories["run-a"])
    cache.put("run-b", histories["run-b"])
    assert cache.get("run-a") is not None  # now the most recently used

    cache.put("run-c", histories["run-c"])

    assert cache.get("run-b") is None
    assert cache.get("run-a") == [slim(e) for e in histories["run-a"]]
    assert len(cache) == 2
    cache.forget("run-a")
    assert cache.get("run-a") is None


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache = StreamCache(0)
    cache.put("run-a", history_of(kickoff(run_id="run-a")))
    assert cache.get("run-a") is None


async def test_a_repeat_answers_the_current_record_when_another_process_moved_the_run_on(
    store: EventStore,
) -> None:
    here, elsewhere = RunService(store, SteppingClock()), RunService(store, SteppingClock())
    await here.execute(kickoff(run_id=RUN))  # cached here at version 1
    await elsewhere.execute(webhook("run-created", run_id=RUN))
    await elsewhere.execute(webhook("run-succeeded", run_id=RUN))

    again = await here.execute(kickoff(run_id=RUN))
    fresh = await RunService(store, SteppingClock(), cached_runs=0).execute(kickoff(run_id=RUN))

    assert again.outcome is fresh.outcome is Outcome.DUPLICATE
    assert (again.version, again.record()) == (fresh.version, fresh.record())


class _ContendedStore(EventStore):
    """The real store, but before each append to the run another process writes it first."""

    def __init__(self, pool: asyncpg.Pool, elsewhere: RunService) -> None:
        super().__init__(pool)
        self._elsewhere = elsewhere
        self.writes = 0

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: ExpectedVersion
    ) -> AppendResult:
        if stream_id == f"run-{RUN}":
            self.writes += 1
            await self._elsewhere.execute(record_results(run_id=RUN, request_key=f"k{self.writes}"))
        return await super().append(stream_id, events, expected_version=expected_version)


async def test_a_run_that_changes_at_every_attempt_is_contended_not_a_crash(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    elsewhere = RunService(store, SteppingClock())
    await elsewhere.execute(kickoff(run_id=RUN))
    async with _ContendedStore(pool, elsewhere) as contended:
        here = RunService(contended, SteppingClock())
        with pytest.raises(RunContendedError):
            await here.execute(webhook("run-created", run_id=RUN))
        assert contended.writes == MAX_ATTEMPTS  # it retried, each time on a fresh read
    types = [r.type for r in await store.read_stream(f"run-{RUN}")]
    assert types == ["RunCreated"] + ["ResultsRecorded"] * MAX_ATTEMPTS  # nothing of its own

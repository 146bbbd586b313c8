"""A run's timeline: both of its streams in log order, folded by the state machine, cut at as_of.

The log is written row by row with recording times of our choosing (the events decided by the
real `decide`), so that `as_of` by time is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from eventstore import EventStore
from projections.causes import Cause
from projections.timeline import (
    RECORD_FIELDS,
    AsOf,
    InvalidAsOfError,
    parse_as_of,
    read_timeline,
)
from statemachine import Command, Event, decide, encode, replay, run_stream, stream_for
from tests.builders import (
    apify_delivery,
    kickoff,
    new_run_id,
    record_results,
    run_created,
    webhook,
)

START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
RECORDING_DELAY = timedelta(milliseconds=250)
"""How long after deciding an event it is recorded, in these logs."""

_INSERT = """
INSERT INTO events (stream_id, version, event_id, event_type, data, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6)
"""


def every_kind_of_command(run_id: str) -> list[Command]:
    """An orphan delivery, the kickoff, a duplicate kickoff, the orphan's retry applied, a final
    status, a stale and an invalid delivery, a resurrection and its end, results, repeats."""
    return [
        webhook("run-created", run_id=run_id),  # before the kickoff: missing_run_record
        kickoff(run_id=run_id),
        kickoff(run_id=run_id, request_key="another-request"),  # duplicate_creation
        webhook("run-created", run_id=run_id),  # Apify's retry of the orphan: applied
        webhook("run-succeeded", run_id=run_id),
        webhook("run-created", run_id=run_id, dispatch_id=f"late-{run_id}"),  # stale
        webhook("run-failed", run_id=run_id),  # invalid_transition
        webhook("run-resurrected", run_id=run_id),
        webhook("run-succeeded", run_id=run_id, resurrect_count=1),
        record_results(run_id=run_id),
        kickoff(run_id=run_id),  # the same kickoff again: no event
        webhook("run-succeeded", run_id=run_id),  # the same delivery again: no event
    ]


def decided(
    commands: Sequence[Command], *, start: datetime = START
) -> list[tuple[str, int, Event]]:
    """(stream, version, event) for each event `decide` makes of `commands`, one second apart."""
    history: list[Event] = []
    others: dict[str, int] = {}
    out: list[tuple[str, int, Event]] = []
    for step, command in enumerate(commands):
        for event in decide(history, command, now=start + timedelta(seconds=step)):
            stream = stream_for(event)
            if stream == run_stream(event.run_id):
                history.append(event)
                out.append((stream, len(history), event))
            else:
                others[stream] = others.get(stream, 0) + 1
                out.append((stream, others[stream], event))
    return out


async def insert_log(pool: asyncpg.Pool, log: Sequence[tuple[str, int, Event]]) -> list[int]:
    """Append the rows in order, each recorded RECORDING_DELAY after its event; return positions."""
    positions = []
    async with pool.acquire() as conn:
        for stream, version, event in log:
            event_type, data = encode(event)
            await conn.execute(
                _INSERT, stream, version, event.event_id, event_type, data,
                event.at + RECORDING_DELAY,
            )  # fmt: skip
            positions.append(await conn.fetchval("SELECT max(position) FROM events"))
    return positions


async def write_every_kind(pool: asyncpg.Pool, run_id: str) -> list[int]:
    return await insert_log(pool, decided(every_kind_of_command(run_id)))


async def test_timeline_shows_both_streams_in_log_order_one_step_per_event(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    positions = await write_every_kind(pool, run_id)
    timeline = await read_timeline(store, run_id)
    assert timeline is not None
    summary = [
        (s.position, s.stream, s.version, s.type, s.status_before, s.status_after,
         None if s.rejection is None else s.rejection.reason)
        for s in timeline.steps
    ]  # fmt: skip
    run, orphan = f"run-{run_id}", f"orphan-{run_id}"
    assert summary == [
        (positions[0], orphan, 1, "UpdateRejected", None, None, "missing_run_record"),
        (positions[1], run, 1, "RunCreated", None, "created", None),
        (positions[2], run, 2, "UpdateRejected", "created", "created", "duplicate_creation"),
        (positions[3], run, 3, "RunStarted", "created", "running", None),
        (positions[4], run, 4, "RunSucceeded", "running", "succeeded", None),
        (positions[5], run, 5, "UpdateRejected", "succeeded", "succeeded", "stale"),
        (positions[6], run, 6, "UpdateRejected", "succeeded", "succeeded", "invalid_transition"),
        (positions[7], run, 7, "RunResurrected", "succeeded", "running", None),
        (positions[8], run, 8, "RunSucceeded", "running", "succeeded", None),
        (positions[9], run, 9, "ResultsRecorded", "succeeded", "succeeded", None),
    ]


async def test_orphan_rejections_are_shown_but_not_folded_into_the_run(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    log = decided(every_kind_of_command(run_id))
    await insert_log(pool, log)
    timeline = await read_timeline(store, run_id)
    assert timeline is not None
    orphan = timeline.steps[0]
    assert (orphan.in_history, orphan.status_before, orphan.status_after, orphan.changes) == (
        False, None, None, {},
    )  # fmt: skip
    run_events = [event for stream, _, event in log if stream == f"run-{run_id}"]
    state = replay(run_events)
    assert state is not None
    assert timeline.record() == {**state.to_record(), "version": len(run_events)}


async def test_an_orphan_recorded_after_the_kickoff_changes_nothing(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    # The kickoff and an update decided before it (so rejected as an orphan) commit the other
    # way round: the orphan lands after RunCreated in the log.
    orphan, created = decided([webhook("run-created", run_id=run_id), kickoff(run_id=run_id)])
    await insert_log(pool, [created, orphan])
    timeline = await read_timeline(store, run_id)
    assert timeline is not None
    assert [(s.type, s.status_before, s.status_after, s.in_history) for s in timeline.steps] == [
        ("RunCreated", None, "created", True),
        ("UpdateRejected", "created", "created", False),
    ]
    record = timeline.record()
    assert record is not None
    assert (record["event_count"], record["version"]) == (1, 1)


async def test_each_step_names_the_command_that_caused_it(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    await write_every_kind(pool, run_id)
    timeline = await read_timeline(store, run_id)
    assert timeline is not None
    created = apify_delivery("run-created", run_id=run_id)
    late = apify_delivery("run-created", run_id=run_id, dispatch_id=f"late-{run_id}")
    assert [s.cause for s in timeline.steps[:6]] == [
        Cause(
            command="ApplyApifyWebhook", apify_event_type="ACTOR.RUN.CREATED",
            dispatch_id=created.dispatch_id, apify_created_at=created.body["createdAt"],
            delivery_key=created.delivery_key,
        ),
        Cause(command="KickoffRun", request_key="kickoff-key-1"),
        Cause(command="KickoffRun", request_key="another-request"),
        Cause(
            command="ApplyApifyWebhook", apify_event_type="ACTOR.RUN.CREATED",
            dispatch_id=created.dispatch_id, apify_created_at=created.body["createdAt"],
            delivery_key=created.delivery_key,
        ),
        timeline.steps[4].cause,
        Cause(
            command="ApplyApifyWebhook", apify_event_type="ACTOR.RUN.CREATED",
            dispatch_id=late.dispatch_id, apify_created_at=late.body["createdAt"],
            delivery_key=late.delivery_key,
        ),
    ]  # fmt: skip
    assert timeline.steps[9].cause == Cause(
        command="RecordResults",
        request_key="results-key-1",
        metrics={"errors": 0.0, "posts_harvested": 184.0},
    )


async def test_a_rejection_step_carries_its_reason_and_what_was_received(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    await write_every_kind(pool, run_id)
    timeline = await read_timeline(store, run_id)
    assert timeline is not None
    duplicate, stale = timeline.steps[2].rejection, timeline.steps[5].rejection
    assert duplicate is not None
    assert stale is not None
    assert (duplicate.reason, duplicate.received) == (
        "duplicate_creation",
        kickoff(run_id=run_id, request_key="another-request").received(),
    )
    late = apify_delivery("run-created", run_id=run_id, dispatch_id=f"late-{run_id}")
    assert (stale.reason, stale.received) == ("stale", late.delivery)
    assert "older status than succeeded" in stale.message


async def test_an_applied_step_lists_the_fields_it_changed(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    await write_every_kind(pool, run_id)
    timeline = await read_timeline(store, run_id)
    assert timeline is not None
    started = timeline.steps[3]
    sent = apify_delivery("run-created", run_id=run_id)
    assert sent.started_at is not None
    assert sent.status_message is None  # the fixture's CREATED has no message: not a change
    assert started.changes == {
        "status": ("created", "running"),
        "apify_status": (None, sent.status),
        "started_at": (None, sent.started_at.isoformat()),
        "dataset_id": (None, sent.dataset_id),
        "usage_usd": (None, sent.usage_usd),
        "event_count": (2, 3),
        # a rejection (the duplicate kickoff) counts as an event but does not touch updated_at
        "updated_at": (
            (START + timedelta(seconds=1)).isoformat(),
            (START + timedelta(seconds=3)).isoformat(),
        ),
    }


async def test_as_of_a_position_stops_there_and_shows_the_record_as_it_was(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    positions = await write_every_kind(pool, run_id)
    timeline = await read_timeline(store, run_id, as_of=AsOf(position=positions[4]))
    assert timeline is not None
    assert [s.position for s in timeline.steps] == positions[:5]
    record = timeline.record()
    assert record is not None
    assert (record["status"], record["version"], record["event_count"]) == ("succeeded", 4, 4)


async def test_as_of_a_time_includes_the_events_recorded_at_or_before_it(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    positions = await write_every_kind(pool, run_id)
    resurrected_at = START + timedelta(seconds=7) + RECORDING_DELAY  # the 8th step's recording
    at_it = await read_timeline(store, run_id, as_of=AsOf(time=resurrected_at))
    just_before = await read_timeline(
        store, run_id, as_of=AsOf(time=resurrected_at - timedelta(microseconds=1))
    )
    assert at_it is not None
    assert just_before is not None
    assert [s.position for s in at_it.steps] == positions[:8]
    assert [s.position for s in just_before.steps] == positions[:7]
    assert (at_it.version, at_it.state and at_it.state.status) == (7, "running")
    assert (just_before.version, just_before.state and just_before.state.status) == (
        6,
        "succeeded",
    )


async def test_as_of_before_the_kickoff_shows_no_record(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    positions = await write_every_kind(pool, run_id)
    timeline = await read_timeline(store, run_id, as_of=AsOf(position=positions[0]))
    assert timeline is not None
    assert ([s.type for s in timeline.steps], timeline.record()) == (["UpdateRejected"], None)


async def test_unknown_run_has_no_timeline(pool: asyncpg.Pool, store: EventStore) -> None:
    await write_every_kind(pool, new_run_id())
    assert await read_timeline(store, new_run_id()) is None


async def test_a_stream_not_beginning_with_run_created_shows_the_error_in_its_step(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    _, (_, _, started) = decided([kickoff(run_id=run_id), webhook("run-created", run_id=run_id)])
    await insert_log(pool, [(f"run-{run_id}", 1, started)])  # no RunCreated before it
    timeline = await read_timeline(store, run_id)
    assert timeline is not None
    assert [(s.type, s.status_after, s.error) for s in timeline.steps] == [
        ("RunStarted", None, f"run {run_id}: the first event is RunStarted, not RunCreated")
    ]
    assert timeline.record() is None


def test_as_of_is_a_position_or_a_time_with_its_zone() -> None:
    assert parse_as_of("42") == AsOf(position=42)
    assert parse_as_of("2026-03-14T09:00:05Z") == AsOf(
        time=datetime(2026, 3, 14, 9, 0, 5, tzinfo=UTC)
    )
    assert parse_as_of("2026-03-14T10:00:05+01:00") == AsOf(
        time=datetime(2026, 3, 14, 9, 0, 5, tzinfo=UTC)
    )


@pytest.mark.parametrize("given", ["", "yesterday", "-3", "2026-03-14T09:00:05", "1" * 19])
def test_as_of_refuses_anything_else(given: str) -> None:
    with pytest.raises(InvalidAsOfError):
        parse_as_of(given)


def test_steps_compare_every_field_of_the_run_record() -> None:
    state = replay([run_created()])
    assert state is not None
    assert [name for name, _ in RECORD_FIELDS] == list(state.to_record())


@pytest.mark.parametrize(
    ("final", "event_type", "status"),
    [
        ("run-succeeded", "RunSucceeded", "succeeded"),
        ("run-failed", "RunFailed", "failed"),
        ("run-aborted", "RunAborted", "aborted"),
        ("run-timed-out", "RunTimedOut", "timed_out"),
    ],
)
async def test_every_final_status_is_a_step_from_running(
    pool: asyncpg.Pool, store: EventStore, final: str, event_type: str, status: str
) -> None:
    run_id = new_run_id()
    commands: list[Command] = [
        kickoff(run_id=run_id),
        webhook("run-created", run_id=run_id),
        webhook(final, run_id=run_id),
    ]
    await insert_log(pool, decided(commands))
    timeline = await read_timeline(store, run_id)
    assert timeline is not None
    assert [(s.type, s.status_before, s.status_after) for s in timeline.steps] == [
        ("RunCreated", None, "created"),
        ("RunStarted", "created", "running"),
        (event_type, "running", status),
    ]

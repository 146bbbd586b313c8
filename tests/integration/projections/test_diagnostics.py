"""The diagnostics projections: missing_records, rejections and dead_letters, on real histories.

Histories are written through api/service.py's RunService (the code the HTTP handlers call),
projected by the real runner, and compared with the log or rebuilt from it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from api import service as api_service
from api.service import RunService
from eventstore import ANY, EventStore, NewEvent
from projections import dead_letters
from projections.base import Projection
from projections.dead_letters import DeadLettersProjection
from projections.missing_records import MissingRecordsProjection
from projections.rebuild import rebuild
from projections.rejections import RejectionsProjection
from projections.runner import ProjectionRunner
from projections.supervisor import ProjectionSupervisor
from statemachine import UpdateRejected, decide, decode, encode, orphan_stream
from tests.builders import NOW, kickoff, new_run_id, record_results, webhook

from .helpers import SteppingClock, running, write_runs

BOUND_S = 20.0  # a ceiling for a failing test, not a timing assumption
PAGE_SIZES = [1, 1000]


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    orphan: str
    """Got two attempts of a SUCCEEDED delivery and a results report, then was created."""
    never: str
    """Got a CREATED delivery and was never created."""
    run: str
    """Created normally, then a stale, an invalid and a duplicate-creation rejection."""


async def write_diagnostic_history(store: EventStore) -> History:
    service = RunService(store, SteppingClock())
    history = History(orphan=new_run_id(), never=new_run_id(), run=new_run_id())
    succeeded = webhook("run-succeeded", run_id=history.orphan, dispatch_id="orphan-success")
    await service.execute(succeeded)
    await service.execute(record_results(run_id=history.orphan))
    await service.execute(succeeded)  # Apify's retry: a second attempt, recorded again
    await service.execute(webhook("run-created", run_id=history.never))
    await service.execute(kickoff(run_id=history.run))
    await service.execute(webhook("run-succeeded", run_id=history.run))
    await service.execute(webhook("run-created", run_id=history.run))  # stale
    await service.execute(webhook("run-failed", run_id=history.run))  # invalid_transition
    await service.execute(kickoff(run_id=history.run, request_key="another"))  # duplicate
    await service.execute(kickoff(run_id=history.orphan))  # resolves the orphan
    await service.execute(succeeded)  # and Apify's next retry is applied
    await service.dead_letter(
        reason="unknown_event_type",
        message="unknown eventType 'ACTOR.RUN.EXPLODED'",
        body=b'{"eventType": "ACTOR.RUN.EXPLODED"}',
        parsed={"eventType": "ACTOR.RUN.EXPLODED"},
        headers={"X-Apify-Webhook-Dispatch-Id": "dl-1"},
        details={"eventType": "one of …"},
    )
    await service.dead_letter(
        reason="invalid_json",
        message="the body is not valid JSON",
        body=b"\xff\xfe not json",
        parsed=None,
        headers={},
    )
    return history


async def project(
    pool: asyncpg.Pool, store: EventStore, projection: Projection, *, page_size: int = 1000
) -> None:
    """Run `projection`'s live runner until it has applied the whole log."""
    supervisor = ProjectionSupervisor(pool, store, [])
    async with running(ProjectionRunner(pool, store, projection, page_size=page_size)):
        head = await store.head_position()
        assert await supervisor.wait_for([projection.name], head, within_s=BOUND_S)


async def table(pool: asyncpg.Pool, name: str, key: str) -> list[dict[str, Any]]:
    assert name in ("missing_records", "rejections", "dead_letters")
    return [dict(row) for row in await pool.fetch(f"SELECT * FROM {name} ORDER BY {key}")]


async def orphan_attempts(store: EventStore, run_id: str) -> list[Any]:
    return await store.read_stream(orphan_stream(run_id))


@pytest.mark.parametrize("page_size", PAGE_SIZES)
async def test_missing_record_counts_attempts_and_is_resolved_when_the_run_is_created_later(
    pool: asyncpg.Pool, store: EventStore, page_size: int
) -> None:
    history = await write_diagnostic_history(store)
    await project(pool, store, MissingRecordsProjection(), page_size=page_size)
    rows = {row["run_id"]: row for row in await table(pool, "missing_records", "run_id")}
    assert set(rows) == {history.orphan, history.never}  # a normal creation adds no row
    attempts = await orphan_attempts(store, history.orphan)
    [created] = (await store.read_stream(f"run-{history.orphan}"))[:1]
    first, last = (decode(e.event_id, e.type, e.data) for e in (attempts[0], attempts[-1]))
    assert rows[history.orphan] == {
        "run_id": history.orphan,
        "first_seen": first.at,
        "last_seen": last.at,
        "first_position": attempts[0].position,
        "last_position": attempts[-1].position,
        "attempts": 3,
        "event_types": ["ACTOR.RUN.SUCCEEDED", "RecordResults"],
        "last_delivery": {
            "event_type": "ACTOR.RUN.SUCCEEDED",
            "command": "ApplyApifyWebhook:ACTOR.RUN.SUCCEEDED",
            "at": last.at.isoformat(),
            "position": attempts[-1].position,
            "delivery_key": "orphan-success",
            "request_key": None,
            "apify_event_type": "ACTOR.RUN.SUCCEEDED",
            "dispatch_id": "orphan-success",
            "apify_status": "SUCCEEDED",
            "apify_created_at": "2026-03-14T09:42:17.508Z",
            "resurrect_count": 0,
        },
        "resolved_at": decode(created.event_id, created.type, created.data).at,
        "resolved_position": created.position,
    }
    never = rows[history.never]
    assert (never["attempts"], never["event_types"], never["resolved_at"]) == (
        1,
        ["ACTOR.RUN.CREATED"],
        None,
    )


@pytest.mark.parametrize("page_size", PAGE_SIZES)
async def test_orphan_attempt_logged_just_after_the_creation_is_shown_resolved(
    pool: asyncpg.Pool, store: EventStore, page_size: int
) -> None:
    """Another process read the run stream as empty, then appended after the kickoff."""
    run_id = new_run_id()
    service = RunService(store, SteppingClock())
    creation = await service.execute(kickoff(run_id=run_id))
    await write_runs(store, [new_run_id()])  # other traffic between, so batches differ
    [late] = decide([], webhook("run-failed", run_id=run_id), now=NOW)
    assert isinstance(late, UpdateRejected)
    event_type, data = encode(late)
    await store.append(
        orphan_stream(run_id),
        [NewEvent(event_id=late.event_id, type=event_type, data=data)],
        expected_version=ANY,
    )
    await project(pool, store, MissingRecordsProjection(), page_size=page_size)
    [row] = await table(pool, "missing_records", "run_id")
    assert (row["run_id"], row["attempts"], row["resolved_position"]) == (
        run_id,
        1,
        creation.position,
    )
    assert row["resolved_at"] is not None


@pytest.mark.parametrize("page_size", PAGE_SIZES)
async def test_rejections_hold_every_update_rejected_of_the_log(
    pool: asyncpg.Pool, store: EventStore, page_size: int
) -> None:
    history = await write_diagnostic_history(store)
    await write_runs(store, [new_run_id() for _ in range(6)])  # shuffled: stale rejections
    await project(pool, store, RejectionsProjection(), page_size=page_size)
    logged = [
        (e.position, decode(e.event_id, e.type, e.data))
        for e in await store.read_all(after_position=0, limit=10_000)
        if e.type == "UpdateRejected"
    ]
    expected = [
        (position, event.run_id, event.reason.value, event.command, event.at)
        for position, event in logged
        if isinstance(event, UpdateRejected)
    ]
    rows = await table(pool, "rejections", "position")
    assert [
        (r["position"], r["run_id"], r["reason"], r["command"], r["rejected_at"]) for r in rows
    ] == expected
    mine = [(r["reason"], r["status_before"]) for r in rows if r["run_id"] == history.run]
    assert mine == [
        ("stale", "succeeded"),
        ("invalid_transition", "succeeded"),
        ("duplicate_creation", "succeeded"),
    ]
    reasons = {r["reason"] for r in rows if r["run_id"] in (history.orphan, history.never)}
    assert reasons == {"missing_run_record"}


async def test_dead_letters_keep_each_delivery_as_json_or_as_base64(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await write_diagnostic_history(store)
    await project(pool, store, DeadLettersProjection())
    rows = await table(pool, "dead_letters", "position")
    kept = [
        {k: v for k, v in row.items() if k not in ("position", "event_id", "received_at")}
        for row in rows
    ]
    assert kept == [
        {
            "reason": "unknown_event_type",
            "message": "unknown eventType 'ACTOR.RUN.EXPLODED'",
            "details": {"eventType": "one of …"},
            "headers": {"X-Apify-Webhook-Dispatch-Id": "dl-1"},
            "body": {"eventType": "ACTOR.RUN.EXPLODED"},
            "body_base64": None,
            "body_preview": None,
        },
        {
            "reason": "invalid_json",
            "message": "the body is not valid JSON",
            "details": None,
            "headers": {},
            "body": None,
            "body_base64": base64.b64encode(b"\xff\xfe not json").decode(),
            "body_preview": "\ufffd\ufffd not json",
        },
    ]
    logged = await store.read_stream(dead_letters.DEAD_LETTER_STREAM)
    assert [(r["position"], r["event_id"]) for r in rows] == [
        (e.position, e.event_id) for e in logged
    ]


def test_dead_letter_stream_and_type_are_the_ones_the_service_writes() -> None:
    assert (dead_letters.DEAD_LETTER_STREAM, dead_letters.DEAD_LETTER_TYPE) == (
        api_service.DEAD_LETTER_STREAM,
        api_service.DEAD_LETTER_TYPE,
    )


DIAGNOSTICS: Sequence[tuple[Projection, str]] = (
    (MissingRecordsProjection(), "run_id"),
    (RejectionsProjection(), "position"),
    (DeadLettersProjection(), "position"),
)


@pytest.mark.parametrize(("projection", "key"), DIAGNOSTICS, ids=lambda p: getattr(p, "name", p))
async def test_rebuild_gives_the_rows_the_live_runner_built(
    pool: asyncpg.Pool, store: EventStore, projection: Projection, key: str
) -> None:
    await write_diagnostic_history(store)
    await write_runs(store, [new_run_id() for _ in range(4)])
    [name] = projection.tables
    await project(pool, store, projection, page_size=3)
    live = await table(pool, name, key)
    assert live
    result = await rebuild(pool, store, projection, page_size=5)
    assert result.position == await store.head_position()
    assert await table(pool, name, key) == live

"""Scenario 5: the client disconnects in the middle of a request.

Against a real `runledger serve`, over a raw socket, for each command (kickoff, an Apify
delivery, a results report) the client goes away (FIN or reset):
- after the headers and part of the body: the server cannot have the command, so the log must
  hold nothing of it (no event, no dead letter of a truncated body);
- after the whole body, before reading the answer: the server may or may not have appended the
  event, but the log holds either the whole event or nothing.
Each time, the same request is then retried (same Idempotency-Key / dispatch id) by an ordinary
client: it must get a 2xx and the log must hold exactly one event for it, at the answered
position, in a stream whose versions run 1..n without a gap.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest

from eventstore.pool import connect

from .conftest import checkpoints_at_head
from .ledger import diagnostics_problems, projection_problems
from .load import Answer, Load, Operation, kickoff, results, webhook
from .processes import BOUND_S, Served
from .raw import access_line, close, request_head
from .raw import connect as raw_connect
from .report import show

REPEATS = 3  # each combination of command and way of leaving, with fresh runs
_EVENTS = """
SELECT stream_id, version, event_id, event_type, position FROM events
 WHERE stream_id = ANY($1::text[]) ORDER BY position
"""
_DEAD_LETTERS = "SELECT count(*) FROM events WHERE stream_id = 'dead-letters'"


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    make: Callable[[str], Operation]
    needs_a_run: bool


COMMANDS = [
    Command("kickoff", lambda run_id: kickoff(run_id, "client-d"), needs_a_run=False),
    Command("delivery", lambda run_id: webhook("ACTOR.RUN.CREATED", run_id), needs_a_run=True),
    Command("results", lambda run_id: results(run_id, 7), needs_a_run=True),
]


async def stream_events(conn: asyncpg.Connection, run_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(_EVENTS, [f"run-{run_id}", f"orphan-{run_id}"]))


def contiguous(events: list[asyncpg.Record]) -> bool:
    in_run = [e["version"] for e in events if e["stream_id"].startswith("run-")]
    return in_run == list(range(1, len(in_run) + 1)) and len(in_run) == len(events)


async def prepared(
    served: Served, session: aiohttp.ClientSession, command: Command, run_id: str
) -> Operation:
    if command.needs_a_run:
        created = await Load(base_url=lambda: served.url, plans=[]).send(
            session, kickoff(run_id, "client-d")
        )
        assert created.status == 201
    return command.make(run_id)


async def retried(served: Served, session: aiohttp.ClientSession, operation: Operation) -> Answer:
    return await Load(base_url=lambda: served.url, plans=[]).send(session, operation)


async def assert_retry_lands_once(
    served: Served,
    session: aiohttp.ClientSession,
    conn: asyncpg.Connection,
    operation: Operation,
    before: list[asyncpg.Record],
) -> None:
    """Retry `operation`: it succeeds and its event is in the run's streams exactly once, one
    more than `before`, at the position the answer gives, with versions still contiguous."""
    answer = await retried(served, session, operation)
    events = await stream_events(conn, operation.run_id)
    assert answer.is_success, answer
    assert [e["event_id"] for e in events].count(operation.event_id) == 1
    assert answer.position in [e["position"] for e in events]
    assert len(events) == len(before) + 1
    assert contiguous(events)


async def interrupted(
    served: Served, operation: Operation, *, sent: int, abort: bool
) -> dict[str, object]:
    """Send the head and `sent` bytes of the body, leave, and wait until the server is done
    with the request (its access log line); return that line."""
    request_id = f"gone-{uuid.uuid4().hex}"
    _, writer = await raw_connect(served.port)
    head = request_head(
        operation, served.port, content_length=len(operation.body), request_id=request_id
    )
    writer.write(head + operation.body[:sent])
    await writer.drain()
    await close(writer, abort=abort)
    return await access_line(served.log_path, request_id, within_s=BOUND_S)


@pytest.mark.parametrize("abort", [False, True], ids=["fin", "reset"])
async def test_client_gone_mid_body_leaves_nothing_and_a_retry_gives_exactly_one_event(
    served: Served, dsn: str, abort: bool
) -> None:
    conn = await connect(dsn)
    statuses: list[object] = []
    try:
        async with aiohttp.ClientSession() as session:
            for command, repeat in itertools.product(COMMANDS, range(REPEATS)):
                run_id = f"cut-{command.name}-{repeat}-{uuid.uuid4().hex[:8]}"
                operation = await prepared(served, session, command, run_id)
                before = await stream_events(conn, run_id)
                dead_before = await conn.fetchval(_DEAD_LETTERS)
                for sent in (0, len(operation.body) // 2, len(operation.body) - 1):
                    line = await interrupted(served, operation, sent=sent, abort=abort)
                    statuses.append(line["status"])
                    assert await stream_events(conn, run_id) == before, (command.name, sent)
                    assert await conn.fetchval(_DEAD_LETTERS) == dead_before
                await assert_retry_lands_once(served, session, conn, operation, before)
        await checkpoints_at_head(dsn)
        projected = await projection_problems(conn)
        diagnosed = await diagnostics_problems(conn)
    finally:
        await conn.close()
    show(
        f"client gone mid-body ({'reset' if abort else 'fin'})",
        interrupted_requests=len(statuses),
        statuses_logged_for_them=sorted(set(map(str, statuses))),
    )
    assert projected == []
    assert diagnosed == []
    assert served.log_lines_with("unhandled error") == []


@pytest.mark.parametrize("abort", [False, True], ids=["fin", "reset"])
async def test_client_gone_before_the_answer_leaves_the_whole_event_or_nothing_and_a_retry_one(
    served: Served, dsn: str, abort: bool
) -> None:
    conn = await connect(dsn)
    kept_before_retry = {True: 0, False: 0}
    try:
        async with aiohttp.ClientSession() as session:
            for command, repeat in itertools.product(COMMANDS, range(REPEATS * 3)):
                run_id = f"gone-{command.name}-{repeat}-{uuid.uuid4().hex[:8]}"
                operation = await prepared(served, session, command, run_id)
                before = await stream_events(conn, run_id)
                line = await interrupted(served, operation, sent=len(operation.body), abort=abort)
                after = await stream_events(conn, run_id)
                kept = [e for e in after if e["event_id"] == operation.event_id]
                # The whole event or nothing: the stream before, or the stream before and it.
                assert after in (before, [*before, *kept]), (command.name, line)
                assert len(kept) <= 1
                kept_before_retry[bool(kept)] += 1
                await assert_retry_lands_once(served, session, conn, operation, before)
        await checkpoints_at_head(dsn)
        projected = await projection_problems(conn)
        diagnosed = await diagnostics_problems(conn)
    finally:
        await conn.close()
    show(
        f"client gone before the answer ({'reset' if abort else 'fin'})",
        requests=sum(kept_before_retry.values()),
        event_kept_before_the_retry=kept_before_retry[True],
        nothing_kept_before_the_retry=kept_before_retry[False],
    )
    assert projected == []
    assert diagnosed == []
    assert served.log_lines_with("unhandled error") == []


async def test_client_gone_mid_body_is_not_logged_as_database_unavailable(
    served: Served,
) -> None:
    """A client that leaves is not a database outage: no 503 in the access log or the
    request metrics, where it would page an operator about the database."""
    operation = kickoff(f"cut-503-{uuid.uuid4().hex[:8]}", "client-d")
    line = await interrupted(served, operation, sent=len(operation.body) // 2, abort=False)
    async with aiohttp.ClientSession() as session, session.get(served.url + "/metrics") as got:
        metrics = await got.text()
    counted = [m for m in metrics.splitlines() if 'status="503"' in m and "_count" in m]
    assert (line["status"], counted) == (line["status"], []), (line, counted)
    assert line["status"] != 503, line

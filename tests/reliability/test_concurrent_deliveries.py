"""Scenario 6: 50 concurrent different Apify deliveries for one run.

After the kickoff, 50 deliveries with distinct dispatch ids and event types (every run status
Apify sends, in turn) are sent at the same moment — to one `runledger serve`, and split between
two on the same database (so that they race through the stream's expected version, not only
through the in-process lock of the run). Each must get one outcome (applied or rejected, with
the position of its one event); the run stream must hold the kickoff and exactly one event per
delivery, versions contiguous 1..n; and the projection must equal a replay of the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from eventstore.pool import connect

from .conftest import checkpoints_at_head
from .ledger import diagnostics_problems, projection_problems
from .load import Answer, Load, Operation, kickoff, webhook
from .processes import Process, Served, free_port
from .report import show, statuses

DELIVERIES = 50
EVENT_TYPES = (
    "ACTOR.RUN.CREATED",
    "ACTOR.RUN.SUCCEEDED",
    "ACTOR.RUN.FAILED",
    "ACTOR.RUN.ABORTED",
    "ACTOR.RUN.TIMED_OUT",
    "ACTOR.RUN.RESURRECTED",
)
_STREAM = "SELECT version, event_id, event_type, position FROM events WHERE stream_id = $1"


def outcome(answer: Answer) -> str:
    """The delivery's outcome, or the error code of an error answer."""
    body = orjson.loads(answer.body_text or "{}")
    if "outcome" in body:
        return str(body["outcome"])
    return f"error: {body.get('error', {}).get('code')}"


def url_of(served: Served) -> Callable[[], str]:
    return lambda: served.url


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])
async def test_50_concurrent_different_deliveries_get_one_outcome_each_and_contiguous_versions(
    dsn: str, tmp_path: Path, children: list[Process], processes: int
) -> None:
    def start(index: int) -> Served:
        served = Served(dsn, tmp_path, port=free_port(), name=f"serve-{index}")
        children.append(served)
        return served

    servers = await asyncio.gather(*(asyncio.to_thread(start, i) for i in range(processes)))
    run_id = f"burst{processes}x{time.time_ns()}"
    operations: list[Operation] = [
        webhook(EVENT_TYPES[index % len(EVENT_TYPES)], run_id) for index in range(DELIVERIES)
    ]
    connector = aiohttp.TCPConnector(limit=DELIVERIES)
    async with aiohttp.ClientSession(connector=connector) as session:
        created = await Load(base_url=lambda: servers[0].url, plans=[]).send(
            session, kickoff(run_id, "client-burst")
        )
        assert created.status == 201
        loads = [Load(base_url=url_of(s), plans=[], keep_bodies=True) for s in servers]
        gate = asyncio.Event()

        async def deliver(index: int, operation: Operation) -> Answer:
            await gate.wait()  # all 50 leave together
            return await loads[index % processes].send(session, operation)

        sending = [asyncio.create_task(deliver(i, op)) for i, op in enumerate(operations)]
        await asyncio.sleep(0)
        gate.set()
        answers = await asyncio.gather(*sending)
    conn = await connect(dsn)
    try:
        stream = list(await conn.fetch(_STREAM, f"run-{run_id}"))
        orphans = await conn.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = $1", f"orphan-{run_id}"
        )
        await checkpoints_at_head(dsn)
        projected = await projection_problems(conn)
        diagnosed = await diagnostics_problems(conn)
    finally:
        await conn.close()
    by_event_id = {row["event_id"]: row for row in stream}
    without_their_event = [
        a.operation.path
        for a in answers
        if a.operation.event_id not in by_event_id
        or by_event_id[a.operation.event_id]["position"] != a.position
    ]
    outcomes = Counter(outcome(a) for a in answers)
    show(
        f"50 concurrent deliveries, {processes} process(es)",
        statuses=statuses(answers),
        outcomes=dict(outcomes),
        attempts=sum(a.attempt for a in answers),
        stream_versions=f"{min(r['version'] for r in stream)}..{max(r['version'] for r in stream)}",
        event_types=dict(Counter(r["event_type"] for r in stream)),
    )
    assert {a.status for a in answers} <= {200, 202}
    assert set(outcomes) <= {"applied", "rejected"}
    assert without_their_event == []
    assert sorted(r["version"] for r in stream) == list(range(1, DELIVERIES + 2))
    assert len(stream) == DELIVERIES + 1
    assert orphans == 0
    assert projected == []
    assert diagnosed == []
    assert [line for c in children for line in c.log_lines_with("unhandled error")] == []

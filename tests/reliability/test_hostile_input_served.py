"""Scenario 7: hostile input against a real `runledger serve` (what tests/api cannot show
in-process: the server's memory, its timeouts, and bytes no HTTP client library sends).

- a 200 MB body, declared by Content-Length or streamed chunked: 413 before it is read whole,
  the server's resident memory staying small;
- a slow-loris body trickled in: 408 within the server's body read timeout
  (api.bodies.BODY_READ_TIMEOUT_S), while other requests are served meanwhile;
- invalid UTF-8 and invalid Unicode beyond what tests/api covers: in keys, lone surrogate
  escapes, overlong forms, a byte-order mark, UTF-16, raw bytes in the id headers;
- huge numbers (1e400, 2**64, 2**70, the largest double) in metrics and delivery fields, and
  what their sums do to the reports;
- empty tokens on every endpoint, queries included.
Never a 5xx; nothing half-stored; the projections still equal a replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
import uuid
from typing import Any

import aiohttp
import orjson

from api.bodies import BODY_READ_TIMEOUT_S
from eventstore.pool import connect

from .conftest import checkpoints_at_head
from .ledger import diagnostics_problems, projection_problems
from .load import API_TOKEN, WEBHOOK_TOKEN, Load, Operation, kickoff, results, webhook
from .processes import BOUND_S, Served
from .raw import chunk, read_answer, request_head
from .raw import connect as raw_connect
from .report import show

MB = 1_048_576
HUGE = 200 * MB
RSS_GROWTH_KIB = 64 * 1024  # generous: the body limit is 1 MiB, the refused bodies 200 MiB
_EVENTS_OF = "SELECT count(*) FROM events WHERE stream_id = ANY($1::text[])"
_DEAD_LETTERS = "SELECT count(*) FROM events WHERE stream_id = 'dead-letters'"


def targets(run_id: str) -> list[Operation]:
    """The three commands, for `run_id` (the delivery and results for a run not created)."""
    return [
        kickoff(run_id, "client-h"),
        webhook("ACTOR.RUN.SUCCEEDED", run_id),
        results(run_id, 1),
    ]


def with_body(operation: Operation, body: bytes) -> Operation:
    return dataclasses.replace(operation, body=body)


async def stored_for(dsn: str, run_id: str) -> int:
    conn = await connect(dsn)
    try:
        count: int = await conn.fetchval(_EVENTS_OF, [f"run-{run_id}", f"orphan-{run_id}"])
        return count
    finally:
        await conn.close()


async def consistent(dsn: str) -> list[str]:
    await checkpoints_at_head(dsn)
    conn = await connect(dsn)
    try:
        return await projection_problems(conn) + await diagnostics_problems(conn)
    finally:
        await conn.close()


class RssWatch:
    """Samples the served process's resident memory until stopped; keeps the peak."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.before = served.rss_kib()
        self.peak = self.before
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.served.rss_kib())
            await asyncio.sleep(0.01)

    async def stop(self) -> int:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak = max(self.peak, self.served.rss_kib())
        return self.peak - self.before


async def declared_huge(served: Served, operation: Operation) -> tuple[int, int]:
    """Declare 200 MB, send 64 KiB; return the status and the bytes sent before it."""
    reader, writer = await raw_connect(served.port)
    writer.write(request_head(operation, served.port, content_length=HUGE))
    writer.write(b"{" + b" " * (64 * 1024 - 1))
    await writer.drain()
    answer = await asyncio.wait_for(read_answer(reader), BOUND_S)
    writer.transport.abort()
    return answer.status, 64 * 1024


async def streamed_huge(served: Served, operation: Operation) -> tuple[int, int]:
    """Stream up to 200 MB chunked, as fast as the server takes it, until it answers."""
    reader, writer = await raw_connect(served.port)
    writer.write(request_head(operation, served.port, content_length=None))
    sent = 0

    async def stream() -> None:
        nonlocal sent
        piece = chunk(b"[" + b"0," * (MB // 2 - 1) + b"0")
        while sent < HUGE:
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
            await asyncio.sleep(0)  # let the answer be read as soon as it comes

    streaming = asyncio.create_task(stream())
    try:
        answer = await asyncio.wait_for(read_answer(reader), BOUND_S)
    finally:
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await streaming
        writer.transport.abort()
    return answer.status, sent


async def test_200_mb_bodies_are_refused_413_before_being_read_and_the_server_stays_small(
    served: Served, dsn: str
) -> None:
    run_id = f"huge-{uuid.uuid4().hex[:8]}"
    watch = RssWatch(served)
    seen: dict[str, tuple[int, int]] = {}
    for operation in targets(run_id):
        for how, send in (("declared", declared_huge), ("chunked", streamed_huge)):
            seen[f"{operation.kind} {how}"] = await send(served, operation)
    growth = await watch.stop()
    show(
        "200 MB bodies",
        status_and_bytes_sent_before_the_answer=seen,
        rss_before_kib=watch.before,
        rss_peak_growth_kib=growth,
    )
    assert {status for status, _ in seen.values()} == {413}
    assert max(sent for _, sent in seen.values()) < 64 * MB  # answered long before 200 MB
    assert growth < RSS_GROWTH_KIB
    assert await stored_for(dsn, run_id) == 0
    assert await consistent(dsn) == []


async def trickled(served: Served, operation: Operation) -> tuple[int, float]:
    """Send the head, then the body one byte at a time, slower than the body read timeout
    allows; return the status and when the answer came."""
    reader, writer = await raw_connect(served.port)
    started = time.monotonic()
    writer.write(request_head(operation, served.port, content_length=len(operation.body)))
    await writer.drain()

    async def trickle() -> None:
        for byte in operation.body[:-1]:  # never the whole body
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(BODY_READ_TIMEOUT_S / 20)

    trickling = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(read_answer(reader), BODY_READ_TIMEOUT_S + BOUND_S)
    finally:
        trickling.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await trickling
        writer.transport.abort()
    return answer.status, time.monotonic() - started


async def test_slow_loris_bodies_are_answered_408_within_the_read_timeout_others_still_served(
    served: Served, dsn: str
) -> None:
    run_id = f"slow-{uuid.uuid4().hex[:8]}"
    dead_before = await _dead_letters(dsn)
    slow = [asyncio.create_task(trickled(served, op)) for op in targets(run_id)]
    # Meanwhile an ordinary client is served as usual.
    async with aiohttp.ClientSession() as session:
        bystander = await Load(base_url=lambda: served.url, plans=[]).send(
            session, kickoff(f"bystander-{uuid.uuid4().hex[:8]}", "client-h")
        )
        served_while_slow = not any(task.done() for task in slow)
    answers = await asyncio.gather(*slow)
    show(
        "slow-loris bodies",
        body_read_timeout_s=BODY_READ_TIMEOUT_S,
        status_and_seconds=[(status, round(s, 2)) for status, s in answers],
        bystander_status=bystander.status,
        bystander_latency_s=round(bystander.latency_s, 3),
        dead_letters_added=await _dead_letters(dsn) - dead_before,
    )
    assert [status for status, _ in answers] == [408, 408, 408]
    assert max(seconds for _, seconds in answers) < BODY_READ_TIMEOUT_S + 10  # a ceiling
    assert (bystander.status, served_while_slow) == (201, True)
    assert await stored_for(dsn, run_id) == 0
    assert await consistent(dsn) == []


async def _dead_letters(dsn: str) -> int:
    conn = await connect(dsn)
    try:
        count: int = await conn.fetchval(_DEAD_LETTERS)
        return count
    finally:
        await conn.close()


INVALID_UNICODE = {
    "invalid-utf8-in-a-key": b'{"caf\xe9": 1}',
    "lone-surrogate-escape": b'"\\ud800"',
    "lone-low-surrogate-escape": b'{"\\udfff": "x"}',
    "surrogate-encoded-as-utf8": b'"\xed\xa0\x80"',
    "overlong-slash": b'"\xc0\xaf"',
    "truncated-sequence": b'"\xe2\x82"',
    "beyond-u10ffff": b'"\xf4\x90\x80\x80"',
}


async def raw_status(served: Served, operation: Operation, extra: list[tuple[str, str]]) -> int:
    reader, writer = await raw_connect(served.port)
    head = request_head(operation, served.port, content_length=len(operation.body), extra=extra)
    writer.write(head + operation.body)
    await writer.drain()
    answer = await asyncio.wait_for(read_answer(reader), BOUND_S)
    writer.transport.abort()
    return answer.status


def with_hole(operation: Operation, hole: bytes) -> Operation:
    """`operation` with raw JSON `hole` at a free-form place of its body."""
    body = orjson.loads(operation.body)
    if operation.kind == "kickoff":
        body["input"] = {"x": "@@hole@@"}
    elif operation.kind == "results":
        body["details"] = {"x": "@@hole@@"}
    else:
        body["extra"] = "@@hole@@"
    return with_body(operation, orjson.dumps(body).replace(b'"@@hole@@"', hole))


async def test_invalid_unicode_in_bodies_and_id_headers_is_refused_4xx_never_stored_half(
    served: Served, dsn: str
) -> None:
    run_id = f"utf-{uuid.uuid4().hex[:8]}"
    seen: dict[str, list[int]] = {}
    for operation in targets(run_id):
        for name, hole in INVALID_UNICODE.items():
            seen.setdefault(name, []).append(
                await raw_status(served, with_hole(operation, hole), [])
            )
        seen.setdefault("bom-then-json", []).append(
            await raw_status(served, with_body(operation, b"\xef\xbb\xbf" + operation.body), [])
        )
        utf16 = operation.body.decode().encode("utf-16")
        seen.setdefault("utf-16-body", []).append(
            await raw_status(served, with_body(operation, utf16), [])
        )
    # Raw non-UTF-8 bytes in the headers that become ids (latin-1 on the wire).
    kick, delivered = kickoff(f"{run_id}h", "client-h"), webhook("ACTOR.RUN.CREATED", run_id)
    keyless = dataclasses.replace(kick, headers=_without(kick, "Idempotency-Key"))
    seen["idempotency-key-bytes"] = [
        await raw_status(served, keyless, [("Idempotency-Key", "k\xe9\xff-\x7f")])
    ]
    undispatched = dataclasses.replace(
        delivered, headers=_without(delivered, "X-Apify-Webhook-Dispatch-Id")
    )
    seen["dispatch-id-bytes"] = [
        await raw_status(served, undispatched, [("X-Apify-Webhook-Dispatch-Id", "d\xe9\xff")])
    ]
    show("invalid unicode", statuses=seen)
    assert [s for statuses in seen.values() for s in statuses if s >= 500] == []
    assert served.log_lines_with("unhandled error") == []
    assert await consistent(dsn) == []


def _without(operation: Operation, header: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in operation.headers if k.lower() != header.lower())


HUGE_NUMBERS = {
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "2**64": str(2**64).encode(),
    "2**70": str(2**70).encode(),
    "max-double": b"1.7976931348623157e308",
    "1e-400": b"1e-400",
}


async def test_huge_numbers_in_metrics_and_delivery_fields_never_give_a_5xx_or_break_reports(
    served: Served, dsn: str
) -> None:
    seen: dict[str, list[int]] = {}
    async with aiohttp.ClientSession() as session:
        load = Load(base_url=lambda: served.url, plans=[], keep_bodies=True)
        for name, literal in HUGE_NUMBERS.items():
            # Two runs of one client and day, so that the reports add the numbers up.
            for copy in range(2):
                run_id = f"num-{name.replace('*', 'p')}-{copy}-{uuid.uuid4().hex[:6]}"
                assert (await load.send(session, kickoff(run_id, "client-big"))).status == 201
                metrics = with_body(
                    results(run_id, 0), b'{"metrics": {"posts_harvested": ' + literal + b"}}"
                )
                seen.setdefault(f"metrics {name}", []).append(
                    (await load.send(session, metrics)).status
                )
                for field in ("usageTotalUsd", "stats.runTimeSecs", "stats.durationMillis"):
                    sent = webhook("ACTOR.RUN.SUCCEEDED", run_id)
                    body = orjson.loads(sent.body)
                    place = body["resource"]
                    *parents, key = field.split(".")
                    for parent in parents:
                        place = place[parent]
                    place[key] = "@@number@@"
                    raw = orjson.dumps(body).replace(b'"@@number@@"', literal)
                    seen.setdefault(f"{field} {name}", []).append(
                        (await load.send(session, with_body(sent, raw))).status
                    )
        problems = await consistent(dsn)
        queries = {}
        for path in ("/reports/clients", "/reports/daily?client_id=client-big", "/runs?limit=50"):
            async with session.get(
                served.url + path, headers={"Authorization": f"Bearer {API_TOKEN}"}
            ) as got:
                queries[path] = got.status
                orjson.loads(await got.read())  # valid JSON: no Infinity or NaN in it
    conn = await connect(dsn)
    try:
        errors = await conn.fetch(
            "SELECT name, last_error FROM projection_checkpoints WHERE last_error IS NOT NULL"
        )
    finally:
        await conn.close()
    show("huge numbers", statuses=seen, queries=queries, projection_errors=len(errors))
    assert [s for statuses in seen.values() for s in statuses if s >= 500] == []
    assert list(queries.values()) == [200, 200, 200]
    assert [dict(e) for e in errors] == []
    assert problems == []
    assert served.log_lines_with("unhandled error") == []


EMPTY_TOKENS: list[tuple[str, dict[str, str]]] = [
    ("", {"Authorization": "Bearer "}),
    ("", {"Authorization": ""}),
    ("?token=", {}),
    ("?token=&token=", {}),
    ("", {"X-Runledger-Token": ""}),
]
ENDPOINTS = [
    ("POST", "/runs"),
    ("POST", "/runs/empty-token/results"),
    ("POST", "/webhooks/apify"),
    ("GET", "/runs"),
    ("GET", "/runs/empty-token"),
    ("GET", "/runs/empty-token/events"),
    ("GET", "/runs/empty-token/timeline"),
    ("GET", "/reports/clients"),
    ("GET", "/reports/daily"),
    ("GET", "/diagnostics/missing-records"),
    ("GET", "/diagnostics/rejections"),
    ("GET", "/diagnostics/dead-letters"),
]


async def test_empty_tokens_are_refused_401_on_every_endpoint_and_store_nothing(
    served: Served, dsn: str
) -> None:
    body: dict[str, Any] = {"run_id": "empty-token", "client_id": "c", "metrics": {"p": 1}}
    statuses: dict[str, list[int]] = {}
    async with aiohttp.ClientSession() as session:
        for (method, path), (query, headers) in itertools.product(ENDPOINTS, EMPTY_TOKENS):
            async with session.request(
                method, served.url + path + query, data=orjson.dumps(body),
                headers={"Content-Type": "application/json", **headers},
            ) as got:  # fmt: skip
                statuses.setdefault(f"{method} {path}", []).append(got.status)
                await got.read()
    conn = await connect(dsn)
    try:
        events = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    show("empty tokens", requests=sum(map(len, statuses.values())), events=events)
    refused = {name: [401] * len(EMPTY_TOKENS) for name in statuses}
    assert (statuses, events) == (refused, 0)
    assert WEBHOOK_TOKEN not in served.log_path.read_text()

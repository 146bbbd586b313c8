"""Hostile input to the three commands: each refusal is a clear 4xx and stores nothing wrong.

Every test sends something a careless or malicious caller might send to `POST /runs`,
`POST /runs/{run_id}/results` or `POST /webhooks/apify`, then compares the whole event log with
what must be there: nothing for the two bearer-token commands, and for an authenticated webhook
delivery exactly one dead-letter record (API.md: nothing that was authenticated is thrown away).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.client import ClientResponse
from aiohttp.test_utils import TestServer

from api.app import create_app
from api.bodies import MAX_JSON_DEPTH
from api.keys import POOL, QUERY_POOL
from api.logs import JsonFormatter

from .conftest import AUTH, WEBHOOK_TOKEN, Client, TickingClock, make_config
from .deliveries import delivery

HOLE = "@@hole@@"
"""Stands in a target's body for the raw JSON a test puts at its free-form place."""

RUN_ID = "hostile-run"
DEAD_LETTER = ("dead-letters", "DeliveryDeadLettered")
LIMIT = 1_048_576  # the default RUNLEDGER_MAX_BODY_BYTES, which the `client` fixture uses
JSON = "application/json"

Log = list[tuple[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One command under attack: where it lives, how it authenticates, a body it accepts."""

    name: str
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    """A valid body with HOLE at a free-form place (kickoff input, results details, an
    unknown delivery field): the place hostile JSON goes without breaking anything else."""
    kept: Log
    """What one authenticated refusal leaves in the log."""

    def raw(self, hole: bytes = b"{}") -> bytes:
        """The body as bytes, with `hole` (raw JSON, possibly hostile) in the free-form place."""
        return orjson.dumps(self.body).replace(orjson.dumps(HOLE), hole)

    def with_fields(self, **fields: Any) -> dict[str, Any]:
        return {**self.body, **fields}


def _webhook_target() -> Target:
    sent = delivery("ACTOR.RUN.SUCCEEDED", RUN_ID, dispatch_id="d-hostile")
    return Target(
        name="webhook",
        path=f"/webhooks/apify?token={WEBHOOK_TOKEN}",
        headers=sent["headers"],
        body={**sent["body"], "extra": HOLE},
        kept=[DEAD_LETTER],
    )


KICKOFF = Target(
    name="kickoff",
    path="/runs",
    headers=AUTH,
    body={"run_id": RUN_ID, "client_id": "acme", "input": {"x": HOLE}},
    kept=[],
)
RESULTS = Target(
    name="results",
    path=f"/runs/{RUN_ID}/results",
    headers=AUTH,
    body={"metrics": {"posts_harvested": 1}, "details": {"x": HOLE}},
    kept=[],
)
WEBHOOK = _webhook_target()
TARGETS = [KICKOFF, RESULTS, WEBHOOK]
every_target = pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])


async def send(
    client: Client,
    target: Target,
    data: Any,
    *,
    content_type: str | None = JSON,
    headers: Mapping[str, str] | None = None,
) -> ClientResponse:
    sent = {k: v for k, v in target.headers.items() if k.lower() != "content-type"}
    skip = []
    if content_type is None:
        skip.append("Content-Type")
    else:
        sent["Content-Type"] = content_type
    return await client.post(
        target.path, data=data, headers={**sent, **(headers or {})}, skip_auto_headers=skip
    )


async def error_of(response: ClientResponse) -> dict[str, Any]:
    """The `error` object of an error answer, checking that the answer is JSON at all."""
    assert response.content_type == JSON
    body: dict[str, Any] = await response.json()
    error: dict[str, Any] = body["error"]
    return error


async def event_log(pool: asyncpg.Pool) -> Log:
    rows = await pool.fetch("SELECT stream_id, event_type FROM events ORDER BY position")
    return [(r["stream_id"], r["event_type"]) for r in rows]


async def dead_letters(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT data FROM events WHERE stream_id = 'dead-letters'")
    return [r["data"] for r in rows]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --- unreadable bodies: 400 --------------------------------------------------------------------


MALFORMED = [
    b'{"run_id": ',  # cut short
    b"{'run_id': 'single-quoted'}",
    b'{"a": 1} trailing',
    b"",
    b'{"a": "raw \x00 NUL byte in a string"}',  # JSON forbids raw control characters
    b'{"a": NaN}',
]


@every_target
async def test_malformed_json_answers_400_invalid_json(
    client: Client, pool: asyncpg.Pool, target: Target
) -> None:
    for body in MALFORMED:
        response = await send(client, target, body)
        assert (response.status, (await error_of(response))["code"]) == (400, "invalid_json")
    assert await event_log(pool) == target.kept * len(MALFORMED)


@every_target
async def test_invalid_utf8_answers_400_invalid_json(
    client: Client, pool: asyncpg.Pool, target: Target
) -> None:
    response = await send(client, target, target.raw(b'"caf\xe9 \xff\xfe"'))
    assert (response.status, (await error_of(response))["code"]) == (400, "invalid_json")
    assert await event_log(pool) == target.kept


async def test_webhook_with_invalid_utf8_is_dead_lettered_as_its_exact_bytes(
    client: Client, pool: asyncpg.Pool
) -> None:
    raw = WEBHOOK.raw(b'"caf\xe9 \xff\xfe"')
    assert (await send(client, WEBHOOK, raw)).status == 400
    [kept] = await dead_letters(pool)
    assert (kept["reason"], kept["body"]) == ("invalid_json", None)
    assert base64.b64decode(kept["body_base64"]) == raw


@every_target
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 1000, 10_000])
async def test_json_nested_deeper_than_the_limit_answers_400_not_500(
    client: Client, pool: asyncpg.Pool, target: Target, depth: int
) -> None:
    # 300 and 1000 levels: orjson reads them (its limit is 1024) but cannot write them back
    # (255), and Python's recursion stops near 1000: both once answered 500.
    response = await send(client, target, nested(depth))
    assert (response.status, (await error_of(response))["code"]) == (400, "invalid_json")
    assert await event_log(pool) == target.kept


@every_target
async def test_json_nested_deeply_inside_a_valid_body_answers_400_not_500(
    client: Client, pool: asyncpg.Pool, target: Target
) -> None:
    response = await send(client, target, target.raw(nested(300)))
    assert (response.status, (await error_of(response))["code"]) == (400, "invalid_json")
    assert await event_log(pool) == target.kept


async def test_kickoff_input_nested_up_to_the_limit_is_accepted(
    client: Client, pool: asyncpg.Pool
) -> None:
    # The body itself and "input" are two levels; "x" holds the rest.
    response = await send(client, KICKOFF, KICKOFF.raw(nested(MAX_JSON_DEPTH - 2)))
    assert response.status == 201
    assert await event_log(pool) == [(f"run-{RUN_ID}", "RunCreated")]


@every_target
async def test_number_too_large_for_a_double_answers_400(
    client: Client, pool: asyncpg.Pool, target: Target
) -> None:
    for literal in (b"1e400", b"-1e400", b"1" + b"0" * 400):
        response = await send(client, target, target.raw(literal))
        assert (response.status, (await error_of(response))["code"]) == (400, "invalid_json")
    # The three webhook bodies differ, so each is its own dead letter.
    assert await event_log(pool) == target.kept * 3


# --- not JSON at all: 415 ---------------------------------------------------------------------


@every_target
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "text/json"],
    ids=["missing", "text-plain", "form", "jsonx", "text-json"],
)
async def test_body_not_declared_as_json_answers_415(
    client: Client, pool: asyncpg.Pool, target: Target, content_type: str | None
) -> None:
    response = await send(client, target, target.raw(), content_type=content_type)
    assert response.status == 415
    assert (await error_of(response))["code"] == "unsupported_media_type"
    assert await event_log(pool) == target.kept


async def test_webhook_not_declared_as_json_is_still_kept_as_a_dead_letter(
    client: Client, pool: asyncpg.Pool
) -> None:
    raw = WEBHOOK.raw()
    assert (await send(client, WEBHOOK, raw, content_type="text/plain")).status == 415
    [kept] = await dead_letters(pool)
    assert (kept["reason"], base64.b64decode(kept["body_base64"])) == (
        "unsupported_media_type",
        raw,
    )


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
async def test_json_content_type_with_parameters_or_a_json_suffix_is_accepted(
    client: Client, content_type: str
) -> None:
    response = await send(client, KICKOFF, KICKOFF.raw(), content_type=content_type)
    assert response.status == 201


# --- well-formed but wrong: 422 naming each field ---------------------------------------------


@pytest.mark.parametrize("body", [[], "run", 7, None, True], ids=repr)
async def test_kickoff_body_that_is_not_an_object_answers_422(
    client: Client, pool: asyncpg.Pool, body: Any
) -> None:
    response = await send(client, KICKOFF, orjson.dumps(body))
    assert response.status == 422
    assert (await error_of(response))["details"] == {"body": "a JSON object"}
    assert await event_log(pool) == []


async def test_kickoff_fields_of_wrong_json_types_answer_422_naming_each(
    client: Client, pool: asyncpg.Pool
) -> None:
    body = {
        "run_id": 5,
        "client_id": ["acme"],
        "actor_id": {},
        "task_id": 1.5,
        "input": "profiles",
        "requested_by": True,
    }
    response = await send(client, KICKOFF, orjson.dumps(body))
    assert response.status == 422
    assert set((await error_of(response))["details"]) == set(body)
    assert await event_log(pool) == []


async def test_results_fields_of_wrong_json_types_answer_422_naming_each(
    client: Client, pool: asyncpg.Pool
) -> None:
    body = {
        "metrics": {"posts": "184", "errors": -1, "ok": True, "gone": None, "list": [1]},
        "details": ["not", "an", "object"],
    }
    response = await send(client, RESULTS, orjson.dumps(body))
    assert response.status == 422
    assert set((await error_of(response))["details"]) == {
        "metrics.posts",
        "metrics.errors",
        "metrics.ok",
        "metrics.gone",
        "metrics.list",
        "details",
    }
    assert await event_log(pool) == []


@pytest.mark.parametrize("metrics", [[], {}, "184", None], ids=repr)
async def test_results_metrics_that_are_not_a_non_empty_object_answer_422(
    client: Client, pool: asyncpg.Pool, metrics: Any
) -> None:
    response = await send(client, RESULTS, orjson.dumps({"metrics": metrics}))
    assert response.status == 422
    assert set((await error_of(response))["details"]) == {"metrics"}
    assert await event_log(pool) == []


async def test_results_metric_of_2_pow_80_answers_422_naming_it(
    client: Client, pool: asyncpg.Pool
) -> None:
    raw = b'{"metrics": {"posts": ' + str(2**80).encode() + b"}}"
    response = await send(client, RESULTS, raw)
    assert response.status == 422
    assert set((await error_of(response))["details"]) == {"metrics.posts"}
    assert await event_log(pool) == []


async def test_kickoff_input_integer_beyond_64_bits_is_kept_as_the_double_javascript_reads(
    client: Client, pool: asyncpg.Pool
) -> None:
    # Free-form input is not ours to refuse; orjson (like JavaScript, and so Apify) reads an
    # integer beyond 64 bits as the nearest double, and that is what is kept.
    response = await send(client, KICKOFF, KICKOFF.raw(str(2**80).encode()))
    assert response.status == 201
    data = await pool.fetchval("SELECT data FROM events WHERE stream_id = $1", f"run-{RUN_ID}")
    assert data["input"] == {"x": float(2**80)}


async def test_webhook_fields_of_wrong_json_types_answer_422_naming_each_and_are_kept(
    client: Client, pool: asyncpg.Pool
) -> None:
    body = dict(WEBHOOK.body)
    body["createdAt"] = 1
    body["eventData"] = ["not", "an", "object"]
    body["resource"] = {
        **body["resource"],
        "startedAt": 5,
        "stats": {"resurrectCount": str(2**80)},
        "usageTotalUsd": "free",
    }
    raw = orjson.dumps(body).replace(orjson.dumps(HOLE), b"{}")
    response = await send(client, WEBHOOK, raw)
    assert response.status == 422
    assert set((await error_of(response))["details"]) == {
        "createdAt",
        "eventData",
        "resource.startedAt",
        "resource.stats.resurrectCount",
        "resource.usageTotalUsd",
    }
    [kept] = await dead_letters(pool)
    assert kept["body"] == orjson.loads(raw)


async def test_webhook_resurrect_count_of_2_pow_80_answers_422_and_is_kept(
    client: Client, pool: asyncpg.Pool
) -> None:
    raw = WEBHOOK.raw().replace(b'"resurrectCount":0', b'"resurrectCount":' + str(2**80).encode())
    assert raw != WEBHOOK.raw()
    response = await send(client, WEBHOOK, raw)
    assert response.status == 422
    assert set((await error_of(response))["details"]) == {"resource.stats.resurrectCount"}
    assert await event_log(pool) == [DEAD_LETTER]


# --- NUL characters, which jsonb cannot hold --------------------------------------------------


@every_target
@pytest.mark.parametrize(
    "hole",
    [b'"before\\u0000after"', b'{"key\\u0000": 1}', b'["\\u0000"]'],
    ids=["in-a-value", "in-a-key", "in-a-list"],
)
async def test_nul_character_in_a_json_string_answers_422_and_stores_nothing_wrong(
    client: Client, pool: asyncpg.Pool, target: Target, hole: bytes
) -> None:
    response = await send(client, target, target.raw(hole))
    assert response.status == 422
    assert "NUL" in str((await error_of(response))["details"])
    assert await event_log(pool) == target.kept


async def test_webhook_with_a_nul_character_is_dead_lettered_as_base64_of_its_bytes(
    client: Client, pool: asyncpg.Pool
) -> None:
    raw = WEBHOOK.raw(b'"before\\u0000after"')
    assert (await send(client, WEBHOOK, raw)).status == 422
    [kept] = await dead_letters(pool)
    assert (kept["body"], base64.b64decode(kept["body_base64"])) == (None, raw)
    assert kept["headers"]["X-Apify-Webhook-Dispatch-Id"] == "d-hostile"


# --- request size: 413 ------------------------------------------------------------------------


async def held_back(rest_may_follow: asyncio.Event, *, declared: int) -> AsyncIterator[bytes]:
    """A body of `declared` bytes whose first kilobyte is sent at once and the rest only when
    `rest_may_follow` is set: an answer before that was given without reading the body."""
    yield b"{" + b" " * 1023
    await rest_may_follow.wait()
    yield b" " * (declared - 1025) + b"}"


@every_target
async def test_body_declared_larger_than_the_limit_is_refused_413_before_it_is_read(
    client: Client, pool: asyncpg.Pool, target: Target
) -> None:
    rest_may_follow = asyncio.Event()
    response = await send(
        client,
        target,
        held_back(rest_may_follow, declared=2_000_000),
        headers={"Content-Length": "2000000"},
    )
    answered_before_the_rest_was_sent = not rest_may_follow.is_set()
    rest_may_follow.set()
    assert (response.status, answered_before_the_rest_was_sent) == (413, True)
    assert (await error_of(response))["code"] == "body_too_large"
    assert await event_log(pool) == []  # too large to keep, even for the webhook


@every_target
async def test_chunked_body_growing_past_the_limit_is_refused_413_while_still_arriving(
    client: Client, pool: asyncpg.Pool, target: Target
) -> None:
    never_ending = asyncio.Event()

    async def growing() -> AsyncIterator[bytes]:
        yield b"["
        for _ in range(LIMIT // 65536 + 1):
            yield b"0," * 32768
        await never_ending.wait()  # no end of body until the answer has come

    response = await send(client, target, growing())
    answered_before_the_end = not never_ending.is_set()
    never_ending.set()
    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request_info.headers
    assert (response.status, answered_before_the_end) == (413, True)
    assert await event_log(pool) == []


async def test_body_exactly_at_a_small_configured_limit_is_read_and_one_byte_more_is_refused(
    dsn: str, clock: TickingClock, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    body = KICKOFF.raw()
    small = await aiohttp_client(
        create_app(make_config(dsn, max_body_bytes=len(body)), clock=clock)
    )
    assert (await send(small, KICKOFF, body)).status == 201
    assert (await send(small, KICKOFF, body + b" ")).status == 413


# --- ids that look like SQL or paths ----------------------------------------------------------

SQL_OR_PATH = ["'; DROP TABLE events; --", "../../etc/passwd", "run/../x", "run\\..\\x", "x" * 129]


async def events_table_is_intact(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT to_regclass('events') IS NOT NULL"))


@pytest.mark.parametrize("field", ["run_id", "client_id"])
async def test_kickoff_ids_that_look_like_sql_or_paths_answer_422(
    client: Client, pool: asyncpg.Pool, field: str
) -> None:
    for hostile in SQL_OR_PATH:
        response = await send(
            client, KICKOFF, orjson.dumps(KICKOFF.with_fields(**{field: hostile}))
        )
        assert response.status == 422
        assert set((await error_of(response))["details"]) == {field}
    assert await events_table_is_intact(pool)
    assert await event_log(pool) == []


async def test_results_run_ids_that_look_like_sql_or_paths_answer_422(
    client: Client, pool: asyncpg.Pool
) -> None:
    for hostile in SQL_OR_PATH:
        response = await client.post(
            f"/runs/{quote(hostile, safe='')}/results",
            json={"metrics": {"posts": 1}},
            headers=AUTH,
        )
        assert response.status == 422
        assert set((await error_of(response))["details"]) == {"run_id"}
    assert await events_table_is_intact(pool)
    assert await event_log(pool) == []


async def test_results_path_climbing_out_of_runs_is_no_route_404(
    client: Client, pool: asyncpg.Pool
) -> None:
    response = await client.post(
        "/runs/../../etc/passwd/results", json={"metrics": {"posts": 1}}, headers=AUTH
    )
    assert (response.status, (await error_of(response))["code"]) == (404, "not_found")
    assert await event_log(pool) == []


def _with_run_id(where: str, hostile: str) -> tuple[str, bytes]:
    """The webhook's path and body with `hostile` as the run id, where the handler looks."""
    body: dict[str, Any] = orjson.loads(WEBHOOK.raw())
    if where == "query":
        return f"{WEBHOOK.path}&run_id={quote(hostile, safe='')}", orjson.dumps(body)
    del body["eventData"]["actorRunId"], body["resource"]["id"]
    if where == "eventData":
        body["eventData"]["actorRunId"] = hostile
    else:
        body["resource"]["id"] = hostile
    return WEBHOOK.path, orjson.dumps(body)


@pytest.mark.parametrize("where", ["query", "eventData", "resource"])
async def test_webhook_run_ids_that_look_like_sql_or_paths_answer_422_and_are_dead_lettered(
    client: Client, pool: asyncpg.Pool, where: str
) -> None:
    for hostile in SQL_OR_PATH:
        path, body = _with_run_id(where, hostile)
        response = await client.post(
            path, data=body, headers={**WEBHOOK.headers, "Content-Type": JSON}
        )
        assert (response.status, (await error_of(response))["code"]) == (422, "invalid_run_id")
    assert await events_table_is_intact(pool)
    # Only dead letters (the query-string cases share one body, so they are kept once).
    assert set(await event_log(pool)) == {DEAD_LETTER}


# --- tokens: 401 and nothing stored -----------------------------------------------------------

API_TOKEN_HEADERS = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {AUTH['Authorization'].split()[1]}"},
    {"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
    {"Authorization": f"{AUTH['Authorization']}x"},
    {"X-Runledger-Token": AUTH["Authorization"].split()[1]},
]


@pytest.mark.parametrize("target", [KICKOFF, RESULTS], ids=["kickoff", "results"])
async def test_command_without_the_api_token_answers_401_and_stores_nothing(
    client: Client, pool: asyncpg.Pool, target: Target
) -> None:
    for headers in API_TOKEN_HEADERS:
        response = await client.post(
            target.path, data=target.raw(), headers={"Content-Type": JSON, **headers}
        )
        assert (response.status, (await error_of(response))["code"]) == (401, "unauthorized")
    assert await event_log(pool) == []


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("?token=", {}),
        ("?token=%20", {}),
        (f"?token={WEBHOOK_TOKEN}x", {}),
        (f"?TOKEN={WEBHOOK_TOKEN}", {}),
        ("", {"X-Runledger-Token": ""}),
        ("", {"X-Runledger-Token": WEBHOOK_TOKEN[:-1]}),
        ("", AUTH),
    ],
    ids=[
        "missing",
        "empty",
        "blank",
        "longer",
        "upper-case-name",
        "empty-header",
        "shorter-header",
        "api-token",
    ],
)
async def test_webhook_without_the_secret_answers_401_and_keeps_nothing_not_even_garbage(
    client: Client, pool: asyncpg.Pool, query: str, headers: dict[str, str]
) -> None:
    for body in (WEBHOOK.raw(), b"{not json", b"\xff\xfe"):
        response = await client.post(
            f"/webhooks/apify{query}", data=body, headers={"Content-Type": JSON, **headers}
        )
        assert (response.status, (await error_of(response))["code"]) == (401, "unauthorized")
    assert await event_log(pool) == []


@every_target
async def test_unauthenticated_oversized_body_answers_401_not_413(
    client: Client, pool: asyncpg.Pool, target: Target
) -> None:
    unauthenticated = Target(
        name=target.name,
        path=target.path.split("?")[0],
        headers={},
        body=target.body,
        kept=[],
    )
    rest_may_follow = asyncio.Event()
    response = await send(
        client,
        unauthenticated,
        held_back(rest_may_follow, declared=2_000_000),
        headers={"Content-Length": "2000000"},
    )
    rest_may_follow.set()
    assert (response.status, (await error_of(response))["code"]) == (401, "unauthorized")
    assert await event_log(pool) == []


# --- secrets in logs, and what a 5xx shows ----------------------------------------------------


async def test_webhook_token_in_the_query_string_never_appears_in_any_log_line(
    dsn: str,
    clock: TickingClock,
    aiohttp_client: Callable[..., Awaitable[Client]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As `runledger serve` runs it: aiohttp's own access log (which prints the raw request
    # line) is off, ours is on.
    app = create_app(make_config(dsn), clock=clock)
    server = TestServer(app)
    await server.start_server(access_log=None)  # server_kwargs would not reach the runner
    client = await aiohttp_client(server)
    caplog.set_level(logging.DEBUG, logger="runledger")
    caplog.set_level(logging.INFO)
    queries = [
        f"token={WEBHOOK_TOKEN}&run_id={RUN_ID}",  # a 404: the run was never created
        f"token={WEBHOOK_TOKEN}x",  # a near miss: 401
        f"run_id={RUN_ID}&Token={WEBHOOK_TOKEN}&token={WEBHOOK_TOKEN}",  # 404, both masked
    ]
    statuses = []
    for query in queries:
        response = await client.post(
            f"/webhooks/apify?{query}",
            data=WEBHOOK.raw(),
            headers={**WEBHOOK.headers, "Content-Type": JSON},
        )
        statuses.append(response.status)
    assert statuses == [404, 401, 404]
    access = [r for r in caplog.records if r.name == "runledger.access"]
    assert [getattr(r, "query", None) for r in access] == [
        f"token=***&run_id={RUN_ID}",
        "token=***",
        f"run_id={RUN_ID}&Token=***&token=***",
    ]
    formatter = JsonFormatter()
    leaked = [formatter.format(r) for r in caplog.records if WEBHOOK_TOKEN in formatter.format(r)]
    assert leaked == []


async def test_webhook_secret_in_a_header_is_not_kept_with_the_dead_letter(
    client: Client, pool: asyncpg.Pool
) -> None:
    response = await client.post(
        "/webhooks/apify",
        data=b"{not json",
        headers={**WEBHOOK.headers, "Content-Type": JSON, "X-Runledger-Token": WEBHOOK_TOKEN},
    )
    assert response.status == 400
    rows = await pool.fetch("SELECT data::text AS data, metadata::text AS meta FROM events")
    assert len(rows) == 1
    assert WEBHOOK_TOKEN not in rows[0]["data"] + rows[0]["meta"]


def assert_no_trace_or_sql(text: str) -> None:
    for tell in ("Traceback", 'File "', "SELECT", "DROP", "asyncpg", "events", ".py"):
        assert tell not in text


async def test_unhandled_error_answers_500_without_a_stack_trace_or_sql(
    dsn: str,
    clock: TickingClock,
    aiohttp_client: Callable[..., Awaitable[Client]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise asyncpg.exceptions.UndefinedTableError(
            'relation "events" does not exist: SELECT * FROM events; DROP TABLE events'
        )

    app = create_app(make_config(dsn), clock=clock)
    app.router.add_post("/broken", broken)
    client = await aiohttp_client(app)
    response = await client.post("/broken", headers=AUTH)
    request_id = response.headers["X-Request-Id"]
    assert response.status == 500
    text = await response.text()
    assert orjson.loads(text) == {
        "error": {"code": "internal_error", "message": f"internal error (request id {request_id})"}
    }
    assert_no_trace_or_sql(text)
    # The operator still gets the whole story, under the same request id.
    [logged] = [r for r in caplog.records if r.name == "runledger.errors"]
    assert (getattr(logged, "request_id", None), logged.exc_info is not None) == (request_id, True)


@every_target
async def test_database_unavailable_answers_503_with_retry_after_and_no_driver_detail(
    client: Client, target: Target
) -> None:
    await client.app[POOL].close()
    await client.app[QUERY_POOL].close()
    response = await send(client, target, target.raw())
    assert (response.status, response.headers.get("Retry-After")) == (503, "5")
    text = await response.text()
    assert orjson.loads(text)["error"]["code"] == "database_unavailable"
    assert_no_trace_or_sql(text)
    assert "InterfaceError" not in text


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=9999-12-02", "to=0001-01-15"])
async def test_report_dates_at_the_ends_of_the_calendar_answer_200_not_500(
    client: Client, query: str
) -> None:
    answer = await client.get(f"/reports/clients?{query}", headers=AUTH)
    assert answer.status == 200, await answer.text()


@pytest.mark.parametrize(
    "path", ["/diagnostics/rejections", "/diagnostics/missing-records", "/diagnostics/dead-letters"]
)
async def test_a_cursor_holding_a_non_ascii_digit_answers_422_not_500(
    client: Client, path: str
) -> None:
    cursor = base64.urlsafe_b64encode("p:²".encode()).decode()
    answer = await client.get(path, params={"cursor": cursor}, headers=AUTH)
    assert answer.status == 422, await answer.text()


async def test_an_as_of_holding_a_non_ascii_digit_answers_422_not_500(client: Client) -> None:
    answer = await client.get("/runs/some-run/timeline", params={"as_of": "²"}, headers=AUTH)
    assert answer.status == 422, await answer.text()

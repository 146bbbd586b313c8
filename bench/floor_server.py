"""The ingest benchmark's second yardstick: the least a durable ingest can do per request.

The bare server (bench/bare_server.py) answers without storing anything, so runledger ÷ bare
mixes two costs: storing each delivery durably, and what runledger does on top (tokens, the
Apify shape, the run's state machine, the stream's versions, projections, logs). This server
pays only the first, so that the two can be told apart in one run. Per request it reads the
body, parses it with orjson, and answers only once the body is committed; concurrent requests
share one transaction (a group commit, as the issue's reference prototype did). Two modes:

- `insert`: a hand-written group commit, one `INSERT … SELECT unnest($1)` of the raw bodies
  into a jsonb table with nothing but a key; two batches in flight, each writer on a
  connection of its own. About the least a design that commits each request before
  answering can do from one Python process.
- `store`: each request appended as one event to a stream of its own through runledger's
  EventStore (NO_STREAM, so the batch needs no read): the log's own cost at the HTTP level,
  with no run logic, no stream read and no projection.

No authentication, no logging. `DATABASE_URL` names the (benchmark's own) database.

    DATABASE_URL=postgresql://… .venv/bin/python -m bench.floor_server --mode insert --port 8182
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import asyncpg
import orjson
from aiohttp import web

from bench.bare_server import BAD_JSON, health
from eventstore import NO_STREAM, EventStore, NewEvent, create_pool

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_floor (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body jsonb NOT NULL
)
"""
# The floors' tables are thrown away with their database: no autovacuum of them may run into a
# later phase of the benchmark (runledger's), on the same server.
_NO_AUTOVACUUM = "ALTER TABLE {} SET (autovacuum_enabled = false)"
_INSERT = "INSERT INTO bench_floor (body) SELECT b::jsonb FROM unnest($1::text[]) AS b"
STORE_KEY = web.AppKey("floor_store", object)


class BatchInserter:
    """Bodies queued by concurrent requests, written `writers` batches at a time.

    Each writer holds one connection for its life, as runledger's group commit does while it
    has work: a batch pays no pool acquire or release (`RESET`) round trip.
    """

    def __init__(self, pool: asyncpg.Pool, writers: int = 2) -> None:
        self._pool = pool
        self._queue: list[tuple[str, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._writers = [asyncio.create_task(self._run()) for _ in range(writers)]

    async def insert(self, body: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((body, future))
        self._wakeup.set()
        await future

    async def _run(self) -> None:
        async with self._pool.acquire() as conn:
            while True:
                while not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                batch, self._queue = self._queue, []
                try:
                    await conn.execute(_INSERT, [body for body, _ in batch])
                except Exception as err:  # noqa: BLE001 — every waiting request hears of it
                    outcome: BaseException | None = err
                else:
                    outcome = None
                for _, future in batch:
                    if future.done():  # its request was cancelled
                        continue
                    if outcome is None:
                        future.set_result(None)
                    else:
                        future.set_exception(outcome)

    async def aclose(self) -> None:
        """Stop the writers; aiohttp has finished (or cancelled) every handler before this."""
        for task in self._writers:
            task.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)


def handler(status: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def store(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return web.Response(status=400, body=BAD_JSON, content_type="application/json")
        target = request.app[STORE_KEY]
        if isinstance(target, BatchInserter):
            await target.insert(raw.decode())
        else:
            assert isinstance(target, EventStore)
            event = NewEvent(event_id=uuid.uuid4(), type="Received", data=data)
            await target.append(f"floor-{event.event_id}", [event], expected_version=NO_STREAM)
        return web.Response(
            status=status, body=b'{"outcome":"stored"}', content_type="application/json"
        )

    return store


def make_app(dsn: str, mode: str) -> web.Application:
    app = web.Application(client_max_size=1_048_576)

    async def storage(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(dsn, min_size=4, max_size=8)
        target: BatchInserter | EventStore
        if mode == "insert":
            await pool.execute(_CREATE_TABLE)
            await pool.execute(_NO_AUTOVACUUM.format("bench_floor"))
            target = BatchInserter(pool)
        else:
            await pool.execute(_NO_AUTOVACUUM.format("events"))
            target = EventStore(pool)
        app[STORE_KEY] = target
        yield
        await target.aclose()
        await pool.close()

    app.cleanup_ctx.append(storage)
    app.router.add_post("/runs", handler(201))
    app.router.add_post("/webhooks/apify", handler(202))
    app.router.add_get("/health", health)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8182)
    p.add_argument("--mode", choices=("insert", "store"), default="insert")
    args = p.parse_args(argv)
    dsn = os.environ["DATABASE_URL"]
    print(
        f"floor server ({args.mode}) on http://{args.host}:{args.port}", file=sys.stderr, flush=True
    )
    web.run_app(
        make_app(dsn, args.mode), host=args.host, port=args.port, access_log=None, print=None
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

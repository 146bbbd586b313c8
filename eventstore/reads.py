"""Reads on pool connections whose callers do not wait for the connection to be given back."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

_log = logging.getLogger(__name__)


class PoolReader:
    """`pool.fetch`, minus the wait for the connection's release.

    Giving a connection back to an asyncpg pool resets it (`RESET ALL`, `UNLISTEN *`, …): one
    more round trip, which `pool.fetch` makes its caller wait for. Under load that round trip
    waits for the event loop like any other; a request whose run was not in memory waited
    for it on top of its own read (measured under the delivery load: p99 100-170 ms with it,
    75 ms without). Here the rows go back to the caller at once and the connection is reset
    and released in the background, exactly as before: the next user still gets a clean one.
    `drain` waits for the releases still under way (the store does, when it closes).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._releasing: set[asyncio.Task[None]] = set()

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await self._pool.acquire()
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        except BaseException:
            await self._pool.release(conn)
            raise
        release = asyncio.create_task(self._pool.release(conn), name="eventstore-release")
        self._releasing.add(release)
        release.add_done_callback(self._released)
        return rows

    async def drain(self) -> None:
        while self._releasing:
            await asyncio.wait(set(self._releasing))

    def _released(self, release: asyncio.Task[None]) -> None:
        self._releasing.discard(release)
        if not release.cancelled() and release.exception() is not None:
            # asyncpg has already closed a connection it could not reset; nothing is lost.
            _log.warning("a read connection was released after %r", release.exception())


class GroupReader:
    """Whole-stream reads that arrive together share one query; at most `in_flight` are out.

    The group commit's counterpart for reads: a command on a run that is not in memory reads
    its stream first, and under load hundreds of such reads a second each held a pool
    connection for a round trip; with the writers' connections taken, they queued for the
    pool (measured: a request that read its run took 48 ms at the median, 14 ms for one that
    did not). Here reads that arrive while the queries allowed are out wait for the next one,
    which reads all their streams at once (`stream_id = ANY`); each caller gets its own
    stream's events.
    A failed query fails every read it carried (each caller sees the store's error).

    Two queries may be out at once, like the group commit's two writers: a read that arrives
    while one is out starts the second at once rather than waiting for the first to come back
    (measured under the delivery load: a read 13.0 → 11.7 ms on average).
    """

    def __init__(self, reader: PoolReader, query: str, *, in_flight: int = 2) -> None:
        """`query`: the events of the streams in $1 (text[]), in log order; `in_flight`: how
        many such queries may be out at once."""
        self._reader = reader
        self._query = query
        self._in_flight = in_flight
        self._waiting: dict[str, list[asyncio.Future[list[asyncpg.Record]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.queries = 0

    async def read(self, stream_id: str) -> list[asyncpg.Record]:
        future: asyncio.Future[list[asyncpg.Record]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(stream_id, []).append(future)
        # Count the tasks still running: one that has just finished stays in the set until its
        # done callback runs, and a read queued behind it would wait for nobody.
        if sum(not task.done() for task in self._tasks) < self._in_flight:
            task = asyncio.create_task(self._run(), name="eventstore-group-read")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            self.queries += 1
            try:
                rows = await self._reader.fetch(self._query, list(batch))
            except BaseException as err:  # every read of the batch must hear of it
                cancelled = isinstance(err, asyncio.CancelledError)
                for future in (f for futures in batch.values() for f in futures if not f.done()):
                    if cancelled:
                        future.cancel()
                    else:
                        future.set_exception(err)
                if cancelled:
                    raise
                continue
            of_stream: dict[str, list[asyncpg.Record]] = {stream_id: [] for stream_id in batch}
            for row in rows:
                of_stream[row["stream_id"]].append(row)
            for stream_id, futures in batch.items():
                for future in futures:
                    if not future.done():  # its caller may have been cancelled meanwhile
                        future.set_result(of_stream[stream_id])

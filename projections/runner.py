"""The projector loop: elect, read the log in order, apply a batch and advance the checkpoint.

Exactly once, without a distributed protocol:
- one active runner per projection across processes: the runner holds a session-level advisory
  lock on the connection it applies with. A standby blocks in `pg_advisory_lock` and takes
  over the moment the active runner's connection dies (PostgreSQL releases the lock then);
- each batch is applied and the checkpoint advanced in one transaction, so a crash can neither
  apply an event twice nor skip one. The transaction also locks the checkpoint row and drops
  events at or below it: a rebuild that swapped tables meanwhile, or a second runner that got
  in somehow, cannot make an event count twice.
A projection that fails on an event is not skipped: the error and the failing position are
recorded on the checkpoint row (shown by /health and `projections status`) and the batch is
retried with back-off until it succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import socket
from collections.abc import Callable, Sequence

import asyncpg

from eventstore import EventStore, RecordedEvent, StoreUnavailableError
from eventstore.pool import Connection
from projections import checkpoints
from projections.base import Projection
from projections.errors import LeadershipLostError

_log = logging.getLogger(__name__)

_TAKE_LEADERSHIP = "SELECT pg_advisory_lock(hashtextextended('runledger.projection.' || $1, 0))"
# A standby waits for the lock as long as the leader lives, which is not a slow statement: the
# pool's command timeout (30 s) would end the wait, count it as a lost database and back off,
# ever longer (up to a minute), so that a leader dying late found its standby asleep.
LEADERSHIP_WAIT_S = 7 * 24 * 3600.0
# The server checks every second whether the client of a waiting backend is still there. A
# standby process that dies (SIGKILL) would otherwise leave its backend queued on the lock
# until it is granted it: a phantom standby (PostgreSQL ≥ 14).
_CHECK_CLIENT = "SET client_connection_check_interval = 1000"
_GIVE_UP_LEADERSHIP = (
    "SELECT pg_advisory_unlock(hashtextextended('runledger.projection.' || $1, 0))"
)


# Failures that mean "the database went away": elect again once it is back.
_CONNECTION_LOST: tuple[type[BaseException], ...] = (
    LeadershipLostError,
    StoreUnavailableError,
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # "another operation is in progress": a cut connection
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    TimeoutError,
)


class Role(enum.StrEnum):
    STARTING = "starting"
    STANDBY = "standby"
    ACTIVE = "active"


class Backoff:
    """1, 2, 4 … seconds, capped; reset after a success."""

    def __init__(self, first: float = 1.0, cap: float = 60.0) -> None:
        self._first, self._cap, self._next = first, cap, first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self._cap)
        return delay

    def reset(self) -> None:
        self._next = self._first


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ProjectionRunner:
    """Keeps one projection up to date with the log, for as long as `run()` is awaited."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        projection: Projection,
        *,
        page_size: int = 1000,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 5.0,
        on_advanced: Callable[[str, int], None] | None = None,
        backoff: Backoff | None = None,
        batch_interval: float = 0.0,
    ) -> None:
        """`batch_interval`: once caught up, batches begin at least this far apart."""
        self._pool = pool
        self._store = store
        self.projection = projection
        self._page_size = page_size
        self._poll_interval = poll_interval
        self.batch_interval = batch_interval
        self._heartbeat_interval = heartbeat_interval
        self._on_advanced = on_advanced
        self._backoff = backoff or Backoff()
        self.role = Role.STARTING
        self.role_changed = asyncio.Event()
        self.position = 0
        self.name = runner_name()
        self.batches_applied = 0
        self.last_batch_size = 0

    async def run(self) -> None:
        """Elect, follow the log; after a lost connection or a failed batch, back off and retry."""
        while True:
            try:
                async with self._pool.acquire() as conn:
                    await self._lead(conn)
            except _CONNECTION_LOST as err:
                self._set_role(Role.STARTING)
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    # The driver raised while a cancellation unwound (a pooled connection
                    # cut mid-statement cannot be reset): stopping wins over electing again.
                    raise asyncio.CancelledError from err
                _log.warning(
                    "projection runner lost the database; electing again",
                    extra={"projection": self.projection.name, "error": type(err).__name__},
                )
                await asyncio.sleep(self._backoff.next())

    async def _lead(self, conn: Connection) -> None:
        self._set_role(Role.STANDBY)
        await conn.execute(_CHECK_CLIENT)  # a session setting: RESET ALL when the pool takes it
        await conn.execute(_TAKE_LEADERSHIP, self.projection.name, timeout=LEADERSHIP_WAIT_S)
        self._set_role(Role.ACTIVE)
        heartbeats = asyncio.create_task(self._beat(), name=f"heartbeat-{self.projection.name}")
        following = asyncio.create_task(self._follow_forever(conn), name=self.projection.name)
        lost = asyncio.Event()

        def on_lost(_: object) -> None:
            # The lock went with the connection, and a standby may hold it now: stop at
            # once rather than at the next batch, so that one runner only calls itself active.
            lost.set()
            following.cancel()

        conn.add_termination_listener(on_lost)
        try:
            await following
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if lost.is_set() and current is not None and not current.cancelling():
                raise LeadershipLostError(f"lost the lock of {self.projection.name}") from None
            raise
        finally:
            for task in (following, heartbeats):
                task.cancel()
            # asyncio.wait, not `suppress(CancelledError)`: the latter would also swallow a
            # cancellation of this task arriving meanwhile, and the runner would never stop.
            await asyncio.wait([following, heartbeats])
            self._set_role(Role.STARTING)
            # Inside the suppress: a dead connection's proxy raises even on is_closed(), and an
            # error here would replace what is propagating (a cancellation included).
            with contextlib.suppress(*_CONNECTION_LOST):
                if not conn.is_closed():
                    await conn.execute(_GIVE_UP_LEADERSHIP, self.projection.name)

    async def _follow_forever(self, conn: Connection) -> None:
        await checkpoints.ensure(conn, self.projection.name)
        while True:
            await self._follow(conn)

    async def _follow(self, conn: Connection) -> None:
        """Apply pages from the checkpoint on; return after a failed batch (to retry it)."""
        async with conn.transaction():
            start = await checkpoints.lock_position(conn, self.projection.name)
        subscription = self._store.subscribe(
            after_position=start,
            page_size=self._page_size,
            poll_interval=self._poll_interval,
            data_of=self.projection.data_of,
            data_without=self.projection.data_without,
            min_interval=self.batch_interval,
        )
        async with contextlib.aclosing(aiter(subscription)) as pages:
            async for page in pages:
                if not await self._apply_or_record(conn, page):
                    await asyncio.sleep(self._backoff.next())
                    return
                self._backoff.reset()

    async def _apply_or_record(self, conn: Connection, page: Sequence[RecordedEvent]) -> bool:
        try:
            await self.apply_batch(conn, page)
        except _CONNECTION_LOST:
            raise
        except Exception as err:  # noqa: BLE001 — the projector's outer edge: record, retry
            _log.exception(
                "projection failed on a batch; it will be retried",
                extra={"projection": self.projection.name, "position": page[0].position},
            )
            await self._record_error(err, page[0].position)
            return False
        return True

    async def apply_batch(self, conn: Connection, page: Sequence[RecordedEvent]) -> None:
        """Apply `page` and advance the checkpoint in one transaction."""
        async with conn.transaction():
            done = await checkpoints.lock_position(conn, self.projection.name)
            fresh = [event for event in page if event.position > done]
            if fresh:
                await self.projection.apply(conn, fresh)
                await checkpoints.advance(conn, self.projection.name, fresh[-1].position, self.name)
        if fresh:
            self.position = fresh[-1].position
            self.batches_applied += 1
            self.last_batch_size = len(fresh)
            if self._on_advanced is not None:
                self._on_advanced(self.projection.name, self.position)

    async def _record_error(self, err: Exception, position: int) -> None:
        message = f"{type(err).__name__}: {err}"
        with contextlib.suppress(*_CONNECTION_LOST):
            async with self._pool.acquire() as conn:
                await checkpoints.record_error(conn, self.projection.name, message, position)

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(*_CONNECTION_LOST):
                async with self._pool.acquire() as conn:
                    await checkpoints.heartbeat(conn, self.projection.name, self.name)
            await asyncio.sleep(self._heartbeat_interval)

    def _set_role(self, role: Role) -> None:
        if role is not self.role:
            self.role = role
            self.role_changed.set()
            self.role_changed = asyncio.Event()
            _log.info(
                "projection runner role",
                extra={"projection": self.projection.name, "role": role.value},
            )

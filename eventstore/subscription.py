"""Catch up from a position, then follow the log as it grows.

New commits are announced with NOTIFY by the writer (inside the writing transaction, so the
notification arrives only after the events are visible). A notification only *wakes* the
subscriber; what it reads is always "events after my position" from the table, so a lost or
merged notification costs latency, never events. Polling every `poll_interval` is the fallback
for when the listening connection is gone; it is re-established on the next wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from typing import TYPE_CHECKING

import asyncpg

from .batching import NOTIFY_CHANNEL
from .records import RecordedEvent

if TYPE_CHECKING:
    from .store import EventStore

_log = logging.getLogger(__name__)

# What a dead or half-used listening connection can raise. InternalClientError ("another
# operation is in progress") comes from a connection whose statement was interrupted by a
# cancellation or an outage; such a connection is closed, never given back to the pool as is.
_DRIVER_ERRORS = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


class Subscription:
    """An async iterator of pages of events, in log order, each page non-empty.

    `position` is the position of the last event handed out; iterating again after an error
    (e.g. a database outage surfaced by the read) resumes from there.
    """

    def __init__(
        self,
        store: EventStore,
        pool: asyncpg.Pool,
        *,
        after_position: int,
        page_size: int,
        poll_interval: float,
        data_of: Collection[str] | None = None,
        data_without: Collection[str] = (),
        min_interval: float = 0.0,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`data_of`, `data_without`: as for `EventStore.read_all`. `min_interval`: after a
        page that caught up, the next read waits until this long after the last one began
        (`pause(seconds)` does the waiting; tests pass their own)."""
        self._store = store
        self._data_of = data_of
        self._data_without = data_without
        self._pool = pool
        self.position = after_position
        self._page_size = page_size
        self._poll_interval = poll_interval
        self._min_interval = min_interval
        self._pause = pause
        self._wakeup = asyncio.Event()
        self._listener: asyncpg.pool.PoolConnectionProxy | None = None

    def __aiter__(self) -> AsyncGenerator[list[RecordedEvent], None]:
        return self._pages()

    async def _pages(self) -> AsyncGenerator[list[RecordedEvent], None]:
        try:
            while True:
                await self._ensure_listening()
                # Clear before reading: a notification that lands during the read wakes us
                # again, so no commit can fall between the read and the wait.
                self._wakeup.clear()
                began = time.monotonic()
                page = await self._store.read_all(
                    after_position=self.position,
                    limit=self._page_size,
                    data_of=self._data_of,
                    data_without=self._data_without,
                )
                if page:
                    self.position = page[-1].position
                    yield page
                    if len(page) == self._page_size:
                        continue
                # Under a steady stream of commits every notification would start a read and
                # a batch of a few events; waiting out `min_interval` lets the events of many
                # commits share one read and one batch.
                rest = self._min_interval - (time.monotonic() - began)
                if rest > 0:
                    await self._pause(rest)
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives as the wake-up does, and the task would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._wakeup.wait()
        finally:
            await self._stop_listening()

    @property
    def is_listening(self) -> bool:
        if self._listener is None:
            return False
        try:
            return not self._listener.is_closed()
        except asyncpg.InterfaceError:  # the pool took the dead connection back already
            return False

    @property
    def listener_pid(self) -> int | None:
        """The server process of the listening connection (for operators and tests)."""
        return self._listener.get_server_pid() if self.is_listening else None  # type: ignore[union-attr]

    async def _ensure_listening(self) -> None:
        if self.is_listening:
            return
        await self._stop_listening()
        try:
            conn = await self._pool.acquire()
        except _DRIVER_ERRORS as err:
            _log.warning("subscription cannot listen (%s); polling", type(err).__name__)
            return
        # Owned from here on, so that `_stop_listening` gives it back whatever happens next
        # (a cancellation included): a connection that is never released hangs pool.close().
        self._listener = conn
        try:
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            conn.add_termination_listener(self._on_terminated)
        except _DRIVER_ERRORS as err:
            _log.warning("subscription cannot listen (%s); polling", type(err).__name__)
            await self._stop_listening()

    async def _stop_listening(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None:
            return
        clean = False
        try:
            await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            clean = True
        except _DRIVER_ERRORS:
            pass
        finally:
            # A proxy the pool already took back (its connection died) refuses both calls.
            with contextlib.suppress(asyncpg.InterfaceError):
                if not clean:  # failed or cancelled half-way: its state is unknown, close it
                    conn.terminate()
            with contextlib.suppress(*_DRIVER_ERRORS):
                await self._pool.release(conn)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    def _on_terminated(self, *_: object) -> None:
        # The listening connection died: wake up to read and to listen again.
        self._wakeup.set()

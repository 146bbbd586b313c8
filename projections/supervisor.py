"""Runs every projection's runner in this process and answers "has position N been applied?"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence

import asyncpg

from eventstore import EventStore
from projections.base import Projection
from projections.runner import Backoff, ProjectionRunner

_log = logging.getLogger(__name__)

_POSITIONS = "SELECT name, position FROM projection_checkpoints WHERE name = ANY($1::text[])"


LIVE_BATCH_INTERVALS_S: Mapping[str, float] = {"run_records": 0.05}
"""Once caught up, run_records (and the client reports) begins a batch at most every 50 ms.
Under load a batch per group commit cost four runners a read and a transaction each, 60 times
a second: a quarter of the server's time. The lag this adds is at most 50 ms."""
LIVE_DIAGNOSTICS_BATCH_INTERVAL_S = 0.25
"""The diagnostics (missing records, rejections, dead letters): a batch at most every 250 ms.
Most batches hold none of their events, so each costs a read and a checkpoint for nothing
(measured against 50 ms: 1,292-1,401 against 1,356-1,644 deliveries/s, three rounds A/B).
They lag at most 250 ms behind, a quarter of the one-second target."""


def projection_pool_size(projections: int) -> int:
    """Connections the runners need: per projection, its election connection, its LISTEN
    connection, a page read and a heartbeat; plus two for `wait_for` and error records."""
    return 4 * projections + 2


class ProjectionSupervisor:
    """Owns the runner tasks; `wait_for` serves the queries' `min_position` (read your writes).

    Runners here wake waiters directly. When another process is the active runner, the
    checkpoint rows are polled instead, at `poll_interval`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        projections: Sequence[Projection],
        *,
        poll_interval: float = 0.05,
        runner_poll_interval: float = 1.0,
        batch_interval: float = 0.0,
        batch_intervals: Mapping[str, float] | None = None,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        """`on_batch(projection, events)` hears of each batch a runner here applied;
        `batch_interval`: as for ProjectionRunner, for every projection not named in
        `batch_intervals` (projection name -> its own)."""
        self._pool = pool
        self._on_batch = on_batch
        self._advanced = asyncio.Event()
        self._poll_interval = poll_interval
        self.runners = [
            ProjectionRunner(
                pool,
                store,
                projection,
                poll_interval=runner_poll_interval,
                batch_interval=(batch_intervals or {}).get(projection.name, batch_interval),
                on_advanced=self._note_advance,
                backoff=Backoff(),
            )
            for projection in projections
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._by_name = {r.projection.name: r for r in self.runners}

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(r.run(), name=f"projection-{r.projection.name}")
            for r in self.runners
        ]

    async def stop(self) -> None:
        """Cancel the runners and wait for them; a runner that fails while stopping is logged,
        never allowed to abort the shutdown of the others (or of the pool after them)."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                _log.error("projection runner failed while stopping", exc_info=task.exception())
        self._tasks = []

    def _note_advance(self, name: str, position: int) -> None:
        if self._on_batch is not None:
            self._on_batch(name, self._by_name[name].last_batch_size)
        # Wake everyone waiting on this event; later waiters take the fresh one.
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def positions(self, names: Sequence[str]) -> dict[str, int]:
        rows = await self._pool.fetch(_POSITIONS, list(names))
        return {row["name"]: row["position"] for row in rows}

    async def wait_for(self, names: Sequence[str], position: int, *, within_s: float) -> bool:
        """True once every named projection has applied the log up to `position`."""
        try:
            async with asyncio.timeout(within_s):
                while True:
                    advanced = self._advanced  # taken before reading: no wake-up is missed
                    current = await self.positions(names)
                    if len(current) == len(names) and min(current.values()) >= position:
                        return True
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._poll_interval):
                            await advanced.wait()
        except TimeoutError:
            return False


def live_supervisor(
    pool: asyncpg.Pool,
    store: EventStore,
    projections: Sequence[Projection],
    *,
    on_batch: Callable[[str, int], None] | None = None,
) -> ProjectionSupervisor:
    """The supervisor of projections that follow a live log, paced as above: the one `serve`
    runs, and the one `runledger projections run` runs in a process of its own. (Without the
    pacing, the latter began a batch per commit: PostgreSQL worked twice as hard and serve
    applied 2,001-2,015 deliveries/s beside it against 2,341-2,414/s with it paced;
    BENCHMARKS.md, fifth ingest series.)"""
    return ProjectionSupervisor(
        pool,
        store,
        projections,
        batch_interval=LIVE_DIAGNOSTICS_BATCH_INTERVAL_S,
        batch_intervals=LIVE_BATCH_INTERVALS_S,
        on_batch=on_batch,
    )

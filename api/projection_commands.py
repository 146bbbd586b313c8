"""`runledger projections status|rebuild|run`: the operator's view of the projections."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from eventstore import EventStore, create_pool
from eventstore.pool import close_pool
from projections import checkpoints
from projections.base import Projection
from projections.rebuild import rebuild
from projections.registry import all_projections, projection_named
from projections.supervisor import live_supervisor, projection_pool_size


async def show_status(dsn: str, console: Console) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with EventStore(pool) as store:
            head = await store.head_position()
        async with pool.acquire() as conn:
            rows = {c.name: c for c in await checkpoints.read_all(conn)}
    finally:
        await close_pool(pool)
    table = Table(title=f"projections (log head: position {head})")
    for column in ("projection", "position", "lag", "heartbeat", "runner", "last error"):
        table.add_column(column)
    now = datetime.now(UTC)
    for projection in all_projections():
        row = rows.get(projection.name)
        if row is None:
            table.add_row(projection.name, "0", str(head), "never", "-", "-")
            continue
        age = (now - row.heartbeat_at).total_seconds()
        error = f"at {row.failing_position}: {row.last_error}" if row.last_error else "-"
        table.add_row(
            projection.name, str(row.position), str(head - row.position),
            f"{age:.0f}s ago", row.runner or "-", error,
        )  # fmt: skip
    console.print(table)


async def rebuild_projections(dsn: str, name: str | None, console: Console) -> None:
    targets = [projection_named(name)] if name else all_projections()
    pool = await create_pool(dsn, min_size=2, max_size=4)
    try:
        async with EventStore(pool) as store:
            for projection in targets:
                await _rebuild_one(pool, store, projection, console)
    finally:
        await close_pool(pool)


async def _rebuild_one(
    pool: asyncpg.Pool, store: EventStore, projection: Projection, console: Console
) -> None:
    columns = (
        TextColumn(f"rebuilding {projection.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} events/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(projection.name, total=None, rate="-")
        started = time.monotonic()

        def progress(done: int, head: int) -> None:
            elapsed = time.monotonic() - started
            rate = f"{done / elapsed:,.0f}" if elapsed > 0 else "-"
            bar.update(task, completed=done, total=head, rate=rate)

        result = await rebuild(pool, store, projection, progress=progress)
    console.print(
        f"{result.name}: {result.events} events replayed, swapped in at position "
        f"{result.position} ({time.monotonic() - started:.1f}s)"
    )


async def run_projections(dsn: str) -> None:
    """Run every projection in this process until cancelled (Ctrl-C / SIGTERM)."""
    projections = all_projections()
    pool = await create_pool(dsn, min_size=2, max_size=projection_pool_size(len(projections)))
    try:
        async with EventStore(pool) as store:
            supervisor = live_supervisor(pool, store, projections)
            supervisor.start()
            try:
                await asyncio.Event().wait()
            finally:
                await supervisor.stop()
    finally:
        await close_pool(pool)

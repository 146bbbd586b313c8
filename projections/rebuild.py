"""Rebuild a projection from position 0 while the old tables keep serving, then swap.

1. Create an empty copy of each of its tables in a schema of its own (`rebuild_<name>`), with
   `LIKE … INCLUDING ALL` so columns, defaults, constraints and indexes match the migrations.
2. Replay the whole log into the copies in large batches, with `search_path` pointing at the
   rebuild schema: the projection's own SQL, unchanged, writes the copies.
3. Swap in one transaction: lock the checkpoint row (the live runner waits), apply what was
   appended meanwhile, replace the live tables by the copies, set the checkpoint. Readers see
   the old tables or the new ones, never a mix; the live runner resumes after the checkpoint.
Interrupting it is safe: the live tables are untouched until the swap, and a rerun starts over
with a fresh rebuild schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg

from eventstore import EventStore, RecordedEvent
from eventstore.pool import Connection
from projections import checkpoints
from projections.base import Projection
from projections.runner import runner_name

REBUILD_PAGE = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class RebuildResult:
    name: str
    events: int
    position: int


def quote_ident(name: str) -> str:
    """The one way a varying identifier enters our SQL: double-quoted, quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def rebuild_schema(projection: Projection) -> str:
    return f"rebuild_{projection.name}"


async def _apply_page(
    conn: Connection, projection: Projection, schema: str, page: list[RecordedEvent]
) -> None:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}, public")
        await projection.apply(conn, page)


async def rebuild(
    pool: asyncpg.Pool,
    store: EventStore,
    projection: Projection,
    *,
    progress: Callable[[int, int], None] = lambda done, head: None,
    page_size: int = REBUILD_PAGE,
) -> RebuildResult:
    """Rebuild `projection` from the start of the log; `progress(position, head)` as it goes."""
    schema = rebuild_schema(projection)
    async with pool.acquire() as conn:
        await _prepare(conn, projection, schema)
        head = await store.head_position()

        def advanced(position: int) -> None:
            nonlocal head
            head = max(head, position)
            progress(position, head)

        with cyclic_gc_paused():
            position, count = await _replay(conn, store, projection, schema, page_size, advanced)
        position, late = await _swap(conn, store, projection, schema, position)
        progress(position, max(head, position))
    return RebuildResult(name=projection.name, events=count + late, position=position)


async def _replay(
    conn: Connection,
    store: EventStore,
    projection: Projection,
    schema: str,
    page_size: int,
    advanced: Callable[[int], None],
) -> tuple[int, int]:
    """Apply the whole log page by page; return (last position, events applied).

    The next page is read (on another of the pool's connections) while this one is applied:
    the server's work on one overlaps Python's on the other, instead of taking turns.
    """
    position, count = 0, 0
    reading = asyncio.create_task(store.read_all(after_position=0, limit=page_size))
    try:
        while page := await reading:
            position, count = page[-1].position, count + len(page)
            reading = asyncio.create_task(store.read_all(after_position=position, limit=page_size))
            await _apply_page(conn, projection, schema, page)
            del page  # before the next page arrives: at most two pages are alive at once
            advanced(position)
    finally:
        if not reading.done():
            reading.cancel()
            await asyncio.wait([reading])
    return position, count


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a rebuild replays the log.

    A page is thousands of freshly parsed events (~80 objects each) that live until the page is
    applied: every young-generation collection would traverse them, only to find no cycle
    (events, records and rows hold none; reference counting frees them). That cost 15 % of a
    rebuild here. Paused for the whole replay (not per page: each resumption would traverse
    the page that is being read ahead); whatever cyclic garbage appears meanwhile is collected
    once at the end. It is process-wide: the rebuild runs in a command of its own.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect()


async def _prepare(conn: Connection, projection: Projection, schema: str) -> None:
    async with conn.transaction():
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        for table in projection.tables:
            await conn.execute(
                f"CREATE TABLE {quote_ident(schema)}.{quote_ident(table)}"
                f" (LIKE public.{quote_ident(table)} INCLUDING ALL)"
            )
        await checkpoints.ensure(conn, projection.name)


async def _swap(
    conn: Connection, store: EventStore, projection: Projection, schema: str, position: int
) -> tuple[int, int]:
    """Catch up and swap under the checkpoint row's lock; return (position, late events)."""
    late = 0
    async with conn.transaction():
        await checkpoints.lock_position(conn, projection.name)
        await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}, public")
        while page := await store.read_all(after_position=position, limit=REBUILD_PAGE):
            await projection.apply(conn, page)
            position, late = page[-1].position, late + len(page)
        await conn.execute("SET LOCAL search_path TO public")
        for table in projection.tables:
            await conn.execute(f"DROP TABLE public.{quote_ident(table)}")
            await conn.execute(
                f"ALTER TABLE {quote_ident(schema)}.{quote_ident(table)} SET SCHEMA public"
            )
        await conn.execute(f"DROP SCHEMA {quote_ident(schema)}")
        await checkpoints.advance(conn, projection.name, position, f"rebuild {runner_name()}")
    return position, late

"""Group commit: concurrent appends share one transaction, each caller keeps its own outcome.

Why a lock, and why it is cheap here
------------------------------------
Positions come from an identity sequence, and PostgreSQL hands out sequence numbers when rows
are inserted, not when they commit. Without care, transaction A takes position 10, transaction
B takes 11 and commits first; a reader that has seen 11 moves its checkpoint past 10 and never
sees A's event when it commits a moment later. That is the classic sequence-gap problem of
event stores on PostgreSQL.

We close it the way eventsourcing's `_lock_table` does, with one ordering lock: every writing
transaction takes the same transaction-level advisory lock *before* it inserts, and keeps it
until it commits or rolls back (PostgreSQL releases transaction locks only after the commit is
visible to other sessions). So positions are taken by one transaction at a time and become
visible in the order they were taken: when a reader sees position N, every position below N is
either visible already or belongs to a transaction that rolled back and will never appear.
Positions are therefore ordered but not contiguous, and readers follow "greater than my
checkpoint", never "checkpoint + 1".

A lock per event would cap the log at a few hundred events per second (measured: 32
connections, ~500 events/s). The lock is taken once per *batch*: all appends that arrive while
the previous batch is being written are written together, in one transaction with one INSERT
and one commit (one fsync). The more concurrent callers, the bigger the batches, so throughput
grows with load instead of collapsing under it.

Stream versions are read while holding the lock, so the expected-version check sees every
committed event of the stream; the unique (stream_id, version) and event_id constraints remain as
the database's own backstop.

Pipelining: more than one batch in flight
-----------------------------------------
Up to `writers` writer tasks (2 by default, never more than half the pool) share one queue.
Each keeps its pool connection while there is work, so a batch pays no pool release (`RESET`)
round trip, and gives it back when the queue is empty. A writer that finds work while another
batch is being written does not wait for it in Python: it sends `BEGIN; SELECT
pg_advisory_xact_lock(…)` in one round trip and waits for the lock *inside the server*. When
batch N commits, PostgreSQL hands the lock straight to batch N+1, with no client round trip in
between. Nothing of the reasoning above changes:

- Batch N+1 takes the lock before it reads or inserts anything, and holds it until its commit,
  so positions are still taken by one transaction at a time, in commit order.
- Its state read is a statement that starts after the lock was granted, and therefore after
  batch N's commit was visible (the lock is released only then). In READ COMMITTED each
  statement takes a fresh snapshot, so the read sees batch N's events: a request that expects
  the version batch N just wrote succeeds, one that expects the old version is refused. (This is
  why the lock and the read are separate statements: one statement that locked and read would
  read from the snapshot it took before waiting.) Idempotency by event id follows the same way:
  ids batch N stored are found by batch N+1's read.
- If batch N rolls back, its positions are a gap and batch N+1 reads the state without it.
- Each batch settles its own callers after its own commit; a failed batch is rolled back on its
  connection (a broken connection is given up) and retried request by request, each in its own
  transaction that again takes the lock first.

The fast path: the lock held only inside the server
---------------------------------------------------
Under load the slow path above held the lock across four client round trips (BEGIN and lock,
state read, insert, commit), and each round trip waited for the event loop to get back to the
writer, busy with every other request: the lock was held ~10 ms a batch, and appends were
capped by that chain while the CPU had room (measured: the second writer spent half the time
queued on the lock). So a writer first plans the batch from a state read taken *without* the
lock, then calls `eventstore_append_if_unchanged` (sql/0010) in one round trip outside any
transaction: under the lock, the function checks that the written streams still have the
versions the plan started from and that none of the ids is stored, inserts, notifies, and its
statement's commit releases the lock. The lock is then held for the server's own work, about
a millisecond. The plan is exact whenever the check passes (a plan depends only on those
versions and ids), so nothing above changes. When the check fails (another process wrote one
of the streams meanwhile), or when the read refuses a request (a refusal is always decided
under the lock, as before), the batch takes the slow path unchanged.

Most batches need not even read. A command on a run names the exact version it expects (or
NO_STREAM for a kickoff), and then the version it expects *is* the plan's starting point: if
the stream is elsewhere, the request is refused whatever the read would have said. So a batch
whose requests all name exact versions, on distinct streams, is planned from those and assumes
no id is stored; the server's check is unchanged and refuses it if either assumption is wrong.
The batch is then planned again from a read, as any other batch: a repeat among its requests
gets its original result there and the others are written on the fast path; a stream that
moved is refused by that plan, and the slow path decides under the lock, as before. Half the
round trips of a batch (measured: a batch 10.3 → 7.4 ms, kickoffs +8 %; BENCHMARKS.md).

How the queue is shared: a writer takes everything queued (up to `max_batch_events`). Under a
steady stream of appends, requests that arrive while batch N is in flight form batch N+1 on the
other writer. Splitting one burst into several smaller batches was measured here and rejected:
the state read and the commit cost about the same for 32 rows as for 64, so halving batches
lost more than the overlap won (BENCHMARKS.md). After answering its callers, a writer yields
to the event loop once before deciding the queue is empty, so the callers it just answered can
queue their next appends and the writer keeps its connection under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from .driver_errors import translate_driver_errors
from .errors import (
    DuplicateEventIdError,
    EventStoreError,
    StoreClosedError,
    StoreUnavailableError,
    WrongExpectedVersion,
)
from .pool import Connection
from .records import ANY, NO_STREAM, STREAM_EXISTS, AppendResult, ExpectedVersion

_log = logging.getLogger(__name__)

# The ordering lock every writer takes; any constant works if all writers share it.
ORDERING_LOCK_KEY = 0x72756E6C6F67  # "runlog"
NOTIFY_CHANNEL = "eventstore_appended"
ACQUIRE_TIMEOUT_S = 10.0
"""How long a writer waits for a pool connection before its batch fails as unavailable."""

_TAKE_ORDERING_LOCK = "SELECT pg_advisory_xact_lock($1)"
# The group committer's writers begin and lock in one round trip (a simple-query string cannot
# take parameters, hence the key written out; it is this module's constant, not a value).
_BEGIN_AND_TAKE_ORDERING_LOCK = f"BEGIN; SELECT pg_advisory_xact_lock({ORDERING_LOCK_KEY})"
_COMMIT = "COMMIT"
_ROLLBACK = "ROLLBACK"

# Current version of each stream of the batch, and the events whose ids are already stored.
_READ_BATCH_STATE = """
SELECT s.stream_id,
       (SELECT max(e.version) FROM events AS e WHERE e.stream_id = s.stream_id) AS version,
       NULL::uuid AS event_id, NULL::bigint AS position
  FROM unnest($1::text[]) AS s(stream_id)
UNION ALL
SELECT stream_id, version, event_id, position
  FROM events WHERE event_id = ANY($2::uuid[])
"""

# One INSERT for the whole batch, and a notification to subscribers (delivered on commit).
_INSERT_BATCH = """
WITH inserted AS (
    INSERT INTO events (stream_id, version, event_id, event_type, data, metadata)
    SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[])
    RETURNING position, event_id
), notified AS (
    SELECT pg_notify($7, max(position)::text) FROM inserted
)
SELECT inserted.event_id, inserted.position FROM inserted, notified
"""

_APPEND_IF_UNCHANGED = """
SELECT event_id, event_position FROM eventstore_append_if_unchanged(
    $1, $2, $3::text[], $4::int[], $5::text[], $6::int[], $7::uuid[], $8::text[], $9::jsonb[],
    $10::jsonb[])
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedEvent:
    """A NewEvent whose data and metadata are already JSON bytes (encoded by the caller)."""

    event_id: UUID
    type: str
    data: bytes
    metadata: bytes


@dataclass(slots=True, kw_only=True)
class AppendRequest:
    """One caller's append, waiting for its batch."""

    stream_id: str
    events: tuple[EncodedEvent, ...]
    expected_version: ExpectedVersion
    future: asyncio.Future[AppendResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(slots=True)
class _Plan:
    """What a batch will write and, per request, its outcome or where to find it."""

    rows: list[tuple[str, int, UUID, str, bytes, bytes]] = field(default_factory=list)
    outcomes: list[AppendResult | EventStoreError | None] = field(default_factory=list)
    # request index -> (stream, versions) of rows it adds; filled with positions after insert
    pending: dict[int, tuple[str, list[int], list[UUID]]] = field(default_factory=dict)
    # request index -> index of the earlier request in this batch with the same event ids
    aliases: dict[int, int] = field(default_factory=dict)


def check_expected_version(stream_id: str, expected: ExpectedVersion, actual: int) -> None:
    """Raise WrongExpectedVersion unless a stream at `actual` satisfies `expected`."""
    if expected is ANY:
        return
    if expected is NO_STREAM:
        ok = actual == 0
    elif expected is STREAM_EXISTS:
        ok = actual > 0
    else:
        ok = actual == expected
    if not ok:
        raise WrongExpectedVersion(stream_id, _describe(expected), actual)


def _describe(expected: ExpectedVersion) -> object:
    return expected if isinstance(expected, int) else expected.value


async def write_batch(
    conn: Connection, requests: Sequence[AppendRequest]
) -> list[AppendResult | EventStoreError]:
    """Write `requests` in the caller's open transaction; one outcome per request, in order.

    Takes the ordering lock; the caller commits. Refusals (wrong version, reused ids) are
    outcomes, not exceptions, so one caller's conflict does not fail the others; a database
    error fails the whole batch.
    """
    await conn.execute(_TAKE_ORDERING_LOCK, ORDERING_LOCK_KEY)
    return _settle(*await insert_batch(conn, requests))


async def insert_batch(
    conn: Connection, requests: Sequence[AppendRequest]
) -> tuple[_Plan, dict[UUID, int]]:
    """Read the batch's state and insert its rows; the caller holds the ordering lock.

    Returns the plan and the positions the rows took; `_settle` turns them into outcomes
    (after the commit, so that the lock is not held for Python work that can wait).
    """
    plan = _plan_batch(requests, *await _read_batch_state(conn, requests))
    positions: dict[UUID, int] = {}
    if plan.rows:
        columns = list(zip(*plan.rows, strict=True))
        inserted = await conn.fetch(_INSERT_BATCH, *columns, NOTIFY_CHANNEL)
        positions = {row[0]: row[1] for row in inserted}
    return plan, positions


async def insert_batch_if_unchanged(
    conn: Connection,
    requests: Sequence[AppendRequest],
    on_state_read: Callable[[], None] = lambda: None,
    *,
    read: bool = False,
) -> tuple[_Plan, dict[UUID, int]] | None:
    """The fast path: plan from a read taken without the lock, write in one round trip.

    When every request names the exact version it expects (commands on a run always do), the
    plan needs no read at all: one round trip in all (unless `read`). `on_state_read` hears of
    each read.

    None when the batch needs the slow path (`insert_batch` under the lock): some request is
    refused on the read (a refusal is decided with the lock held, as before), or the streams or
    ids changed between the read and the lock (the server checks; see
    sql/0010_create_append_if_unchanged.sql). Runs outside a transaction: the function's call
    is its own, so the ordering lock is held only while the server inserts and commits.
    """
    stored: dict[UUID, tuple[str, int, int]] = {}
    named = None if read else versions_named_by(requests)
    if named is not None:
        # Every request names the exact version it expects, so that is the plan's state, and
        # the read is saved: the server's check refuses the batch if the stored state differs.
        versions = named
    else:
        on_state_read()
        versions, stored = await _read_batch_state(conn, requests)
    bases = dict(versions)
    plan = _plan_batch(requests, versions, stored)
    if any(isinstance(outcome, EventStoreError) for outcome in plan.outcomes):
        return None
    if not plan.rows:  # every request is a repeat of stored events: nothing to write
        return plan, {}
    written = {stream_id for stream_id, *_ in plan.rows}
    columns = list(zip(*plan.rows, strict=True))
    inserted = await conn.fetch(
        _APPEND_IF_UNCHANGED,
        ORDERING_LOCK_KEY,
        NOTIFY_CHANNEL,
        list(written),
        [bases.get(stream_id, 0) for stream_id in written],
        *columns,
    )
    if not inserted:
        return None
    return plan, {row[0]: row[1] for row in inserted}


def versions_named_by(requests: Sequence[AppendRequest]) -> dict[str, int] | None:
    """The streams' versions when every request names its stream's exact version (a number,
    or NO_STREAM for 0) and no stream has two requests; else None (the state must be read)."""
    versions: dict[str, int] = {}
    for request in requests:
        expected = request.expected_version
        if not request.events or request.stream_id in versions:
            # Nothing to write, so nothing the server would check; or a second request on a
            # stream, whose base is the first one's outcome: read, and decide as before.
            return None
        if expected is NO_STREAM:
            versions[request.stream_id] = 0
        elif isinstance(expected, int):
            versions[request.stream_id] = expected
        else:
            return None  # ANY or STREAM_EXISTS: the stored version decides
    return versions


async def _read_batch_state(
    conn: Connection, requests: Sequence[AppendRequest]
) -> tuple[dict[str, int], dict[UUID, tuple[str, int, int]]]:
    """The batch's streams' versions, and those of its event ids already stored."""
    stream_ids = list({r.stream_id for r in requests})
    event_ids = [e.event_id for r in requests for e in r.events]
    versions: dict[str, int] = {}
    stored: dict[UUID, tuple[str, int, int]] = {}
    for row in await conn.fetch(_READ_BATCH_STATE, stream_ids, event_ids):
        if row["event_id"] is None:
            versions[row["stream_id"]] = row["version"] or 0
        else:
            stored[row["event_id"]] = (row["stream_id"], row["version"], row["position"])
    return versions, stored


def _plan_batch(
    requests: Sequence[AppendRequest],
    versions: dict[str, int],
    stored: dict[UUID, tuple[str, int, int]],
) -> _Plan:
    plan = _Plan()
    first_request_of: dict[UUID, int] = {}
    for index, request in enumerate(requests):
        ids = [e.event_id for e in request.events]
        outcome: AppendResult | EventStoreError | None
        try:
            outcome = _stored_outcome(request, ids, stored)
            if outcome is None and ids[0] in first_request_of:
                plan.aliases[index] = _alias_of(request, ids, first_request_of, requests)
            elif outcome is None:
                actual = versions.get(request.stream_id, 0)
                check_expected_version(request.stream_id, request.expected_version, actual)
                new_versions = list(range(actual + 1, actual + 1 + len(ids)))
                versions[request.stream_id] = new_versions[-1]
                plan.pending[index] = (request.stream_id, new_versions, ids)
                for event, version in zip(request.events, new_versions, strict=True):
                    plan.rows.append(
                        (
                            request.stream_id,
                            version,
                            event.event_id,
                            event.type,
                            event.data,
                            event.metadata,
                        )
                    )
                    first_request_of[event.event_id] = index
        except EventStoreError as err:
            outcome = err
        plan.outcomes.append(outcome)
    return plan


def _stored_outcome(
    request: AppendRequest, ids: list[UUID], stored: dict[UUID, tuple[str, int, int]]
) -> AppendResult | None:
    """The original result when every id was stored before by this same append, else None."""
    found = [stored.get(i) for i in ids]
    if not any(found):
        return None
    if not all(found) or any(f[0] != request.stream_id for f in found if f):
        raise DuplicateEventIdError(
            f"event ids of this append to {request.stream_id} were already stored "
            "by a different append"
        )
    return AppendResult(
        stream_id=request.stream_id,
        positions=tuple(f[2] for f in found if f),
        versions=tuple(f[1] for f in found if f),
        was_duplicate=True,
    )


def _alias_of(
    request: AppendRequest,
    ids: list[UUID],
    first_request_of: dict[UUID, int],
    requests: Sequence[AppendRequest],
) -> int:
    """Two identical appends racing into one batch: the second gets the first one's result."""
    original = first_request_of[ids[0]]
    original_ids = [e.event_id for e in requests[original].events]
    if original_ids != ids or requests[original].stream_id != request.stream_id:
        raise DuplicateEventIdError(
            f"event ids of this append to {request.stream_id} are also in a different append"
        )
    return original


def _settle(plan: _Plan, positions: dict[UUID, int]) -> list[AppendResult | EventStoreError]:
    results: list[AppendResult | EventStoreError] = []
    for index, outcome in enumerate(plan.outcomes):
        if index in plan.pending:
            stream_id, versions, ids = plan.pending[index]
            outcome = AppendResult(
                stream_id=stream_id,
                positions=tuple(positions[i] for i in ids),
                versions=tuple(versions),
            )
        elif index in plan.aliases:
            original = results[plan.aliases[index]]
            if isinstance(original, AppendResult):
                outcome = AppendResult(
                    stream_id=original.stream_id,
                    positions=original.positions,
                    versions=original.versions,
                    was_duplicate=True,
                )
            else:
                outcome = original
        assert outcome is not None
        results.append(outcome)
    return results


def _as_store_error(err: Exception, request: AppendRequest) -> EventStoreError:
    if isinstance(err, EventStoreError):
        return err
    translated = EventStoreError(f"append to {request.stream_id} failed: {err}")
    translated.__cause__ = err
    return translated


class GroupCommitter:
    """Collects concurrent appends and writes them in shared transactions, pipelined.

    Up to `writers` writer tasks drain one queue, each on a connection it holds while there is
    work; while one batch holds the ordering lock, the next can already be open and queued on
    it (see the module docstring). Each caller awaits its own future: its own result or error.
    """

    def __init__(
        self, pool: asyncpg.Pool, *, max_batch_events: int = 1000, writers: int = 2
    ) -> None:
        self._pool = pool
        self._max_batch_events = max_batch_events
        # Never more than half of the pool, so that readers (and a small pool) are not starved.
        self._writers = max(1, min(writers, pool.get_max_size() // 2))
        self._queue: list[AppendRequest] = []
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.batches_written = 0
        self.slow_batches = 0
        """Batches the fast path handed to the locked one (a refusal, or a state that moved)."""
        self.state_reads = 0
        """Batches the fast path planned from a read (some request named no exact version)."""

    async def submit(self, request: AppendRequest) -> AppendResult:
        if self._closed:
            raise StoreClosedError("the event store is closed")
        self._ensure_writers()
        self._queue.append(request)
        self._wakeup.set()
        return await request.future

    def _ensure_writers(self) -> None:
        """Start the writers on first use, and start again any that died: a queue with no
        writer left would hold every caller's future forever."""
        alive = []
        for task in self._tasks:
            if not task.done():
                alive.append(task)
            elif not task.cancelled() and task.exception() is not None:
                _log.error("group-commit writer died; starting another", exc_info=task.exception())
        while len(alive) < self._writers:
            alive.append(asyncio.create_task(self._run(), name="eventstore-group-commit"))
        self._tasks = alive

    async def close(self) -> None:
        """Write what is queued, then stop the writer tasks."""
        self._closed = True
        self._wakeup.set()
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _run(self) -> None:
        conn: PoolConnectionProxy | None = None
        try:
            while True:
                if not self._queue and conn is not None:
                    # The callers our last batch just answered are scheduled before us: let
                    # them queue their next appends before deciding that there is no work.
                    await asyncio.sleep(0)
                    if not self._queue:
                        await self._release(conn)
                        conn = None
                while not self._queue:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                conn = await self._write(conn, self._take_batch())
        finally:
            if conn is not None:  # cancelled (or failed) half-way: its state is unknown
                await self._give_up(conn)

    def _take_batch(self) -> list[AppendRequest]:
        taken, count = 0, 0
        for request in self._queue:
            if taken and count + len(request.events) > self._max_batch_events:
                break
            taken += 1
            count += len(request.events)
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch

    async def _write(
        self, conn: PoolConnectionProxy | None, batch: list[AppendRequest]
    ) -> PoolConnectionProxy | None:
        """Write one batch and answer its callers; the connection to keep using, if any."""
        try:
            if conn is None:
                conn = await self._acquire()
            outcomes = await self._write_in_transaction(conn, batch)
        except Exception as err:  # noqa: BLE001 — every caller must hear about the failure
            conn = await self._discard_if_broken(conn, err)
            if isinstance(err, StoreUnavailableError):
                # The database is gone, not one request poisoned: everyone hears it at once
                # (their events may or may not be committed; an idempotent retry settles it).
                outcomes = [err] * len(batch)
            elif len(batch) > 1:
                # One request may have poisoned the batch (e.g. data the server refuses):
                # write each alone so only the culprit fails.
                for request in batch:
                    conn = await self._write(conn, [request])
                return conn
            else:
                outcomes = [_as_store_error(err, batch[0])]
        for request, outcome in zip(batch, outcomes, strict=True):
            if request.future.done():  # the caller was cancelled; its events may be written
                continue
            if isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)
        return conn

    async def _write_in_transaction(
        self, conn: PoolConnectionProxy, batch: list[AppendRequest]
    ) -> list[AppendResult | EventStoreError]:
        async with translate_driver_errors():
            written = await insert_batch_if_unchanged(conn, batch, self._note_state_read)
            if written is None and versions_named_by(batch) is not None:
                # The plan from the named versions failed the server's check: a stream moved,
                # or one of the ids is stored already (a kickoff repeated after its run left
                # the callers' memory). A plan from a read answers a repeat with its original
                # result and writes the rest on the fast path; a moved stream still refuses.
                written = await insert_batch_if_unchanged(
                    conn, batch, self._note_state_read, read=True
                )
            if written is None:
                self.slow_batches += 1
                # BEGIN and the lock in one round trip: while another batch holds the lock,
                # this one waits for it inside the server, and gets it when that one commits.
                await conn.execute(_BEGIN_AND_TAKE_ORDERING_LOCK)
                written = await insert_batch(conn, batch)
                await conn.execute(_COMMIT)
        self.batches_written += 1
        return _settle(*written)

    def _note_state_read(self) -> None:
        self.state_reads += 1

    async def _acquire(self) -> PoolConnectionProxy:
        async with translate_driver_errors():  # a timeout counts as "database unavailable"
            # Bounded: with every connection taken (or lost to a failing server), callers get
            # a 503 to retry rather than a request that never ends.
            conn: PoolConnectionProxy = await self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S)
        return conn

    async def _discard_if_broken(
        self, conn: PoolConnectionProxy | None, err: Exception
    ) -> PoolConnectionProxy | None:
        """After a failed batch: roll back and keep the connection, or give it up if it fails.

        A connection that failed as unavailable is given up at once: it may be out of step with
        the protocol (cut mid-statement), and then every later statement on it fails too.
        """
        if conn is None:
            return None
        if isinstance(err, StoreUnavailableError):
            await self._give_up(conn)
            return None
        try:
            # A proxy whose connection died was taken back by the pool: both calls then raise
            # InterfaceError, and the connection is given up like any other broken one.
            if not conn.is_closed():
                if conn.is_in_transaction():
                    await conn.execute(_ROLLBACK)
                return conn
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            _log.warning("writer connection given up after %s", type(err).__name__)
        await self._give_up(conn)
        return None

    async def _give_up(self, conn: PoolConnectionProxy) -> None:
        """Close a connection whose state is unknown, and give it back to the pool."""
        with contextlib.suppress(asyncpg.InterfaceError):  # the pool may have taken it back
            conn.terminate()
        await self._release(conn)

    async def _release(self, conn: PoolConnectionProxy) -> None:
        try:
            await self._pool.release(conn)
        except Exception as err:  # noqa: BLE001 — giving a connection back must never end a writer
            _log.warning("writer connection released after %s", type(err).__name__)

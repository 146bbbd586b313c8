"""A run's events as logged: its stream and its orphan stream, read from the log itself.

Not a projection: `GET /runs/{run_id}/events` shows exactly what the log holds, so that a
projection's mistake can be told from the facts.
"""

from __future__ import annotations

from eventstore import EventStore, RecordedEvent
from statemachine import orphan_stream, run_stream


async def read_run_events(store: EventStore, run_id: str) -> list[RecordedEvent]:
    """Every event of `run-<run_id>` and `orphan-<run_id>`, interleaved in log order."""
    return await store.read_streams([run_stream(run_id), orphan_stream(run_id)])

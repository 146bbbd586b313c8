"""What a projection is: a name, the tables it owns, and a batch handler.

Handlers take a whole batch (a page of the log) rather than one event: a rebuild must reach
tens of thousands of events a second, which one SQL round trip per event cannot. A projection
groups the batch as it likes (by run, by client and day) and writes each table once per batch.
The runner calls `apply` inside the transaction that also advances the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eventstore import RecordedEvent
from eventstore.pool import Connection


class Projection(Protocol):
    """A read model built from the log."""

    @property
    def name(self) -> str:
        """Stable name: the checkpoint row, the election lock and the CLI use it."""
        ...

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables it owns (created by sql/ migrations); a rebuild replaces them whole."""
        ...

    @property
    def data_of(self) -> frozenset[str] | None:
        """The event types whose data `apply` reads (None: every type). Events of other types
        still reach `apply`, in order, but with empty data: the runner asks the store not to
        send and decode what the projection would skip."""
        ...

    @property
    def data_without(self) -> frozenset[str]:
        """Top-level keys of event data that `apply` never reads (bulky parts kept for the
        record): the runner asks the store to leave them out."""
        ...

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        """Apply a batch of events, in log order, inside the caller's transaction.

        Unqualified table names only: a rebuild runs the same code with another search_path.
        """
        ...

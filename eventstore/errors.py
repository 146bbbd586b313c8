"""The event store's exceptions. No driver exception crosses the package boundary."""

from __future__ import annotations


class EventStoreError(Exception):
    """Root of every error the event store raises."""


class WrongExpectedVersion(EventStoreError):  # noqa: N818 — a fact, as message-db words it
    """The stream is not at the version the caller expected; reload and retry."""

    def __init__(self, stream_id: str, expected: object, actual: int) -> None:
        super().__init__(
            f"wrong expected version {expected} for stream {stream_id} (actual {actual})"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class DuplicateEventIdError(EventStoreError):
    """An event id is already stored, but not as part of this same append."""


class InvalidEventDataError(EventStoreError):
    """Data or metadata that JSON or PostgreSQL's jsonb cannot hold (e.g. a NUL character)."""


class StoreUnavailableError(EventStoreError):
    """The database cannot be reached right now; the operation may be retried later."""


class StoreClosedError(EventStoreError):
    """The store was closed; no more appends are accepted."""


class MigrationError(EventStoreError):
    """A migration file is missing, changed after it was applied, or failed."""

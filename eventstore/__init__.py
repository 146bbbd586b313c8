"""A generic PostgreSQL event log: streams, versions, global positions. Knows nothing of runs."""

from .driver_errors import translate_driver_errors
from .errors import (
    DuplicateEventIdError,
    EventStoreError,
    InvalidEventDataError,
    MigrationError,
    StoreClosedError,
    StoreUnavailableError,
    WrongExpectedVersion,
)
from .migrate import apply_migrations
from .pool import connect, create_pool
from .records import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamState,
)
from .store import EventStore
from .subscription import Subscription

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "DuplicateEventIdError",
    "EventStore",
    "EventStoreError",
    "ExpectedVersion",
    "InvalidEventDataError",
    "MigrationError",
    "NewEvent",
    "RecordedEvent",
    "StoreClosedError",
    "StoreUnavailableError",
    "StreamState",
    "Subscription",
    "WrongExpectedVersion",
    "apply_migrations",
    "connect",
    "create_pool",
    "translate_driver_errors",
]

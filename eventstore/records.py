"""The values the event store takes and gives back."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID


class StreamState(enum.Enum):
    """Expected versions that are not a number."""

    NO_STREAM = "no_stream"
    """The stream must not exist yet."""
    STREAM_EXISTS = "stream_exists"
    """The stream must have at least one event."""
    ANY = "any"
    """No check: append after whatever is there."""


NO_STREAM: Final = StreamState.NO_STREAM
STREAM_EXISTS: Final = StreamState.STREAM_EXISTS
ANY: Final = StreamState.ANY

ExpectedVersion = StreamState | int
"""`NO_STREAM`, `STREAM_EXISTS`, `ANY`, or the exact version of the stream's last event."""


def _empty_metadata() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """An event to append. `event_id` is the idempotency key: the same id is stored once."""

    event_id: UUID
    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=_empty_metadata)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedEvent:
    """An event as stored: its place in the whole log (position) and in its stream (version)."""

    position: int
    stream_id: str
    version: int
    event_id: UUID
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    """Where an append's events landed. `was_duplicate`: they were stored by an earlier append."""

    stream_id: str
    positions: tuple[int, ...]
    versions: tuple[int, ...]
    was_duplicate: bool = False

    @property
    def last_position(self) -> int:
        return self.positions[-1]

    @property
    def last_version(self) -> int:
        return self.versions[-1]

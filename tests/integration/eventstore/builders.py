"""Builders for generic events: the store knows nothing of runs, so neither do its tests."""

from __future__ import annotations

import uuid
from typing import Any

from eventstore import NewEvent


def new_event(
    type: str = "ThingHappened", data: dict[str, Any] | None = None, **metadata: Any
) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4(),
        type=type,
        data={"n": 1} if data is None else data,
        metadata=metadata,
    )


def new_event_with_id(event_id: uuid.UUID) -> NewEvent:
    return NewEvent(event_id=event_id, type="ThingHappened", data={"n": 1}, metadata={})


def new_events(count: int, type: str = "ThingHappened") -> list[NewEvent]:
    return [new_event(type, {"n": n}) for n in range(count)]


def stream_name() -> str:
    return f"thing-{uuid.uuid4().hex[:12]}"

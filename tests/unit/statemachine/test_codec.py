"""Events to (type, data) and back, for the store."""

from __future__ import annotations

import json
import uuid
from dataclasses import FrozenInstanceError
from datetime import timedelta

import pytest

from statemachine import (
    EVENT_TYPES,
    RECORD_ONLY_FIELDS,
    Event,
    UndecodableEvent,
    UnknownEventType,
    decide,
    decode,
    encode,
    replay,
    slim,
)
from tests.builders import NOW, history_of, kickoff, record_results, webhook


def _one_of_each() -> list[Event]:
    """A real history holding every event type once or more."""
    history = history_of(
        kickoff(),
        webhook("run-created"),
        webhook("run-succeeded"),
        webhook("run-created", dispatch_id="late-created"),  # stale
        webhook("run-failed"),  # invalid transition
        kickoff(request_key="other"),  # duplicate creation
        webhook("run-resurrected"),
        webhook("run-aborted", resurrect_count=1),
        webhook("run-resurrected", resurrect_count=2),
        webhook("run-timed-out", resurrect_count=2),
        webhook("run-failed", resurrect_count=3),  # a newer generation's final
        record_results(details={"by": "processor"}),
    )
    orphan = decide([], webhook("run-succeeded", run_id="orphanRun"), now=NOW + timedelta(days=1))
    return history + orphan


def test_history_for_the_round_trip_holds_every_event_type() -> None:
    assert {type(e) for e in _one_of_each()} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", _one_of_each(), ids=lambda e: type(e).__name__)
def test_every_event_survives_encode_json_and_decode(event: Event) -> None:
    type_name, data = encode(event)
    stored = json.loads(json.dumps(data))

    assert type_name == type(event).__name__
    assert "event_id" not in data
    decoded = decode(event.event_id, type_name, stored)

    assert decoded == event
    with pytest.raises(FrozenInstanceError):
        decoded.run_id = "changed"  # type: ignore[misc]


def test_unknown_event_type_is_refused_as_corrupt_history() -> None:
    with pytest.raises(UnknownEventType, match="RunExploded"):
        decode(uuid.uuid4(), "RunExploded", {})


def test_data_missing_a_field_is_refused_as_corrupt_history() -> None:
    type_name, data = encode(history_of(kickoff())[0])
    del data["run_id"]

    with pytest.raises(UndecodableEvent, match="run_id"):
        decode(uuid.uuid4(), type_name, data)


@pytest.mark.parametrize("event", _one_of_each(), ids=lambda e: type(e).__name__)
def test_slim_decode_of_data_without_the_record_only_fields_empties_them(event: Event) -> None:
    type_name, data = encode(event)
    trimmed = {k: v for k, v in data.items() if k not in RECORD_ONLY_FIELDS}

    assert decode(event.event_id, type_name, trimmed, slim=True) == slim(event)
    assert decode(event.event_id, type_name, data, slim=True) == slim(event)


def test_a_slim_history_replays_to_the_same_state() -> None:
    history = _one_of_each()[:-1]  # one run's stream
    slim_history = [decode(e.event_id, *_trimmed(e), slim=True) for e in history]
    assert replay(slim_history) == replay(history)


def _trimmed(event: Event) -> tuple[str, dict[str, object]]:
    type_name, data = encode(event)
    return type_name, {k: v for k, v in data.items() if k not in RECORD_ONLY_FIELDS}

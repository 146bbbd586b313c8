"""Deterministic ids and stream names."""

from __future__ import annotations

from statemachine import (
    delivery_event_id,
    kickoff_event_id,
    orphan_rejection_id,
    orphan_stream,
    results_event_id,
    run_stream,
)
from tests.builders import NOW


def test_ids_are_the_same_for_the_same_inputs_and_differ_between_kinds() -> None:
    ids = [
        kickoff_event_id("run1", "key"),
        delivery_event_id("run1|key"),
        results_event_id("run1", "key"),
        orphan_rejection_id("run1|key", NOW),
    ]

    assert ids == [
        kickoff_event_id("run1", "key"),
        delivery_event_id("run1|key"),
        results_event_id("run1", "key"),
        orphan_rejection_id("run1|key", NOW),
    ]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 5 for i in ids)


def test_stream_names_follow_category_dash_id() -> None:
    assert (run_stream("abc"), orphan_stream("abc")) == ("run-abc", "orphan-abc")

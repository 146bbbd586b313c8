"""Properties over shuffled, duplicated deliveries of real fixtures (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine import (
    ApplyApifyWebhook,
    Event,
    RunState,
    RunStatus,
    decide,
    decode,
    delivery_event_id,
    encode,
    evolve,
    replay,
)
from tests.builders import FIXTURE_RUN_ID, NOW, history_of, kickoff, webhook

_FINAL_STATUS = {
    "run-succeeded": RunStatus.SUCCEEDED,
    "run-failed": RunStatus.FAILED,
    "run-aborted": RunStatus.ABORTED,
    "run-timed-out": RunStatus.TIMED_OUT,
}


def _pool() -> list[ApplyApifyWebhook]:
    """Deliveries of one run across three generations, with and without dispatch ids."""
    pool = [webhook("run-created"), webhook("run-resurrected")]
    pool += [webhook(name) for name in _FINAL_STATUS]
    pool += [webhook(name, resurrect_count=1) for name in ("run-succeeded", "run-failed")]
    pool.append(webhook("documented/run-resurrected-twice", run_id=FIXTURE_RUN_ID))
    pool.append(webhook("run-aborted", resurrect_count=2))
    pool += [webhook(name, without_dispatch_id=True) for name in ("run-created", "run-failed")]
    return pool


_POOL = _pool()
_EXAMPLES = settings(max_examples=150, deadline=None)


@_EXAMPLES
@given(st.lists(st.sampled_from(_POOL), max_size=14))
def test_any_sequence_of_deliveries_yields_one_outcome_each_and_replays_exactly(
    deliveries: list[ApplyApifyWebhook],
) -> None:
    history = history_of(kickoff())
    state = replay(history)
    for step, command in enumerate(deliveries, start=1):
        seen = {event.event_id for event in history}
        event_id = delivery_event_id(command.delivery.delivery_key)

        events = decide(history, command, now=NOW.replace(minute=step))

        if event_id in seen:
            assert events == []
        else:
            assert [event.event_id for event in events] == [event_id]
        history += events
        for event in events:
            state = evolve(state, event)
        assert replay(history) == state
        assert decide(history, command, now=NOW.replace(minute=step, second=30)) == []


@_EXAMPLES
@given(
    st.lists(st.sampled_from(_POOL), min_size=1, max_size=10),
    st.integers(min_value=0, max_value=9),
)
def test_a_duplicated_delivery_never_changes_the_state(
    deliveries: list[ApplyApifyWebhook], pick: int
) -> None:
    history = history_of(kickoff(), *deliveries)
    again = deliveries[pick % len(deliveries)]

    assert decide(history, again, now=NOW.replace(hour=23)) == []
    assert history_of(kickoff(), *deliveries, again) == history


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(_FINAL_STATUS)),
    st.sampled_from(sorted(_FINAL_STATUS)),
    st.permutations(range(4)),
    st.lists(st.integers(min_value=0, max_value=3), max_size=3),
)
def test_final_status_after_shuffled_real_deliveries_is_the_last_generations_final(
    first_final: str, last_final: str, order: list[int], repeats: list[int]
) -> None:
    deliveries = [
        webhook("run-created"),
        webhook(first_final),
        webhook("run-resurrected"),
        webhook(last_final, resurrect_count=1),
    ]
    sequence = [deliveries[i] for i in [*order, *repeats]]

    state = replay(history_of(kickoff(), *sequence))

    assert isinstance(state, RunState)
    assert (state.status, state.resurrect_count) == (_FINAL_STATUS[last_final], 1)


@_EXAMPLES
@given(st.lists(st.sampled_from(_POOL), max_size=10))
def test_stored_and_decoded_history_replays_to_the_same_state(
    deliveries: list[ApplyApifyWebhook],
) -> None:
    history = history_of(kickoff(), *deliveries)
    stored: list[Event] = [decode(e.event_id, *encode(e)) for e in history]

    assert replay(stored) == replay(history)

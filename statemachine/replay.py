"""The fold from a run's events to its state: `evolve` one event, `replay` a whole stream.

`evolve` trusts the events: they were judged by `decide` when they were recorded, and replay
must reproduce what was recorded, not judge it again (which also keeps it fast: the projection
rebuild needs well over 200,000 events a second). It refuses only what cannot be a run's
history: a first event that is not `RunCreated`, a second `RunCreated`, another run's event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from statemachine.errors import CorruptHistory
from statemachine.events import (
    ApifyRunEvent,
    Event,
    ResultsRecorded,
    RunAborted,
    RunCreated,
    RunFailed,
    RunResurrected,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
    UpdateRejected,
)
from statemachine.states import TERMINAL_STATUSES, JsonObject, RunState, RunStatus

STATUS_AFTER: dict[type[ApifyRunEvent], RunStatus] = {
    RunStarted: RunStatus.RUNNING,
    RunSucceeded: RunStatus.SUCCEEDED,
    RunFailed: RunStatus.FAILED,
    RunAborted: RunStatus.ABORTED,
    RunTimedOut: RunStatus.TIMED_OUT,
    RunResurrected: RunStatus.RUNNING,
}
# Keyed by class, not by status: an Enum member hashes through a Python-level __hash__.
_STATUS_AFTER: dict[type[ApifyRunEvent], tuple[RunStatus, bool]] = {
    cls: (status, status in TERMINAL_STATUSES) for cls, status in STATUS_AFTER.items()
}


def evolve(state: RunState | None, event: Event) -> RunState:
    """The run's state after `event`; raise `CorruptHistory` if `event` cannot follow `state`."""
    if state is None:
        if type(event) is RunCreated:
            return _created(event)
        raise CorruptHistory(
            f"run {event.run_id}: the first event is {type(event).__name__}, not RunCreated"
        )
    if event.run_id != state.run_id:
        raise CorruptHistory(
            f"run {state.run_id}: its stream holds {type(event).__name__} {event.event_id} "
            f"of run {event.run_id}"
        )
    if isinstance(event, ApifyRunEvent):
        return _status_changed(state, event)
    if isinstance(event, ResultsRecorded):
        return _results_recorded(state, event)
    if isinstance(event, UpdateRejected):
        # A rejection changes nothing but the count (a missing_run_record one belongs in the
        # orphan stream; should one be found in a run stream it is counted and ignored too).
        return _with_count(state, state.metrics, state.updated_at)
    raise CorruptHistory(f"run {state.run_id}: a second RunCreated ({event.event_id})")


def replay(events: Iterable[Event]) -> RunState | None:
    """Fold a run stream in order; `None` for an empty one."""
    state: RunState | None = None
    for event in events:
        state = evolve(state, event)
    return state


def _created(event: RunCreated) -> RunState:
    return _assemble(
        event.run_id,
        event.client_id,
        event.actor_id,
        event.task_id,
        event.requested_by,
        event.input,
        RunStatus.CREATED,
        None,
        None,
        event.at,
        None,
        None,
        None,
        None,
        None,
        0,
        (),
        1,
        event.at,
    )


def _duration(
    started: datetime | None, finished: datetime | None, run_time_s: float | None
) -> float | None:
    if started is not None and finished is not None:
        seconds = (finished - started).total_seconds()
        if seconds >= 0:
            return seconds
    return run_time_s


def _status_changed(state: RunState, event: ApifyRunEvent) -> RunState:
    status, terminal = _STATUS_AFTER[type(event)]
    started = state.started_at if event.started_at is None else event.started_at
    # A running run has not finished, whatever the snapshot says (Apify's own example of a
    # resurrected run still carries the previous finishedAt).
    if terminal:
        finished = event.finished_at
        duration = _duration(started, finished, event.run_time_s)
    else:
        finished = None
        duration = None
    return _assemble(
        state.run_id,
        state.client_id,
        state.actor_id,
        state.task_id,
        state.requested_by,
        state.input,
        status,
        event.apify_status,
        event.status_message,
        state.created_at,
        started,
        finished,
        duration,
        state.dataset_id if event.dataset_id is None else event.dataset_id,
        state.usage_usd if event.usage_usd is None else event.usage_usd,
        event.resurrect_count,
        state.metrics,
        state.event_count + 1,
        event.at,
    )


def _results_recorded(state: RunState, event: ResultsRecorded) -> RunState:
    merged = dict(state.metrics)
    merged.update(event.metrics)
    return _with_count(state, tuple(sorted(merged.items())), event.at)


def _with_count(
    state: RunState, metrics: tuple[tuple[str, float], ...], updated_at: datetime
) -> RunState:
    return _assemble(
        state.run_id,
        state.client_id,
        state.actor_id,
        state.task_id,
        state.requested_by,
        state.input,
        state.status,
        state.apify_status,
        state.status_message,
        state.created_at,
        state.started_at,
        state.finished_at,
        state.duration_s,
        state.dataset_id,
        state.usage_usd,
        state.resurrect_count,
        metrics,
        state.event_count + 1,
        updated_at,
    )


# Why not `RunState(...)`: a frozen dataclass's __init__ sets each of the 19 fields through
# object.__setattr__, ~3.4 µs a state, most of the whole fold's budget (200,000 events/s is
# 5 µs an event). Setting the slots through their descriptors gives the same, equal, frozen
# object in ~1.9 µs. `_assemble` must list every field in declaration order:
# test_replay.py::test_fast_assembly_equals_the_dataclass_constructor checks it.
def _slot(name: str) -> Callable[[RunState, object], None]:
    setter: Callable[[RunState, object], None] = RunState.__dict__[name].__set__
    return setter


_new = object.__new__
_set_run_id = _slot("run_id")
_set_client_id = _slot("client_id")
_set_actor_id = _slot("actor_id")
_set_task_id = _slot("task_id")
_set_requested_by = _slot("requested_by")
_set_input = _slot("input")
_set_status = _slot("status")
_set_apify_status = _slot("apify_status")
_set_status_message = _slot("status_message")
_set_created_at = _slot("created_at")
_set_started_at = _slot("started_at")
_set_finished_at = _slot("finished_at")
_set_duration_s = _slot("duration_s")
_set_dataset_id = _slot("dataset_id")
_set_usage_usd = _slot("usage_usd")
_set_resurrect_count = _slot("resurrect_count")
_set_metrics = _slot("metrics")
_set_event_count = _slot("event_count")
_set_updated_at = _slot("updated_at")


def _assemble(
    run_id: str,
    client_id: str,
    actor_id: str | None,
    task_id: str | None,
    requested_by: str | None,
    input: JsonObject,
    status: RunStatus,
    apify_status: str | None,
    status_message: str | None,
    created_at: datetime,
    started_at: datetime | None,
    finished_at: datetime | None,
    duration_s: float | None,
    dataset_id: str | None,
    usage_usd: float | None,
    resurrect_count: int,
    metrics: tuple[tuple[str, float], ...],
    event_count: int,
    updated_at: datetime,
    /,
) -> RunState:
    state: RunState = _new(RunState)
    _set_run_id(state, run_id)
    _set_client_id(state, client_id)
    _set_actor_id(state, actor_id)
    _set_task_id(state, task_id)
    _set_requested_by(state, requested_by)
    _set_input(state, input)
    _set_status(state, status)
    _set_apify_status(state, apify_status)
    _set_status_message(state, status_message)
    _set_created_at(state, created_at)
    _set_started_at(state, started_at)
    _set_finished_at(state, finished_at)
    _set_duration_s(state, duration_s)
    _set_dataset_id(state, dataset_id)
    _set_usage_usd(state, usage_usd)
    _set_resurrect_count(state, resurrect_count)
    _set_metrics(state, metrics)
    _set_event_count(state, event_count)
    _set_updated_at(state, updated_at)
    return state

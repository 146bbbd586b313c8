"""`decide`: given a run's past events and a command, the events the command produces.

Pure: no clock (`now` is an argument), no random ids (see ids.py), no I/O. Every command yields
exactly one event, accepted or rejected, except a repeat of one already decided, which yields
none. The judgement of Apify deliveries is written out in docs/lifecycle.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from statemachine import lifecycle
from statemachine.apify import ApifyDelivery
from statemachine.commands import ApplyApifyWebhook, Command, KickoffRun, RecordResults
from statemachine.errors import InvalidTransition
from statemachine.events import (
    Event,
    RejectionReason,
    ResultsRecorded,
    RunAborted,
    RunCreated,
    RunFailed,
    RunResurrected,
    RunStarted,
    RunStatusEvent,
    RunSucceeded,
    RunTimedOut,
    UpdateRejected,
)
from statemachine.ids import (
    delivery_event_id,
    kickoff_event_id,
    orphan_rejection_id,
    results_event_id,
)
from statemachine.replay import STATUS_AFTER, replay
from statemachine.states import RunState, RunStatus

# Apify event type -> (lifecycle trigger, the event it becomes when applied).
WEBHOOK_STEPS: dict[str, tuple[str, type[RunStatusEvent]]] = {
    "ACTOR.RUN.CREATED": ("start", RunStarted),
    "ACTOR.RUN.SUCCEEDED": ("succeed", RunSucceeded),
    "ACTOR.RUN.FAILED": ("fail", RunFailed),
    "ACTOR.RUN.ABORTED": ("abort", RunAborted),
    "ACTOR.RUN.TIMED_OUT": ("time_out", RunTimedOut),
    "ACTOR.RUN.RESURRECTED": ("resurrect", RunResurrected),
}

# The order of statuses within one generation (resurrect count): a lower rank never follows.
_RANK: dict[RunStatus, int] = {
    RunStatus.CREATED: 0,
    RunStatus.RUNNING: 1,
    RunStatus.TIMING_OUT: 2,
    RunStatus.ABORTING: 2,
    RunStatus.SUCCEEDED: 3,
    RunStatus.FAILED: 3,
    RunStatus.TIMED_OUT: 3,
    RunStatus.ABORTED: 3,
}

_Verdict = tuple[RejectionReason, str] | None


def decide(history: Sequence[Event], command: Command, *, now: datetime) -> list[Event]:
    """The events `command` produces on the run whose stream is `history`.

    Raises `CorruptHistory` when `history` is not a run's history.
    """
    if now.tzinfo is None:
        raise ValueError("decide needs an aware `now` (with a time zone)")
    state = replay(history)
    if state is None:
        if isinstance(command, KickoffRun):
            return [_run_created(command, now)]
        return [_missing_run_record(command, now)]
    if command.run_id != state.run_id:
        raise ValueError(f"command for run {command.run_id} given the history of {state.run_id}")
    seen = {event.event_id for event in history}
    if isinstance(command, KickoffRun):
        return _kickoff_again(state, seen, command, now)
    if isinstance(command, ApplyApifyWebhook):
        return _apply_delivery(state, seen, command.delivery, now)
    return _record_results(seen, command, now)


def _run_created(command: KickoffRun, now: datetime) -> RunCreated:
    return RunCreated(
        event_id=kickoff_event_id(command.run_id, command.request_key),
        at=now,
        run_id=command.run_id,
        client_id=command.client_id,
        actor_id=command.actor_id,
        task_id=command.task_id,
        input=command.input,
        requested_by=command.requested_by,
        request_key=command.request_key,
    )


def _missing_run_record(command: ApplyApifyWebhook | RecordResults, now: datetime) -> Event:
    """One rejection per attempt, for the orphan stream (Apify retries until it is applied)."""
    if isinstance(command, ApplyApifyWebhook):
        delivery = command.delivery
        return UpdateRejected(
            event_id=orphan_rejection_id(f"delivery|{delivery.delivery_key}", now),
            at=now,
            run_id=command.run_id,
            reason=RejectionReason.MISSING_RUN_RECORD,
            command=_command_name(command),
            status_before=None,
            received=delivery.delivery,
            message=f"{delivery.event_type} for run {command.run_id}, which was never created",
            delivery_key=delivery.delivery_key,
        )
    return UpdateRejected(
        event_id=orphan_rejection_id(f"results|{command.run_id}|{command.request_key}", now),
        at=now,
        run_id=command.run_id,
        reason=RejectionReason.MISSING_RUN_RECORD,
        command=_command_name(command),
        status_before=None,
        received=command.received,
        message=f"results for run {command.run_id}, which was never created",
        request_key=command.request_key,
    )


def _kickoff_again(
    state: RunState, seen: set[uuid.UUID], command: KickoffRun, now: datetime
) -> list[Event]:
    event_id = kickoff_event_id(command.run_id, command.request_key)
    if event_id in seen:
        return []
    return [
        UpdateRejected(
            event_id=event_id,
            at=now,
            run_id=command.run_id,
            reason=RejectionReason.DUPLICATE_CREATION,
            command=_command_name(command),
            status_before=state.status,
            received=command.received(),
            message=f"run {command.run_id} was already created by a different request",
            request_key=command.request_key,
        )
    ]


def _apply_delivery(
    state: RunState, seen: set[uuid.UUID], delivery: ApifyDelivery, now: datetime
) -> list[Event]:
    event_id = delivery_event_id(delivery.delivery_key)
    if event_id in seen:
        return []
    trigger, event_type = WEBHOOK_STEPS[delivery.event_type]
    verdict = _judge(state, delivery.resurrect_count, trigger, STATUS_AFTER[event_type])
    if verdict is not None:
        reason, why = verdict
        return [
            UpdateRejected(
                event_id=event_id,
                at=now,
                run_id=state.run_id,
                reason=reason,
                command=f"ApplyApifyWebhook:{delivery.event_type}",
                status_before=state.status,
                received=delivery.delivery,
                message=f"{delivery.event_type} (generation {delivery.resurrect_count}): {why}",
                delivery_key=delivery.delivery_key,
            )
        ]
    return [
        event_type(
            event_id=event_id,
            at=now,
            run_id=state.run_id,
            delivery_key=delivery.delivery_key,
            apify_status=delivery.status,
            status_message=delivery.status_message,
            started_at=delivery.started_at,
            finished_at=delivery.finished_at,
            run_time_s=delivery.run_time_s,
            dataset_id=delivery.dataset_id,
            usage_usd=delivery.usage_usd,
            resurrect_count=delivery.resurrect_count,
            delivery=delivery.delivery,
        )
    ]


def _judge(state: RunState, generation: int, trigger: str, target: RunStatus) -> _Verdict:
    """None when a delivery may be applied, else the reason and why (see docs/lifecycle.md)."""
    current, known = state.status, state.resurrect_count
    where = f"the run is {current.value} in generation {known}"
    if generation < known:
        return RejectionReason.STALE, f"an older generation; {where}"
    if generation > known:
        # A newer generation implies its resurrection, even when that delivery is still on its
        # way: RESURRECTED itself always applies; anything else is judged from `running`.
        if trigger == "resurrect":
            return None
        source = RunStatus.RUNNING
    elif _RANK[target] < _RANK[current]:
        return RejectionReason.STALE, f"an older status than {current.value}; {where}"
    elif target is current:
        return RejectionReason.STALE, f"nothing new; {where}"
    else:
        source = current
    try:
        lifecycle.fire(source, trigger)
    except InvalidTransition:
        return RejectionReason.INVALID_TRANSITION, f"the lifecycle forbids it; {where}"
    return None


def _record_results(seen: set[uuid.UUID], command: RecordResults, now: datetime) -> list[Event]:
    event_id = results_event_id(command.run_id, command.request_key)
    if event_id in seen:
        return []
    return [
        ResultsRecorded(
            event_id=event_id,
            at=now,
            run_id=command.run_id,
            metrics=command.metrics,
            details=command.details,
            request_key=command.request_key,
        )
    ]


def _command_name(command: Command) -> str:
    if isinstance(command, ApplyApifyWebhook):
        return f"ApplyApifyWebhook:{command.delivery.event_type}"
    return type(command).__name__

"""runledger's pure run lifecycle: commands in, events out, state by replay. No I/O."""

from statemachine.apify import (
    ApifyDelivery,
    IgnoredDelivery,
    is_valid_run_id,
    parse_delivery,
)
from statemachine.codec import RECORD_ONLY_FIELDS, decode, encode, slim
from statemachine.commands import ApplyApifyWebhook, Command, KickoffRun, RecordResults
from statemachine.decide import decide
from statemachine.errors import (
    CorruptHistory,
    InvalidDelivery,
    InvalidTransition,
    StateMachineError,
    UndecodableEvent,
    UnknownEventType,
)
from statemachine.events import (
    EVENT_TYPES,
    ApifyRunEvent,
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
from statemachine.replay import evolve, replay
from statemachine.states import TERMINAL_STATUSES, JsonObject, RunState, RunStatus, is_terminal
from statemachine.streams import orphan_stream, run_stream, stream_for

__all__ = [
    "EVENT_TYPES",
    "RECORD_ONLY_FIELDS",
    "TERMINAL_STATUSES",
    "ApifyDelivery",
    "ApifyRunEvent",
    "ApplyApifyWebhook",
    "Command",
    "CorruptHistory",
    "Event",
    "IgnoredDelivery",
    "InvalidDelivery",
    "InvalidTransition",
    "JsonObject",
    "KickoffRun",
    "RecordResults",
    "RejectionReason",
    "ResultsRecorded",
    "RunAborted",
    "RunCreated",
    "RunFailed",
    "RunResurrected",
    "RunStarted",
    "RunState",
    "RunStatus",
    "RunStatusEvent",
    "RunSucceeded",
    "RunTimedOut",
    "StateMachineError",
    "UndecodableEvent",
    "UnknownEventType",
    "UpdateRejected",
    "decide",
    "decode",
    "delivery_event_id",
    "encode",
    "evolve",
    "is_terminal",
    "is_valid_run_id",
    "kickoff_event_id",
    "orphan_rejection_id",
    "orphan_stream",
    "parse_delivery",
    "replay",
    "results_event_id",
    "run_stream",
    "slim",
    "stream_for",
]

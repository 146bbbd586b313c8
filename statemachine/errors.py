"""The exceptions of statemachine/: programmer errors, corrupt histories and unreadable input.

Domain refusals (stale, invalid transition, missing run record, duplicate creation) are not
exceptions: they are `UpdateRejected` events, recorded and replayable.
"""

from __future__ import annotations


class StateMachineError(Exception):
    """Root of every error raised by statemachine/."""


class CorruptHistory(StateMachineError):  # noqa: N818 — a fact about the stream, as in STYLE 2.7
    """A run's stored events cannot be a run's history (e.g. the first is not `RunCreated`)."""


class UnknownEventType(CorruptHistory):
    """A stored event's type name is not one of ours."""


class UndecodableEvent(CorruptHistory):
    """A stored event's data does not have the shape its type requires."""


class InvalidTransition(StateMachineError):  # noqa: N818
    """The lifecycle table has no step from this status by this trigger."""

    def __init__(self, trigger: str, source: str) -> None:
        super().__init__(f"the lifecycle has no step {trigger!r} from status {source!r}")
        self.trigger = trigger
        self.source = source


class InvalidDelivery(StateMachineError):  # noqa: N818
    """An authenticated Apify delivery that cannot be understood (the API answers 422).

    `code` is a snake_case reason, `details` maps each offending field to its problem.
    """

    def __init__(self, code: str, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, str] = dict(details or {})

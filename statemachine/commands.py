"""What callers ask of a run. Only `KickoffRun` can create one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from statemachine.apify import ApifyDelivery
from statemachine.states import JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class KickoffRun:
    """Create the run record.

    `request_key` is the Idempotency-Key header when given, else a fingerprint of the canonical
    request body computed by the API: the same key means the same request.
    """

    run_id: str
    client_id: str
    actor_id: str | None
    task_id: str | None
    input: JsonObject
    requested_by: str | None
    request_key: str

    def received(self) -> dict[str, object]:
        """The request body as the API read it, for a rejection's record."""
        return {
            "run_id": self.run_id,
            "client_id": self.client_id,
            "actor_id": self.actor_id,
            "task_id": self.task_id,
            "input": self.input,
            "requested_by": self.requested_by,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyApifyWebhook:
    """Apply one parsed Apify delivery to the run `run_id` (the delivery's own run id)."""

    run_id: str
    delivery: ApifyDelivery

    def __post_init__(self) -> None:
        if self.run_id != self.delivery.run_id:
            raise ValueError(
                f"command run id {self.run_id!r} differs from the delivery's "
                f"{self.delivery.run_id!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordResults:
    """Record what a run produced; `received` is the request body as it arrived."""

    run_id: str
    metrics: tuple[tuple[str, float], ...]
    details: JsonObject | None
    request_key: str
    received: JsonObject


Command: TypeAlias = KickoffRun | ApplyApifyWebhook | RecordResults

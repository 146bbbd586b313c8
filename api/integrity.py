"""The periodic integrity check: the server runs `runledger check` in the background.

Every `interval_s` it replays the log and compares it with the projections (the same
function the CLI runs), keeps the last outcome for `/health` and `/metrics`, and logs drift.
A check that cannot run (the database is away) is recorded as such, not as drift.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

_log = logging.getLogger(__name__)
_SAMPLE = 10
"""How many differences /health shows; the CLI shows them all."""


class DifferenceFound(Protocol):
    """One difference of a check (projections.log_fold.Difference): what /health may name."""

    @property
    def run_id(self) -> str | None: ...

    @property
    def field(self) -> str: ...


class CheckReport(Protocol):
    """What a check returns (projections.check.CheckResult)."""

    @property
    def runs_checked(self) -> int: ...

    @property
    def events_read(self) -> int: ...

    @property
    def differences(self) -> Sequence[DifferenceFound]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOutcome:
    finished_at: datetime
    duration_s: float
    runs_checked: int
    events_read: int
    differences: int
    sample: tuple[str, ...]
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "drift" if self.differences else "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "finished_at": self.finished_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "runs_checked": self.runs_checked,
            "events_read": self.events_read,
            "differences": self.differences,
            "sample": list(self.sample),
            # The type only: /health needs no token; the whole text is in the log line.
            "error": None if self.error is None else self.error.split(":", 1)[0],
        }


class IntegrityMonitor:
    """Runs `run_check` every `interval_s` (never when `interval_s` is 0) and keeps the result."""

    def __init__(
        self,
        run_check: Callable[[], Awaitable[CheckReport]],
        *,
        interval_s: float,
        on_outcome: Callable[[CheckOutcome], None] = lambda outcome: None,
    ) -> None:
        self._run_check = run_check
        self.interval_s = interval_s
        self._on_outcome = on_outcome
        self.last: CheckOutcome | None = None

    def last_result_json(self) -> dict[str, Any] | None:
        return None if self.last is None else self.last.to_json()

    async def run_once(self) -> CheckOutcome:
        started = time.monotonic()
        try:
            report = await self._run_check()
        except Exception as err:  # noqa: BLE001 — a background loop's edge: record, log, go on
            _log.exception("integrity check could not run")
            outcome = CheckOutcome(
                finished_at=datetime.now(UTC), duration_s=time.monotonic() - started,
                runs_checked=0, events_read=0, differences=0, sample=(),
                error=f"{type(err).__name__}: {err}",
            )  # fmt: skip
        else:
            outcome = CheckOutcome(
                finished_at=datetime.now(UTC),
                duration_s=time.monotonic() - started,
                runs_checked=report.runs_checked,
                events_read=report.events_read,
                differences=len(report.differences),
                # Which run and field only: /health needs no token, and the values (a run's
                # input, its client's data) are for `runledger check` and the logs.
                sample=tuple(
                    f"{d.run_id or 'log'}: {d.field}" for d in report.differences[:_SAMPLE]
                ),
            )
            if outcome.differences:
                _log.error("integrity check found drift", extra=outcome.to_json())
        self.last = outcome
        self._on_outcome(outcome)
        return outcome

    async def run_forever(self, *, first_after_s: float = 30.0) -> None:
        """Check soon after start (so /health has a result), then every `interval_s`."""
        if self.interval_s <= 0:
            return
        await asyncio.sleep(min(first_after_s, self.interval_s))
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval_s)

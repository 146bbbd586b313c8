"""The background integrity check: it records each outcome, and never runs when turned off."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from api.integrity import CheckOutcome, CheckReport, IntegrityMonitor


@dataclass(frozen=True)
class Found:
    run_id: str | None
    field: str
    log: str = "what the log says"
    projection: str = "what the table says"


@dataclass(frozen=True)
class Report:
    runs_checked: int = 3
    events_read: int = 30
    differences: tuple[Found, ...] = ()


async def test_a_check_that_cannot_run_is_recorded_as_an_error_not_as_drift(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> CheckReport:
        raise ConnectionRefusedError("database away")

    seen: list[CheckOutcome] = []
    monitor = IntegrityMonitor(broken, interval_s=60, on_outcome=seen.append)
    outcome = await monitor.run_once()
    assert (outcome.status, outcome.error) == ("error", "ConnectionRefusedError: database away")
    assert seen == [outcome]
    assert monitor.last_result_json() == outcome.to_json()
    assert outcome.to_json()["error"] == "ConnectionRefusedError"  # the text stays in the logs


async def test_drift_is_counted_and_a_sample_kept() -> None:
    async def drifting() -> CheckReport:
        return Report(differences=tuple(Found(f"r{i}", "status") for i in range(25)))

    outcome = await IntegrityMonitor(drifting, interval_s=60).run_once()
    assert (outcome.status, outcome.differences, len(outcome.sample)) == ("drift", 25, 10)
    # /health needs no token: it names the run and the field, never the values
    assert outcome.sample[0] == "r0: status"
    assert "what the" not in str(outcome.to_json())


async def test_interval_zero_never_runs_the_check() -> None:
    async def never() -> CheckReport:
        raise AssertionError("the check ran")

    monitor = IntegrityMonitor(never, interval_s=0)
    await monitor.run_forever()  # returns at once
    assert monitor.last is None

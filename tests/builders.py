"""Builders of test data, one section per package (STYLE 2.9: builders, not fixtures, for data)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from statemachine import (
    ApifyDelivery,
    ApplyApifyWebhook,
    Event,
    KickoffRun,
    RecordResults,
    RunCreated,
    decide,
    parse_delivery,
)

# statemachine builders
# ---------------------------------------------------------------------------------------------
# Apify deliveries come from the real fixture files in ../shared/fixtures/apify (override the
# fixtures folder with RUNLEDGER_FIXTURES); ids can be rewritten to make new runs.

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
"""The fixed clock of statemachine tests."""

FIXTURE_RUN_ID = "fJ9xM3bQw6TzY1kDe"
"""The run every file in shared/fixtures/apify describes."""

RUN_FIXTURES = ("run-created", "run-succeeded", "run-failed", "run-aborted", "run-timed-out")
FINAL_FIXTURES = ("run-succeeded", "run-failed", "run-aborted", "run-timed-out")


def fixtures_dir() -> Path:
    """The shared fixtures folder: $RUNLEDGER_FIXTURES, else ../shared/fixtures of the repo."""
    override = os.environ.get("RUNLEDGER_FIXTURES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@cache
def _fixture_text(name: str) -> str:
    return (fixtures_dir() / "apify" / f"{name}.json").read_text(encoding="utf-8")


def apify_fixture(name: str) -> dict[str, Any]:
    """A fresh copy of one delivery file: `run-succeeded`, `documented/run-aborted-from-task`…"""
    loaded: dict[str, Any] = json.loads(_fixture_text(name))
    return loaded


def new_run_id() -> str:
    """A run id no other test uses, in Apify's shape (17 letters and digits)."""
    return uuid.uuid4().hex[:17]


def apify_payload(
    name: str,
    *,
    run_id: str | None = None,
    dispatch_id: str | None = None,
    without_dispatch_id: bool = False,
    resurrect_count: int | None = None,
    created_at: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(body, headers) of a fixture delivery with ids rewritten.

    A new `run_id` or `resurrect_count` also gives the delivery a new dispatch id (derived from
    the fixture's) unless `dispatch_id` is given, since Apify's dispatch ids are unique.
    """
    fixture = apify_fixture(name)
    body: dict[str, Any] = fixture["body"]
    headers: dict[str, str] = fixture["headers"]
    derived = headers["X-Apify-Webhook-Dispatch-Id"]
    if run_id is not None:
        body["eventData"]["actorRunId"] = run_id
        body["resource"]["id"] = run_id
        derived = f"{derived}-{run_id}"
    if resurrect_count is not None:
        body["resource"]["stats"]["resurrectCount"] = resurrect_count
        derived = f"{derived}-gen{resurrect_count}"
    if created_at is not None:
        body["createdAt"] = created_at
    headers["X-Apify-Webhook-Dispatch-Id"] = derived if dispatch_id is None else dispatch_id
    if without_dispatch_id:
        del headers["X-Apify-Webhook-Dispatch-Id"]
    return body, headers


def apify_delivery(
    name: str,
    *,
    run_id: str | None = None,
    dispatch_id: str | None = None,
    without_dispatch_id: bool = False,
    resurrect_count: int | None = None,
    created_at: str | None = None,
) -> ApifyDelivery:
    """A fixture delivery, parsed (see `apify_payload` for the rewrites)."""
    body, headers = apify_payload(
        name,
        run_id=run_id,
        dispatch_id=dispatch_id,
        without_dispatch_id=without_dispatch_id,
        resurrect_count=resurrect_count,
        created_at=created_at,
    )
    parsed = parse_delivery(body, headers, run_id_param=None)
    assert isinstance(parsed, ApifyDelivery)
    return parsed


def webhook(
    name: str,
    *,
    run_id: str | None = None,
    dispatch_id: str | None = None,
    without_dispatch_id: bool = False,
    resurrect_count: int | None = None,
    created_at: str | None = None,
) -> ApplyApifyWebhook:
    """The command that applies a fixture delivery."""
    delivery = apify_delivery(
        name,
        run_id=run_id,
        dispatch_id=dispatch_id,
        without_dispatch_id=without_dispatch_id,
        resurrect_count=resurrect_count,
        created_at=created_at,
    )
    return ApplyApifyWebhook(run_id=delivery.run_id, delivery=delivery)


def kickoff(
    *,
    run_id: str = FIXTURE_RUN_ID,
    client_id: str = "acme-recruiting",
    request_key: str = "kickoff-key-1",
    input: Mapping[str, Any] | None = None,
) -> KickoffRun:
    """A kickoff of the fixtures' run (or `run_id`) as the harvest scheduler sends it."""
    return KickoffRun(
        run_id=run_id,
        client_id=client_id,
        actor_id="Hk7sPq2VnR4mZt8Lc",
        task_id=None,
        input=dict(input) if input is not None else {"profiles": ["p1", "p2"], "maxPosts": 50},
        requested_by="harvest-scheduler",
        request_key=request_key,
    )


def record_results(
    *,
    run_id: str = FIXTURE_RUN_ID,
    metrics: Mapping[str, float] | None = None,
    request_key: str = "results-key-1",
    details: Mapping[str, Any] | None = None,
) -> RecordResults:
    """A results report; metrics default to a typical harvest."""
    chosen = dict(metrics) if metrics is not None else {"posts_harvested": 184.0, "errors": 0.0}
    received: dict[str, Any] = {"metrics": chosen}
    if details is not None:
        received["details"] = dict(details)
    return RecordResults(
        run_id=run_id,
        metrics=tuple(sorted(chosen.items())),
        details=dict(details) if details is not None else None,
        request_key=request_key,
        received=received,
    )


def run_created(*, run_id: str = FIXTURE_RUN_ID, now: datetime = NOW) -> RunCreated:
    """The `RunCreated` that `kickoff(run_id=…)` produces."""
    (event,) = decide([], kickoff(run_id=run_id), now=now)
    assert isinstance(event, RunCreated)
    return event


def history_of(
    *commands: KickoffRun | ApplyApifyWebhook | RecordResults, start: datetime = NOW
) -> list[Event]:
    """The run stream that deciding `commands` in order produces, one second apart."""
    history: list[Event] = []
    for step, command in enumerate(commands):
        history.extend(decide(history, command, now=start + timedelta(seconds=step)))
    return history

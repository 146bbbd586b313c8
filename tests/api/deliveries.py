"""Apify deliveries for the API tests, from the real fixture files with ids rewritten."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import orjson

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "apify"
FIXTURE_RUN_ID = "fJ9xM3bQw6TzY1kDe"

_FILES = {
    "ACTOR.RUN.CREATED": "run-created.json",
    "ACTOR.RUN.SUCCEEDED": "run-succeeded.json",
    "ACTOR.RUN.FAILED": "run-failed.json",
    "ACTOR.RUN.ABORTED": "run-aborted.json",
    "ACTOR.RUN.TIMED_OUT": "run-timed-out.json",
    "ACTOR.RUN.RESURRECTED": "run-resurrected.json",
    "TEST": "test-ping.json",
}


def new_run_id() -> str:
    return "r" + uuid.uuid4().hex[:16]


def delivery(event_type: str, run_id: str, *, dispatch_id: str | None = None) -> dict[str, Any]:
    """`{"headers", "body"}` of one delivery for `run_id`, with its own dispatch id."""
    loaded = orjson.loads((FIXTURES / _FILES[event_type]).read_bytes())
    text = orjson.dumps(loaded).decode().replace(FIXTURE_RUN_ID, run_id)
    result: dict[str, Any] = orjson.loads(text)
    result["headers"]["X-Apify-Webhook-Dispatch-Id"] = dispatch_id or f"d-{uuid.uuid4().hex}"
    return copy.deepcopy(result)

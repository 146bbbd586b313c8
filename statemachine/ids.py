"""Deterministic event ids: the same request or delivery always maps onto the same id.

The event store enforces a unique event id, which makes every append idempotent: a repeated
kickoff, delivery or results report finds its earlier event instead of adding a new one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

# Fixed forever: changing it would give every future delivery a new id and break deduplication.
NAMESPACE = uuid.UUID("6f1d3c52-8a4e-5b7f-9c2d-1e0a4b6c8d31")


def kickoff_event_id(run_id: str, request_key: str) -> uuid.UUID:
    """The id of a kickoff's outcome (`RunCreated` or its `duplicate_creation` rejection)."""
    return uuid.uuid5(NAMESPACE, f"kickoff|{run_id}|{request_key}")


def delivery_event_id(delivery_key: str) -> uuid.UUID:
    """The id of an Apify delivery's outcome on the run stream (applied, stale or invalid)."""
    return uuid.uuid5(NAMESPACE, f"delivery|{delivery_key}")


def results_event_id(run_id: str, request_key: str) -> uuid.UUID:
    """The id of a results report's `ResultsRecorded`."""
    return uuid.uuid5(NAMESPACE, f"results|{run_id}|{request_key}")


def orphan_rejection_id(source_key: str, now: datetime) -> uuid.UUID:
    """The id of one `missing_run_record` rejection: one per attempt, so `now` is part of it.

    Apify retries a refused delivery for about 32 hours and every attempt is recorded; the id
    the delivery gets once its run exists is still `delivery_event_id`, so it is then applied.
    """
    return uuid.uuid5(NAMESPACE, f"orphan|{source_key}|{now.isoformat()}")

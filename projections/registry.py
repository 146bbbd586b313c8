"""Every projection runledger keeps, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.dead_letters import DeadLettersProjection
from projections.errors import UnknownProjectionError
from projections.missing_records import MissingRecordsProjection
from projections.rejections import RejectionsProjection
from projections.run_records import RunRecordsProjection


def all_projections() -> list[Projection]:
    return [
        RunRecordsProjection(),
        MissingRecordsProjection(),
        RejectionsProjection(),
        DeadLettersProjection(),
    ]


def projection_named(name: str) -> Projection:
    for projection in all_projections():
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in all_projections())
    raise UnknownProjectionError(f"no projection named {name!r} (known: {known})")

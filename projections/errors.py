"""The projections' exceptions."""

from __future__ import annotations


class ProjectionError(Exception):
    """Root of the errors raised by projections."""


class UnknownProjectionError(ProjectionError):
    """No projection has this name."""


class LeadershipLostError(ProjectionError):
    """The connection that held a projection's election lock died: another runner may lead."""

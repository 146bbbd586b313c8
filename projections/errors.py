"""The projections' exceptions."""

from __future__ import annotations


class ProjectionError(Exception):
    """Root of the errors raised by projections."""


class UnknownProjectionError(ProjectionError):
    """No projection has this name."""


class LeadershipLostError(ProjectionError):
    """The connection that held a projection's election lock died: another runner may lead."""


class ProjectionRebuiltDuringCheckError(ProjectionError):
    """A projection's tables were swapped by a rebuild while the check read them: its reading
    mixed two tables, so it proves nothing either way. Run the check again."""

"""Problems with a request, each with its HTTP status and a snake_case code for callers."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: `{"error": {"code", "message", "details"?}}` with `status`."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        self.extra = extra or {}
        """Top-level fields to add beside "error" (e.g. a webhook's "outcome")."""


class UnreadableJson(ApiError):  # noqa: N818 — the names read as the answer they give
    status, code = 400, "invalid_json"


class Unauthorized(ApiError):  # noqa: N818
    status, code = 401, "unauthorized"


class NotFound(ApiError):  # noqa: N818
    status, code = 404, "not_found"


class Conflict(ApiError):  # noqa: N818
    status, code = 409, "conflict"


class RequestTimeout(ApiError):  # noqa: N818
    status, code = 408, "request_timeout"


class ClientGone(ApiError):  # noqa: N818
    """The client closed the connection before its body arrived: nobody reads the answer, but
    the access log and the metrics say what happened (nginx's 499), not a database outage."""

    status, code = 499, "client_closed_request"


class BodyTooLarge(ApiError):  # noqa: N818
    status, code = 413, "body_too_large"


class NotJson(ApiError):  # noqa: N818
    status, code = 415, "unsupported_media_type"


class Invalid(ApiError):  # noqa: N818
    status, code = 422, "invalid"


class Unavailable(ApiError):  # noqa: N818
    status, code = 503, "unavailable"

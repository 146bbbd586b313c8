"""The service's configuration, read once from flags and the environment into a frozen Config."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_DATA_DIR = Path(".runledger")
DEFAULT_CHECK_INTERVAL_S = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything the app needs; built in `__main__` (or by a test) and passed down."""

    database_url: str
    api_token: str
    webhook_token: str
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    pool_min_size: int = 2
    pool_max_size: int = 10
    query_pool_max_size: int = 5
    retry_after_s: int = 5
    """What a 503 tells the caller to wait before trying again."""
    min_position_wait_s: float = 5.0
    """How long a query with `min_position` waits for the projections before a 503."""
    run_projections: bool = True
    check_interval_s: float = DEFAULT_CHECK_INTERVAL_S
    """How often the server runs the integrity check in the background (0: never)."""


_URL_PASSWORD = re.compile(r"(?P<head>://[^:/@?#]*:)(?P<secret>[^@/?#]*)(?P<tail>@)")
_URL_QUERY_SECRET = re.compile(r"(?P<head>[?&](?:password|token)=)(?P<secret>[^&#]*)", re.I)


def mask_url(url: str) -> str:
    """The URL with its password and any password/token query parameter replaced by ***."""
    masked = _URL_PASSWORD.sub(r"\g<head>***\g<tail>", url)
    return _URL_QUERY_SECRET.sub(r"\g<head>***", masked)

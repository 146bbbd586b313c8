"""The app on a real PostgreSQL, driven over real HTTP by aiohttp's test client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from api.app import create_app
from api.config import Config

API_TOKEN = "test-api-token-0123456789"
WEBHOOK_TOKEN = "test-webhook-secret-0123456789"
START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
Client: TypeAlias = TestClient[web.Request, web.Application]


class TickingClock:
    """A fixed clock that moves one second per reading: deterministic, and every attempt of a
    retried delivery still gets its own moment."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def make_config(dsn: str, **overrides: object) -> Config:
    settings: dict[str, object] = {
        "database_url": dsn,
        "api_token": API_TOKEN,
        "webhook_token": WEBHOOK_TOKEN,
        "pool_min_size": 1,
        "pool_max_size": 10,
        "check_interval_s": 0,  # the background check runs only where a test asks for it
        **overrides,
    }
    return Config(**settings)  # type: ignore[arg-type]


@pytest.fixture(name="clock")
def _clock() -> TickingClock:
    return TickingClock()


@pytest.fixture(name="client")
async def _client(
    dsn: str,
    clock: TickingClock,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Client:
    return await aiohttp_client(create_app(make_config(dsn), clock=clock))

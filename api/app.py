"""The composition root: `create_app(config)` builds everything and passes it down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from aiohttp import web

from api.check_process import check_in_child_process
from api.clock import Clock, system_clock
from api.config import Config, mask_url
from api.integrity import IntegrityMonitor
from api.keys import (
    CONFIG,
    INTEGRITY,
    METRICS,
    POOL,
    PROJECTIONS,
    QUERY_POOL,
    SERVICE,
    STORE,
)
from api.metrics import Metrics
from api.middleware import LOG_FIELDS, RequestObserver, make_error_middleware
from api.routes import add_routes
from api.service import RunService
from eventstore import EventStore, create_pool
from eventstore.pool import close_pool
from projections.registry import all_projections
from projections.supervisor import live_supervisor, projection_pool_size

_log = logging.getLogger(__name__)


def create_app(config: Config, *, clock: Clock = system_clock) -> web.Application:
    """The aiohttp application; nothing connects until it starts (cleanup contexts)."""
    metrics = Metrics()
    app = web.Application(
        middlewares=[make_error_middleware(config.retry_after_s, _request_observer(metrics))],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[METRICS] = metrics
    app.cleanup_ctx.append(_database(config, clock))
    app.cleanup_ctx.append(_projections(config))
    app.cleanup_ctx.append(_integrity(config))
    add_routes(app)
    return app


def _database(
    config: Config, clock: Clock
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def database(app: web.Application) -> AsyncIterator[None]:
        _log.info("connecting", extra={"database_url": mask_url(config.database_url)})
        pool = await create_pool(
            config.database_url, min_size=config.pool_min_size, max_size=config.pool_max_size
        )
        query_pool = await create_pool(
            config.database_url,
            min_size=1,
            max_size=config.query_pool_max_size,
            custom_plans=False,
        )
        store = EventStore(pool)
        app[POOL] = pool
        app[QUERY_POOL] = query_pool
        app[STORE] = store
        app[SERVICE] = RunService(store, clock, on_recorded=app[METRICS].note_recorded)
        try:
            yield
        finally:
            await store.aclose()  # writes what is queued before the pool goes
            await close_pool(pool)
            await close_pool(query_pool)

    return database


def _projections(
    config: Config,
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def projections(app: web.Application) -> AsyncIterator[None]:
        """Run the projections in this process (`runledger serve`), stopped before the pool.

        They get a pool of their own: each runner holds a connection for its election lock
        and one to LISTEN on, and must never starve the requests (nor be starved by them).
        """
        projections = all_projections()
        pool = await create_pool(
            config.database_url, min_size=0, max_size=projection_pool_size(len(projections))
        )
        store = EventStore(pool)
        supervisor = live_supervisor(pool, store, projections, on_batch=app[METRICS].note_batch)
        app[PROJECTIONS] = supervisor
        if config.run_projections:
            supervisor.start()
        try:
            yield
        finally:
            await supervisor.stop()
            await store.aclose()
            await close_pool(pool)

    return projections


def _integrity(
    config: Config,
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def integrity(app: web.Application) -> AsyncIterator[None]:
        """The background integrity check, in a child process (see api/check_process.py)."""
        monitor = IntegrityMonitor(
            lambda: check_in_child_process(config.database_url),
            interval_s=config.check_interval_s,
            on_outcome=app[METRICS].note_check,
        )
        app[INTEGRITY] = monitor
        task = asyncio.create_task(monitor.run_forever(), name="integrity-check")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])

    return integrity


def _request_observer(metrics: Metrics) -> RequestObserver:
    """Counts each answer by route template (never the raw path: a series per run id would
    grow without bound) and, for webhooks, by the outcome the handler noted."""

    def observe(request: web.Request, status: int, seconds: float) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        outcome = request[LOG_FIELDS].get("outcome")
        metrics.note_request(
            method=request.method, route=route, status=status, seconds=seconds, outcome=outcome
        )

    return observe

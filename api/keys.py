"""Every typed application key in one place (aiohttp warns about string keys)."""

from __future__ import annotations

import logging

import asyncpg
from aiohttp import web

from api.config import Config
from api.integrity import IntegrityMonitor
from api.metrics import Metrics
from api.service import RunService
from eventstore import EventStore
from projections.supervisor import ProjectionSupervisor

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
"""The event store's pool (commands, their reads and writes)."""
QUERY_POOL = web.AppKey("query_pool", asyncpg.Pool)
"""The queries' pool (GET endpoints, /health): planned as PostgreSQL likes (see create_pool)."""
STORE = web.AppKey("store", EventStore)
SERVICE = web.AppKey("service", RunService)
LOGGER = web.AppKey("logger", logging.Logger)
PROJECTIONS = web.AppKey("projections", ProjectionSupervisor)
INTEGRITY = web.AppKey("integrity", IntegrityMonitor)
METRICS = web.AppKey("metrics", Metrics)

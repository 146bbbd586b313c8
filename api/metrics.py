"""Prometheus metrics for `/metrics`, with prometheus-client, on a registry of the app's own.

No globals: `Metrics()` is built in `create_app`, so every app (and every test) counts alone.
What is counted where:
- requests: the error middleware observes every answer, by route template (never the raw path:
  run ids would make a series per run), method and status;
- events appended by type, rejections by reason: RunService reports what each command appended;
- webhook outcomes: the webhook handler's outcome (applied, duplicate, rejected, ignored, …);
- projections: batch sizes as the runners of this process apply them; position and lag are
  read from the checkpoint rows when scraped, so they are right whichever process runs them;
- the integrity check: each outcome of the background check.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from api.integrity import CheckOutcome
from projections.health import ProjectionHealth

WEBHOOK_ROUTE = "/webhooks/apify"
_STATUS_OUTCOMES = {401: "unauthorized", 408: "timed_out", 413: "too_large", 503: "unavailable"}
"""Webhook answers given before the handler noted an outcome, by status."""
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class Metrics:
    """Every series runledger exposes, registered on one registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Histogram(
            "runledger_http_request_duration_seconds", "Time to answer an HTTP request.",
            ("method", "route", "status"), buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.events_appended = Counter(
            "runledger_events_appended", "Events appended to the log, by type.", ("type",),
            registry=r,
        )  # fmt: skip
        self.rejections = Counter(
            "runledger_rejections", "Updates rejected (UpdateRejected), by reason.", ("reason",),
            registry=r,
        )  # fmt: skip
        self.webhook_outcomes = Counter(
            "runledger_webhook_outcomes", "Apify deliveries, by what became of them.",
            ("outcome",), registry=r,
        )  # fmt: skip
        self.projection_batch_size = Histogram(
            "runledger_projection_batch_size", "Events per batch applied by this process.",
            ("projection",), buckets=_BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.projection_position = Gauge(
            "runledger_projection_position", "Log position each projection has applied.",
            ("projection",), registry=r,
        )  # fmt: skip
        self.projection_lag = Gauge(
            "runledger_projection_lag_events", "Events in the log not yet applied.",
            ("projection",), registry=r,
        )  # fmt: skip
        self.database_up = Gauge(
            "runledger_database_up", "1 when the last scrape could read the database.",
            registry=r,
        )  # fmt: skip
        self.log_head = Gauge("runledger_log_head_position", "The log's last position.",
                              registry=r)  # fmt: skip
        self.checks = Counter(
            "runledger_integrity_checks", "Background integrity checks, by result.",
            ("result",), registry=r,
        )  # fmt: skip
        self.check_differences = Gauge(
            "runledger_integrity_differences",
            "Differences the last integrity check found between the log and the projections.",
            registry=r,
        )
        self.check_finished = Gauge(
            "runledger_integrity_check_finished_timestamp_seconds",
            "When the last integrity check finished (Unix time).", registry=r,
        )  # fmt: skip

    def note_recorded(self, event_type: str, reason: str | None) -> None:
        """One event appended by a command (RunService's `on_recorded`)."""
        self.events_appended.labels(event_type).inc()
        if reason is not None:
            self.rejections.labels(reason).inc()

    def note_request(
        self, *, method: str, route: str, status: int, seconds: float, outcome: str | None
    ) -> None:
        """One answered request; `outcome` is what the handler noted (the webhook's)."""
        self.requests.labels(method, route, str(status)).observe(seconds)
        if route == WEBHOOK_ROUTE:
            self.webhook_outcomes.labels(outcome or _STATUS_OUTCOMES.get(status, "error")).inc()

    def note_database(self, *, available: bool) -> None:
        self.database_up.set(1 if available else 0)

    def note_batch(self, projection: str, size: int) -> None:
        self.projection_batch_size.labels(projection).observe(size)

    def note_check(self, outcome: CheckOutcome) -> None:
        self.checks.labels(outcome.status).inc()
        if outcome.error is None:
            self.check_differences.set(outcome.differences)
        self.check_finished.set(outcome.finished_at.timestamp())

    def note_projections(self, head: int, projections: Iterable[ProjectionHealth]) -> None:
        self.log_head.set(head)
        for projection in projections:
            self.projection_position.labels(projection.name).set(projection.position)
            self.projection_lag.labels(projection.name).set(projection.lag)

    def exposition(self) -> bytes:
        text: bytes = generate_latest(self.registry)
        return text

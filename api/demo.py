"""`runledger demo`: drive a running server through a simulated day, then show what it recorded.

It is a client like any other: the day's requests (api/demo_scenario.py) go over HTTP with the
API token and the webhook secret, and what it prints afterwards comes from the server's own
queries (read-your-writes with `min_position`), so a newcomer sees the service as callers do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from api.demo_scenario import DemoRequest, demo_day

_TIMEOUT = aiohttp.ClientTimeout(total=30)


class DemoError(Exception):
    """The server could not be driven (unreachable, wrong token, unexpected answer)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSettings:
    url: str
    api_token: str
    webhook_token: str
    runs: int
    seed: int


def _outcome(request: DemoRequest, status: int, answer: dict[str, Any]) -> str:
    """A short label for what the server did with one request."""
    if request.kind == "kickoff":
        return {201: "run created", 200: "kickoff repeated"}.get(status, f"kickoff {status}")
    if request.kind == "results" and status == 200:
        return "results recorded"
    outcome = answer.get("outcome") or answer.get("error", {}).get("code") or str(status)
    reason = answer.get("reason")
    label = f"{request.kind} {outcome}"
    return f"{label} ({reason})" if reason and reason != outcome else label


async def _send(
    http: aiohttp.ClientSession, settings: DemoSettings, request: DemoRequest
) -> tuple[int, dict[str, Any]]:
    headers = dict(request.headers)
    if request.kind == "webhook":
        headers["X-Runledger-Token"] = settings.webhook_token
    else:
        headers["Authorization"] = f"Bearer {settings.api_token}"
    async with http.post(settings.url + request.path, json=request.body, headers=headers) as resp:
        answer = await resp.json(content_type=None)
    if resp.status == 401:
        raise DemoError("the server refused the token: pass --api-token and --webhook-token")
    if resp.status >= 500:
        raise DemoError(f"the server answered {resp.status} to {request.path}: {answer}")
    return resp.status, answer


async def _get(http: aiohttp.ClientSession, settings: DemoSettings, path: str) -> Any:
    headers = {"Authorization": f"Bearer {settings.api_token}"}
    async with http.get(settings.url + path, headers=headers) as resp:
        if resp.status == 404:
            return None  # a server of an older version without this query
        if resp.status != 200:
            raise DemoError(f"the server answered {resp.status} to {path}")
        return await resp.json()


async def run_demo(settings: DemoSettings, console: Console) -> None:
    """Send the day, then print the tally, the client report and the diagnostics."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    requests = demo_day(day=day, runs=settings.runs, seed=settings.seed)
    tally: Counter[str] = Counter()
    last_position = 0
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
            console.print(f"Sending a simulated day to {settings.url}: {len(requests)} requests")
            for request in requests:
                status, answer = await _send(http, settings, request)
                tally[_outcome(request, status, answer)] += 1
                last_position = max(last_position, int(answer.get("position") or 0))
            wait = f"min_position={last_position}"
            report = await _get(http, settings, f"/reports/clients?{wait}")
            missing = await _get(http, settings, f"/diagnostics/missing-records?{wait}")
            rejections = await _get(http, settings, f"/diagnostics/rejections?limit=1000&{wait}")
    except aiohttp.ClientError as err:
        raise DemoError(f"cannot reach {settings.url}: {err}") from None
    console.print(_tally_table(tally))
    console.print(_report_table(report["items"] if report else []))
    if missing is not None:
        console.print(_missing_table(missing["items"]))
    if rejections is not None:
        reasons = Counter(item["reason"] for item in rejections["items"])
        console.print("Rejections by reason: " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
    late = next(r for r in requests if r.why == "kickoff, late")
    console.print(
        f"Replay the run whose CREATED beat its kickoff: runledger replay {late.body['run_id']}"
    )


def _tally_table(tally: Counter[str]) -> Table:
    table = Table(title="What the server did with the day's requests")
    table.add_column("outcome")
    table.add_column("requests", justify="right")
    for label, count in sorted(tally.items()):
        table.add_row(label, str(count))
    return table


def _report_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="Client report (GET /reports/clients)")
    for column in ("client", "runs", "by status", "success", "mean s", "p95 s", "posts", "usd"):
        table.add_column(column, justify="left" if column in ("client", "by status") else "right")
    for item in items:
        by_status = ", ".join(f"{s} {n}" for s, n in item["runs_by_status"].items())
        rate = item["success_rate"]
        table.add_row(
            item["client_id"], str(item["runs"]), by_status,
            "-" if rate is None else f"{rate:.0%}", _number(item["mean_duration_s"]),
            _number(item["p95_duration_s"]), _number(item["metrics"].get("posts_harvested")),
            f"{item['usage_usd']:.2f}",
        )  # fmt: skip
    return table


def _missing_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="Missing run records (GET /diagnostics/missing-records)")
    for column in ("run id", "attempts", "event types", "resolved"):
        table.add_column(column)
    for item in items:
        resolved = item.get("resolved_at") or "no"
        table.add_row(
            item["run_id"], str(item["attempts"]), ", ".join(item["event_types"]), resolved
        )
    return table


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"

"""`runledger replay` and `runledger check`: the operator's tools that read the log itself."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from eventstore import EventStore, create_pool
from eventstore.pool import close_pool
from projections.check import CheckResult, check
from projections.timeline import AsOf, Step, Timeline, read_timeline

QUIET_CHANGES = frozenset({"event_count", "updated_at"})
"""Fields every event changes: left out of the table's changes column (kept in --json)."""
_TEXT_LIMIT = 160


async def load_timeline(dsn: str, run_id: str, as_of: AsOf | None) -> Timeline | None:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with EventStore(pool) as store:
            return await read_timeline(store, run_id, as_of=as_of)
    finally:
        await close_pool(pool)


def json_lines(timeline: Timeline) -> list[str]:
    """One JSON object per step, then one with the run id, as_of and the record as of then."""
    lines = [orjson.dumps(step.to_json()).decode() for step in timeline.steps]
    body = timeline.to_json()
    del body["steps"]
    lines.append(orjson.dumps(body).decode())
    return lines


def print_timeline(timeline: Timeline, console: Console) -> None:
    """The steps as a table (coloured in a terminal), then the record as of the last step."""
    title = f"run {timeline.run_id}" + _as_of_text(timeline.as_of)
    table = Table(title=title, title_justify="left", show_lines=True)
    for column in ("pos", "recorded", "stream", "event", "cause", "status", "changes / why"):
        table.add_column(column, overflow="fold")
    for step in timeline.steps:
        table.add_row(
            str(step.position),
            step.recorded_at.isoformat(timespec="milliseconds"),
            f"{'run' if step.in_history else 'orphan'} v{step.version}",
            escape(step.type),
            escape(_cause_text(step)),
            _status_text(step),
            escape(_outcome_text(step)),
            style=_style(step),
        )
    console.print(table)
    record = timeline.record()
    if record is None:
        console.print("no run record" + _as_of_text(timeline.as_of) + ": never kicked off")
        return
    fields = Table(title="run record" + _as_of_text(timeline.as_of), title_justify="left")
    fields.add_column("field")
    fields.add_column("value", overflow="fold")
    for name, value in record.items():
        fields.add_row(name, escape(_compact(value)))
    console.print(fields)


def _as_of_text(as_of: AsOf | None) -> str:
    if as_of is None:
        return ""
    if as_of.position is not None:
        return f" as of position {as_of.position}"
    assert as_of.time is not None
    return f" as of {as_of.time.isoformat()}"


def _style(step: Step) -> str:
    if step.error is not None:
        return "bold red"
    if step.rejection is not None:
        return "red" if step.in_history else "yellow"
    return "green"


def _status_text(step: Step) -> str:
    before, after = step.status_before or "–", step.status_after or "–"
    if not step.in_history:
        return f"{before} (unchanged)"
    return f"{before} → {after}"


def _cause_text(step: Step) -> str:
    cause = step.cause
    if cause.apify_event_type is not None:
        lines = [f"Apify {cause.apify_event_type}"]
        if cause.dispatch_id is not None:
            lines.append(f"dispatch {cause.dispatch_id}")
        if cause.apify_created_at is not None:
            lines.append(f"createdAt {cause.apify_created_at}")
        return "\n".join(lines)
    if cause.command == "KickoffRun":
        return f"kickoff\nkey {cause.request_key}"
    if cause.command == "RecordResults":
        metrics = ", ".join(f"{k}={v:g}" for k, v in (cause.metrics or {}).items())
        return f"results\nkey {cause.request_key}" + (f"\n{metrics}" if metrics else "")
    return cause.command


def _outcome_text(step: Step) -> str:
    if step.error is not None:
        return f"corrupt history: {step.error}"
    if step.rejection is not None:
        rejection = step.rejection
        return (
            f"rejected: {rejection.reason}\n{rejection.message}\n"
            f"received: {_received_text(rejection.received)}"
        )
    return "\n".join(
        f"{name}: {_compact(before)} → {_compact(after)}"
        for name, (before, after) in step.changes.items()
        if name not in QUIET_CHANGES
    )


def _received_text(received: Mapping[str, Any]) -> str:
    """The gist of what arrived: a delivery's status line, else the body (shortened)."""
    body = received.get("body")
    if isinstance(body, dict):
        resource = _object(body.get("resource"))
        stats = _object(resource.get("stats"))
        return (
            f"{body.get('eventType')} status={resource.get('status')} "
            f"resurrectCount={stats.get('resurrectCount', 0)} createdAt={body.get('createdAt')}"
        )
    return _compact(received)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _compact(value: Any) -> str:
    if value is None:
        return "–"
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


async def run_check(dsn: str, progress_console: Console) -> CheckResult:
    """`projections.check.check` with a progress bar (shown only when it goes to a terminal)."""
    pool = await create_pool(dsn, min_size=2, max_size=3)
    try:
        async with EventStore(pool) as store:
            columns = (
                TextColumn("checking the log"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8} events/s"),
                TimeRemainingColumn(),
            )
            bar = Progress(
                *columns, console=progress_console, disable=not progress_console.is_terminal,
                transient=True,
            )  # fmt: skip
            with bar:
                task = bar.add_task("check", total=None, rate="-")
                started = time.monotonic()

                def progress(position: int, head: int) -> None:
                    elapsed = time.monotonic() - started
                    rate = f"{position / elapsed:,.0f}" if elapsed > 0 else "-"
                    bar.update(task, completed=position, total=head, rate=rate)

                return await check(pool, store, progress=progress, pause_gc=True)
    finally:
        await close_pool(pool)


def print_check(result: CheckResult, seconds: float, console: Console) -> None:
    """The summary, each difference, and the checks that could not run."""
    console.print(
        f"checked {result.runs_checked:,} runs from {result.events_read:,} events in "
        f"{seconds:.1f}s (log head {result.head_position}; records compared up to position "
        f"{result.checked_up_to})"
    )
    for note in result.notes:
        console.print(f"note: {escape(note)}", style="yellow")
    if result.ok:
        console.print("the log and the projections agree", style="green")
        return
    table = Table(title=f"{len(result.differences)} difference(s)", title_justify="left")
    for column in ("run", "field", "log says", "projection says"):
        table.add_column(column, overflow="fold")
    for difference in result.differences:
        table.add_row(
            escape(difference.run_id or "(log)"),
            escape(difference.field),
            escape(difference.log),
            escape(difference.projection),
            style="red",
        )
    console.print(table)

"""The `runledger` command: serve, migrate (and the operator tools as they arrive)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
import time
from pathlib import Path

import click
import orjson
from rich.console import Console

from api import projection_commands, replay_commands
from api.config import (
    DEFAULT_CHECK_INTERVAL_S,
    DEFAULT_DATA_DIR,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    Config,
)
from api.demo import DemoError, DemoSettings, run_demo
from api.logs import configure_logging
from api.startup import database_url, migrate, serve
from api.tokens import load_or_generate, read_kept
from eventstore import EventStoreError
from projections.errors import ProjectionError, UnknownProjectionError
from projections.timeline import AsOf, InvalidAsOfError, parse_as_of

_database_option = click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    help="PostgreSQL to use; without it an embedded server is started in the data folder.",
)
_data_dir_option = click.option(
    "--data-dir",
    envvar="RUNLEDGER_DATA_DIR",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the embedded PostgreSQL and the generated token file live.",
)


@click.group()
def main() -> None:
    """runledger: the record of every scraping run."""


@main.command(name="serve")
@_database_option
@_data_dir_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, envvar="RUNLEDGER_HOST")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, envvar="RUNLEDGER_PORT")
@click.option(
    "--api-token",
    envvar="RUNLEDGER_API_TOKEN",
    default=None,
    help="Bearer token for commands and queries (generated when absent).",
)
@click.option(
    "--webhook-token",
    envvar="RUNLEDGER_WEBHOOK_TOKEN",
    default=None,
    help="Secret Apify deliveries must carry (generated when absent).",
)
@click.option(
    "--max-body-bytes",
    envvar="RUNLEDGER_MAX_BODY_BYTES",
    type=click.IntRange(1),
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
)
@click.option(
    "--check-interval",
    envvar="RUNLEDGER_CHECK_INTERVAL_S",
    type=click.FloatRange(0),
    default=DEFAULT_CHECK_INTERVAL_S,
    show_default=True,
    help="Seconds between background integrity checks (0: never).",
)
def serve_command(
    database_url: str | None,
    data_dir: Path,
    host: str,
    port: int,
    api_token: str | None,
    webhook_token: str | None,
    max_body_bytes: int,
    check_interval: float,
) -> None:
    """Apply migrations, then serve the HTTP API until SIGTERM or Ctrl-C."""
    configure_logging()
    with _database(database_url, data_dir) as dsn:
        asyncio.run(migrate(dsn))
        tokens = load_or_generate(data_dir, api_token=api_token, webhook_token=webhook_token)
        config = Config(
            database_url=dsn,
            api_token=tokens.api_token,
            webhook_token=tokens.webhook_token,
            max_body_bytes=max_body_bytes,
            host=host,
            port=port,
            check_interval_s=check_interval,
        )

        def announce(address: str) -> None:
            click.echo(f"runledger is serving on {address}")
            if tokens.generated:
                click.echo(f"New tokens (shown once; kept in {tokens.path}):")
                click.echo(f"  API token:     {tokens.api_token}")
                click.echo(f"  webhook token: {tokens.webhook_token}")
            else:
                click.echo(f"Tokens: from the environment or {tokens.path}")
            click.echo(f"Apify webhook URL: {address}/webhooks/apify?token=<webhook token>")

        asyncio.run(serve(config, announce))


@main.command(name="migrate")
@_database_option
@_data_dir_option
def migrate_command(database_url: str | None, data_dir: Path) -> None:
    """Apply pending migrations and exit."""
    configure_logging()
    with _database(database_url, data_dir) as dsn:
        applied = asyncio.run(migrate(dsn))
    click.echo(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


@main.group(name="projections")
def projections_group() -> None:
    """The read models: status, rebuild, or run them in a process of their own."""


@projections_group.command(name="status")
@_database_option
@_data_dir_option
def projections_status(database_url: str | None, data_dir: Path) -> None:
    """Each projection's position, lag behind the log, heartbeat and last error."""
    with _database(database_url, data_dir) as dsn:
        asyncio.run(projection_commands.show_status(dsn, Console()))


@projections_group.command(name="rebuild")
@click.argument("name", required=False)
@_database_option
@_data_dir_option
def projections_rebuild(name: str | None, database_url: str | None, data_dir: Path) -> None:
    """Rebuild NAME (or all) from position 0 while the service keeps serving, then swap."""
    configure_logging(logging.WARNING)
    with _database(database_url, data_dir) as dsn:
        try:
            asyncio.run(projection_commands.rebuild_projections(dsn, name, Console()))
        except UnknownProjectionError as err:
            raise click.BadParameter(str(err), param_hint="NAME") from None


@projections_group.command(name="run")
@_database_option
@_data_dir_option
def projections_run(database_url: str | None, data_dir: Path) -> None:
    """Run the projections in this process (when `serve` runs elsewhere)."""
    configure_logging()
    with _database(database_url, data_dir) as dsn, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(projection_commands.run_projections(dsn))


@main.command(name="demo")
@click.option("--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}", show_default=True,
              envvar="RUNLEDGER_URL", help="The running runledger server to drive.")  # fmt: skip
@click.option("--api-token", envvar="RUNLEDGER_API_TOKEN", default=None,
              help="Its API token (default: the one `serve` kept in the data folder).")  # fmt: skip
@click.option("--webhook-token", envvar="RUNLEDGER_WEBHOOK_TOKEN", default=None,
              help="Its webhook secret (default: the one kept in the data folder).")  # fmt: skip
@_data_dir_option
@click.option("--runs", default=24, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--seed", default=None, type=int, help="Same seed, same day (default: random).")
def demo_command(
    url: str,
    api_token: str | None,
    webhook_token: str | None,
    data_dir: Path,
    runs: int,
    seed: int | None,
) -> None:
    """Drive a running server through a simulated day of harvesting; print what it recorded."""
    kept = read_kept(data_dir)
    api_token = api_token or (kept[0] if kept else None)
    webhook_token = webhook_token or (kept[1] if kept else None)
    if not api_token or not webhook_token:
        raise click.UsageError(
            f"no tokens: pass --api-token and --webhook-token, or run from the folder where "
            f"`runledger serve` keeps them ({data_dir}/tokens.json)"
        )
    settings = DemoSettings(
        url=url.rstrip("/"),
        api_token=api_token,
        webhook_token=webhook_token,
        runs=runs,
        seed=seed if seed is not None else secrets.randbits(32),
    )
    try:
        asyncio.run(run_demo(settings, Console()))
    except DemoError as err:
        raise click.ClickException(str(err)) from None


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> AsOf | None:
    if value is None:
        return None
    try:
        return parse_as_of(value)
    except InvalidAsOfError as err:
        raise click.BadParameter(str(err)) from None


def _output_console() -> Console:
    """Colour in a terminal; plain, and wide enough for the tables, when piped."""
    return Console() if sys.stdout.isatty() else Console(width=200)


@main.command(name="replay")
@click.argument("run_id")
@click.option("--as-of", "as_of", callback=_as_of, metavar="ISO_TIME_OR_POSITION",
              help="Stop at this log position, or this time (ISO 8601 with a zone).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object per step, then the record.")
@_database_option
@_data_dir_option
def replay_command(
    run_id: str, as_of: AsOf | None, as_json: bool, database_url: str | None, data_dir: Path
) -> None:
    """Replay RUN_ID: each event of its stream and orphan stream, the state before and after."""
    configure_logging(logging.WARNING)
    with _database(database_url, data_dir) as dsn:
        timeline = asyncio.run(replay_commands.load_timeline(dsn, run_id, as_of))
    if timeline is None:
        raise click.ClickException(f"no events for run {run_id!r}: it was never kicked off "
                                   "and received no update")  # fmt: skip
    if as_json:
        for line in replay_commands.json_lines(timeline):
            click.echo(line)
    else:
        replay_commands.print_timeline(timeline, _output_console())


@main.command(name="check")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@_database_option
@_data_dir_option
def check_command(as_json: bool, database_url: str | None, data_dir: Path) -> None:
    """Replay every run from the log and compare it with the projections.

    Exit 0 when they agree, 1 on drift, 2 when the check could not finish.
    """
    configure_logging(logging.WARNING)
    started = time.monotonic()
    with _database(database_url, data_dir) as dsn:
        try:
            result = asyncio.run(replay_commands.run_check(dsn, Console(stderr=True)))
        except (EventStoreError, ProjectionError, OSError) as err:
            # Exit 1 means drift: a check that could not finish must not look like one.
            click.echo(f"the check could not finish: {err}", err=True)
            sys.exit(2)
    if as_json:
        click.echo(orjson.dumps(result.to_json()).decode())
    else:
        replay_commands.print_check(result, time.monotonic() - started, _output_console())
    if not result.ok:
        sys.exit(1)


def _database(given: str | None, data_dir: Path):  # type: ignore[no-untyped-def]
    return database_url(given, data_dir)


if __name__ == "__main__":
    main()

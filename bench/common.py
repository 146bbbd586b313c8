"""Small helpers the benchmarks share: where the server is, fresh databases, figures, tables.

The server is BENCH_DATABASE_URL when set (an admin DSN: the benchmark creates and drops its
own databases there), else the PostgreSQL on 127.0.0.1:5432. Benchmarks never touch an
existing database: each scenario runs in a database cloned from a freshly migrated template,
and every database made here is dropped on the way out.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from eventstore import apply_migrations

LOCAL_SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = ROOT / "sql"


def server_dsn() -> str:
    """The admin DSN of the server the benchmarks run on."""
    return os.environ.get("BENCH_DATABASE_URL") or LOCAL_SERVER_DSN


def with_database(dsn: str, database: str) -> str:
    """The same server address with another database name."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


def check_local(dsn: str) -> None:
    """Refuse a server that is not on this machine: benchmark traffic stays on loopback."""
    host = urlsplit(dsn).hostname or ""
    if host not in ("", "localhost", "127.0.0.1", "::1") and not host.startswith("/"):
        raise SystemExit(f"benchmarks run against a local server only, not {host!r}")


async def _admin_execute(admin_dsn: str, statement: str) -> None:
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@dataclass(frozen=True, slots=True)
class BenchServer:
    """A server plus a migrated template database to clone for each scenario."""

    admin_dsn: str
    template: str

    @asynccontextmanager
    async def fresh_database(self) -> AsyncIterator[str]:
        """A new database cloned from the template (the schema of sql/); dropped afterwards."""
        name = f"runledger_bench_{uuid.uuid4().hex[:12]}"
        await _admin_execute(self.admin_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        try:
            yield with_database(self.admin_dsn, name)
        finally:
            await _admin_execute(self.admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def bench_server(admin_dsn: str | None = None) -> AsyncIterator[BenchServer]:
    """Create a template database with every migration of sql/ applied; drop it at the end."""
    admin_dsn = admin_dsn or server_dsn()
    check_local(admin_dsn)
    template = f"runledger_bench_tpl_{uuid.uuid4().hex[:12]}"
    await _admin_execute(admin_dsn, f'CREATE DATABASE "{template}"')
    try:
        conn = await asyncpg.connect(with_database(admin_dsn, template), timeout=10)
        try:
            await apply_migrations(conn, SQL_DIR)
        finally:
            await conn.close()
        yield BenchServer(admin_dsn=admin_dsn, template=template)
    finally:
        await _admin_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain table, first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


async def machine_facts(admin_dsn: str | None = None) -> dict[str, str]:
    """nproc, RAM, architecture, Python and PostgreSQL versions, for the record."""
    facts = {
        "nproc": str(os.cpu_count()),
        "ram": _ram(),
        "arch": platform.machine(),
        "python": platform.python_version(),
    }
    conn = await asyncpg.connect(admin_dsn or server_dsn(), timeout=10)
    try:
        facts["postgresql"] = str(await conn.fetchval("SHOW server_version"))
        for setting in ("synchronous_commit", "fsync", "shared_buffers"):
            facts[setting] = str(await conn.fetchval(f"SHOW {setting}"))
    finally:
        await conn.close()
    return facts


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def run_json_subprocess(argv: Sequence[str], *, timeout: float) -> str:
    """Run a local helper program and return what it printed (its last line is JSON)."""
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{argv[1] if len(argv) > 1 else argv[0]} failed: " + " | ".join(tail))
    return done.stdout

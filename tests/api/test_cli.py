"""`runledger serve` and `runledger migrate` as a newcomer runs them: no DATABASE_URL, so an
embedded PostgreSQL in the data folder; tokens generated once; SIGTERM shuts down cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

BOUND_S = 60  # a ceiling for a failing test, not a timing assumption


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "RUNLEDGER_"))}
    env["RUNLEDGER_DATA_DIR"] = str(data_dir)
    return env


class Served:
    def __init__(self, data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", "0"],
            env=_environment(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.lines: list[str] = []
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Apify webhook URL"):
                break
        match = re.search(r"serving on (http://\S+)", "".join(self.lines))
        assert match, self.lines
        self.url = match.group(1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(BOUND_S)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@pytest.fixture(name="data_dir")
def _data_dir(tmp_path: Path) -> Path:
    return tmp_path / "runledger-data"


async def test_serve_without_database_url_starts_embedded_postgres_and_serves(
    data_dir: Path,
) -> None:
    served = Served(data_dir)
    try:
        printed = "".join(served.lines)
        api_token = re.search(r"API token:\s+(\S+)", printed)
        assert api_token, printed
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{served.url}/runs",
                json={"run_id": "first-run", "client_id": "acme"},
                headers={"Authorization": f"Bearer {api_token.group(1)}"},
            ) as response:
                assert response.status == 201
            async with session.get(f"{served.url}/health") as response:
                assert response.status == 200
    finally:
        assert served.stop() == 0  # SIGTERM: a clean exit
    assert (data_dir / "pgdata" / "PG_VERSION").exists()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()  # the embedded server stopped
    assert (data_dir / "tokens.json").stat().st_mode & 0o077 == 0

    again = Served(data_dir)  # a later start keeps the data and the tokens, prints no secret
    try:
        assert "API token:" not in "".join(again.lines)
        assert api_token.group(1) not in "".join(again.lines)
    finally:
        assert again.stop() == 0


def test_migrate_without_database_url_applies_to_embedded_postgres(data_dir: Path) -> None:
    first = subprocess.run(
        [sys.executable, "-m", "api", "migrate"],
        env=_environment(data_dir),
        capture_output=True,
        text=True,
        timeout=BOUND_S,
        check=True,
    )
    assert "0001_create_events.sql" in first.stdout
    second = subprocess.run(
        [sys.executable, "-m", "api", "migrate"],
        env=_environment(data_dir),
        capture_output=True,
        text=True,
        timeout=BOUND_S,
        check=True,
    )
    assert "applied 0 migration(s)" in second.stdout

"""`runledger` subprocesses on a given database: serve, projections run, check.

Every wait here has a ceiling (BOUND_S) for a failing run; none is a timing assumption.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from .load import API_TOKEN, WEBHOOK_TOKEN

BOUND_S = 60.0


def free_port() -> int:
    """A loopback port nobody listens on now (a restarted server takes the same one again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(dsn: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "RUNLEDGER_"))}
    env.update(
        DATABASE_URL=dsn,
        RUNLEDGER_DATA_DIR=str(data_dir),
        RUNLEDGER_API_TOKEN=API_TOKEN,
        RUNLEDGER_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
    )
    return env


class Process:
    """A `python -m api …` child; stdout is drained into `lines`, stderr (the logs) to a file."""

    def __init__(self, args: list[str], dsn: str, workdir: Path, *, name: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 — our own program, fixed arguments
                [sys.executable, "-m", "api", *args],
                env=environment(dsn, workdir / "data"),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.lines: list[str] = []
        self._announced = threading.Event()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Apify webhook URL"):
                self._announced.set()
        self._announced.set()

    def wait_announced(self) -> None:
        assert self._announced.wait(BOUND_S), f"no announcement: {self.lines}"

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine loses the process."""
        self.stop(signal.SIGKILL)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send `sig` (unless it has exited), wait for the exit, return its code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(BOUND_S)
        self._drainer.join(BOUND_S)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code

    def log_lines_with(self, text: str) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if text in line]


class Served(Process):
    """`runledger serve --port P` with DATABASE_URL; `url` once it has announced itself."""

    def __init__(self, dsn: str, workdir: Path, *, port: int, name: str = "serve") -> None:
        super().__init__(["serve", "--port", str(port)], dsn, workdir, name=name)
        self.port = port
        self.wait_announced()
        match = re.search(r"serving on (http://\S+)", "".join(self.lines))
        assert match, self.lines
        self.url = match.group(1)

    def rss_kib(self) -> int:
        """Resident memory of the serve process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for {self.pid}")


def projections_run(dsn: str, workdir: Path, *, name: str) -> Process:
    return Process(["projections", "run"], dsn, workdir, name=name)


def check(dsn: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`runledger check` against the database: exit 0 when the projections agree with a replay."""
    return subprocess.run(
        [sys.executable, "-m", "api", "check"],
        env=environment(dsn, workdir / "data"),
        capture_output=True,
        text=True,
        timeout=BOUND_S * 5,
        check=False,
    )

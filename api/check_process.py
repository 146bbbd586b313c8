"""The server's background integrity check, run as `runledger check --json` in a child process.

Folding the whole log is CPU work: about 27 µs an event, so 30 s at a million events. Done on
the event loop that serves requests, every request in flight waited behind each folded page
(measured under the delivery load at 50k events: 74 pauses of ~11 ms in a few seconds, p99
from 45 to 150 ms). A child process does the same check (the very command an operator runs)
on its own interpreter and GIL; the server only waits for its answer. The child runs at the
lowest CPU priority: on a machine whose cores the server and PostgreSQL already use, a check
that ran at theirs took a core from the requests for its whole run (deliveries fell by half).
The child is killed when the server stops or the wait is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

_EXIT_OK, _EXIT_DRIFT = 0, 1
_STDERR_TAIL = 2000
_LOWEST_PRIORITY = 19
# `runledger check --json`, started by this interpreter after lowering its own priority (a
# preexec_fn would do it in the forked server, which is not safe with threads about).
_NICE_CHECK = (
    "import os, sys; os.nice({nice}); from api.__main__ import main; "
    "main(['check', '--json'], prog_name='runledger')"
)


class CheckProcessError(Exception):
    """The child could not finish the check (its exit code 2 or worse, or unreadable output)."""


@dataclass(frozen=True, slots=True)
class FoundDifference:
    run_id: str | None
    field: str


@dataclass(frozen=True, slots=True)
class ChildCheckReport:
    """What `runledger check --json` printed (the fields IntegrityMonitor reads)."""

    runs_checked: int
    events_read: int
    differences: Sequence[FoundDifference]

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ChildCheckReport:
        return cls(
            runs_checked=int(value["runs_checked"]),
            events_read=int(value["events_read"]),
            differences=tuple(
                FoundDifference(run_id=d.get("run_id"), field=str(d["field"]))
                for d in value["differences"]
            ),
        )


def check_command(database_url: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of the child: `runledger check --json`, niced."""
    env = {**os.environ, "DATABASE_URL": database_url}
    return [sys.executable, "-c", _NICE_CHECK.format(nice=_LOWEST_PRIORITY)], env


async def check_in_child_process(database_url: str) -> ChildCheckReport:
    """Run the check in a child process and return what it found."""
    argv, env = check_command(database_url)
    child = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await child.communicate()
    except BaseException:  # cancelled (the server stops): the check must not outlive it
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        raise
    if child.returncode not in (_EXIT_OK, _EXIT_DRIFT):
        tail = err.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise CheckProcessError(f"the check exited with {child.returncode}: {tail}")
    try:
        return ChildCheckReport.from_json(orjson.loads(out))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise CheckProcessError(f"the check printed no readable result: {error}") from None

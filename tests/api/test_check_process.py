"""The background check's child process: its answers, its failures, and that it dies with us."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from api import check_process
from api.check_process import CheckProcessError, check_in_child_process

from .deliveries import new_run_id


async def test_the_child_checks_the_database_it_is_given_and_reports_drift(
    dsn: str, pool: asyncpg.Pool
) -> None:
    empty = await check_in_child_process(dsn)
    assert (empty.runs_checked, empty.differences) == (0, ())

    run_id = new_run_id()
    await pool.execute(  # a record the log never created: drift for the check to find
        "INSERT INTO run_records (run_id, client_id, status, created_at, updated_at,"
        " event_count, version, last_position) VALUES ($1, 'acme', 'created', now(), now(),"
        " 1, 1, 0)",
        run_id,
    )
    drifted = await check_in_child_process(dsn)
    assert [d.run_id for d in drifted.differences] == [run_id]


async def test_a_child_that_cannot_finish_is_an_error_with_its_reason() -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/nowhere"
    with pytest.raises(CheckProcessError, match="exited with 2: the check could not finish"):
        await check_in_child_process(unreachable)


async def test_a_cancelled_check_kills_its_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    child = f"import os, time; open({str(fifo)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    monkeypatch.setattr(
        check_process, "check_command", lambda url: ([sys.executable, "-c", child], {})
    )
    checking = asyncio.create_task(check_in_child_process("unused"))
    # Blocks (in a thread) until the child has opened the pipe and written its pid.
    pid = int(await asyncio.to_thread(fifo.read_text))
    checking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await checking
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(pid, 0)

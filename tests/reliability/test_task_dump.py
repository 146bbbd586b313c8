"""SIGUSR1 makes a running `runledger serve` log where each of its tasks waits, and go on."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from .conftest import POLL_S
from .processes import BOUND_S, Served


async def test_sigusr1_logs_every_task_with_where_it_waits_and_serving_goes_on(
    served: Served,
) -> None:
    served.process.send_signal(signal.SIGUSR1)
    async with asyncio.timeout(BOUND_S):
        while True:  # another process writes the log: read again until it is there (bounded)
            lines = served.log_lines_with('"message":"task"')
            if lines:
                break
            await asyncio.sleep(POLL_S)
    assert any("projection-run_records" in line for line in lines)  # named, with a stack
    assert all('"where":' in line for line in lines)
    async with aiohttp.ClientSession() as session, session.get(served.url + "/health") as answer:
        assert answer.status == 200
    assert served.process.poll() is None

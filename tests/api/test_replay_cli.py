"""`runledger replay` and `runledger check` against the test database (--database-url).

The commands run `asyncio.run` themselves, so each is invoked in a worker thread, off the
test's own event loop.
"""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
from click.testing import CliRunner, Result

from api.__main__ import main
from eventstore import EventStore
from projections.timeline import read_timeline
from tests.builders import new_run_id
from tests.integration.projections.test_check import project_everything
from tests.integration.projections.test_timeline import write_every_kind


async def runledger(*args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, main, list(args), catch_exceptions=False)


async def test_replay_prints_each_step_and_the_record_as_a_plain_table_when_piped(
    dsn: str, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    await write_every_kind(pool, run_id)
    result = await runledger("replay", run_id, "--database-url", dsn)
    assert result.exit_code == 0, result.output
    printed = result.stdout
    assert "\x1b[" not in printed  # no colour codes when stdout is not a terminal
    for expected in (
        f"run {run_id}",
        "missing_run_record",
        "duplicate_creation",
        "rejected: stale",
        "invalid_transition",
        "RunResurrected",
        "ResultsRecorded",
        "kickoff",
        "Apify ACTOR.RUN.SUCCEEDED",
        "created → running",
        "run record",
    ):
        assert expected in printed, expected


async def test_replay_json_prints_one_object_per_step_then_the_record(
    dsn: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    await write_every_kind(pool, run_id)
    result = await runledger("replay", run_id, "--json", "--database-url", dsn)
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    expected = await read_timeline(store, run_id)
    assert expected is not None
    body = orjson.loads(orjson.dumps(expected.to_json()))
    assert lines[:-1] == body["steps"]
    assert lines[-1] == {"run_id": run_id, "as_of": None, "state": body["state"]}


async def test_replay_as_of_a_position_shows_the_record_as_it_was_then(
    dsn: str, pool: asyncpg.Pool
) -> None:
    run_id = new_run_id()
    positions = await write_every_kind(pool, run_id)
    result = await runledger(
        "replay", run_id, "--json", "--as-of", str(positions[4]), "--database-url", dsn
    )
    assert result.exit_code == 0, result.output
    *steps, last = (orjson.loads(line) for line in result.stdout.splitlines())
    assert [s["position"] for s in steps] == positions[:5]
    assert (last["as_of"], last["state"]["status"], last["state"]["version"]) == (
        {"position": positions[4], "time": None},
        "succeeded",
        4,
    )


async def test_replay_of_an_unknown_run_says_so_and_exits_1(dsn: str) -> None:
    run_id = new_run_id()
    result = await runledger("replay", run_id, "--database-url", dsn)
    assert result.exit_code == 1
    assert f"no events for run '{run_id}'" in result.stderr


async def test_replay_refuses_an_as_of_that_is_neither_a_position_nor_a_time(dsn: str) -> None:
    result = await runledger("replay", "some-run", "--as-of", "last tuesday", "--database-url", dsn)
    assert result.exit_code == 2
    assert "Invalid value for '--as-of'" in result.stderr


async def test_check_exits_0_when_the_projections_agree_with_the_log(
    dsn: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    await write_every_kind(pool, new_run_id())
    await project_everything(pool, store)
    result = await runledger("check", "--database-url", dsn)
    assert result.exit_code == 0, result.output
    assert "checked 1 runs from 10 events" in result.stdout
    assert "the log and the projections agree" in result.stdout


async def test_check_exits_1_and_names_each_difference(
    dsn: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    await write_every_kind(pool, run_id)
    await project_everything(pool, store)
    await pool.execute("UPDATE run_records SET status = 'failed' WHERE run_id = $1", run_id)
    result = await runledger("check", "--database-url", dsn)
    assert result.exit_code == 1
    assert "1 difference(s)" in result.stdout
    [row] = [line for line in result.stdout.splitlines() if run_id in line]
    assert "status" in row
    assert '"succeeded"' in row
    assert '"failed"' in row


async def test_check_json_is_the_structured_result(
    dsn: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    run_id = new_run_id()
    await write_every_kind(pool, run_id)
    await project_everything(pool, store)
    await pool.execute("UPDATE run_records SET version = 99 WHERE run_id = $1", run_id)
    result = await runledger("check", "--json", "--database-url", dsn)
    assert result.exit_code == 1
    body = orjson.loads(result.stdout)
    assert (body["ok"], body["runs_checked"], body["events_read"]) == (False, 1, 10)
    assert body["differences"] == [
        {"run_id": run_id, "field": "version", "log": "9", "projection": "99"}
    ]


async def test_check_that_cannot_reach_the_database_exits_2_not_1() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    result = await runledger("check", "--database-url", "postgresql://postgres@127.0.0.1:1/x")
    assert result.exit_code == 2, result.output
    assert "the check could not finish" in result.stderr

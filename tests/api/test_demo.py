"""`runledger demo`: the simulated day, and driving a real server with it."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime

from rich.console import Console

from api.demo import DemoSettings, run_demo
from api.demo_scenario import demo_day

from .conftest import API_TOKEN, AUTH, WEBHOOK_TOKEN, Client

DAY = datetime(2026, 3, 14, tzinfo=UTC)


def test_demo_day_is_the_same_for_the_same_seed() -> None:
    assert demo_day(day=DAY, runs=12, seed=3) == demo_day(day=DAY, runs=12, seed=3)


def test_demo_day_kicks_off_every_run_before_its_results_and_keeps_orphans_unkicked() -> None:
    requests = demo_day(day=DAY, runs=24, seed=3)
    kicked_off: set[str] = set()
    updated_before_kickoff: set[str] = set()
    for request in requests:
        if request.kind == "kickoff":
            kicked_off.add(request.body["run_id"])
        elif request.kind == "results":
            assert request.path.split("/")[2] in kicked_off
        elif request.body["eventType"] != "TEST":
            run_id = request.body["resource"]["id"]
            if run_id not in kicked_off:
                updated_before_kickoff.add(run_id)
    assert len(kicked_off) == 25  # the 24 runs and the one whose CREATED beat its kickoff
    assert len(updated_before_kickoff) == 3  # two orphans and that one


def test_demo_day_brings_every_kind_of_delivery_a_real_day_does() -> None:
    whys = Counter(r.why for r in demo_day(day=DAY, runs=24, seed=7))
    for why in (
        "Apify: repeated delivery",
        "Apify: late CREATED (stale)",
        "Apify: run resurrected",
        "Apify: run nobody kicked off",
        "Apify: retry, after the kickoff",
        "Apify console: test button",
    ):
        assert whys[why] >= 1, why


async def test_demo_drives_a_server_and_every_run_it_kicked_off_is_recorded(
    client: Client,
) -> None:
    out = io.StringIO()
    settings = DemoSettings(
        url=str(client.make_url("")).rstrip("/"),
        api_token=API_TOKEN,
        webhook_token=WEBHOOK_TOKEN,
        runs=12,
        seed=7,
    )
    await run_demo(settings, Console(file=out, width=200))
    printed = out.getvalue()
    assert "Client report" in printed
    assert "webhook rejected (missing_run_record)" in printed
    expected = {
        r.body["run_id"]
        for r in demo_day(day=DAY, runs=12, seed=7)  # run ids do not depend on the day
        if r.kind == "kickoff"
    }
    answer = await client.get("/runs?limit=1000", headers=AUTH)
    assert {item["run_id"] for item in (await answer.json())["items"]} == expected

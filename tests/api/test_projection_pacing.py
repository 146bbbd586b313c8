"""`serve` paces its projection runners as `runledger projections run` does: one definition."""

from __future__ import annotations

from api.keys import PROJECTIONS
from projections.supervisor import LIVE_BATCH_INTERVALS_S, LIVE_DIAGNOSTICS_BATCH_INTERVAL_S

from .conftest import Client


async def test_serve_runs_its_projections_with_the_live_pacing(client: Client) -> None:
    runners = client.app[PROJECTIONS].runners
    intervals = {runner.projection.name: runner.batch_interval for runner in runners}
    assert intervals == {
        name: LIVE_BATCH_INTERVALS_S.get(name, LIVE_DIAGNOSTICS_BATCH_INTERVAL_S)
        for name in intervals
    }
    assert intervals["run_records"] == 0.05

"""How fast a run's events fold into its state: `replay`/`evolve`, and `decode` + `evolve`.

Builds realistic run histories with `decide` (a kickoff, Apify deliveries from the shared
fixtures — late, duplicated, resurrected — and results reports: about ten events a run), repeats
them to at least a million events, and prints events per second on one core (best of three).

    .venv/bin/python bench/fold.py [--events 1000000] [--templates 500] [--seed 7]

Target: replay ≥ 200,000 events/s (the projection rebuild depends on it). The reference row
is the design issue 3 rejected: a `transitions.Machine` built per run (as a naive replay would),
firing one trigger per status event, on a sample of the same runs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transitions import Machine, MachineError

from statemachine import (
    Command,
    Event,
    RunAborted,
    RunFailed,
    RunResurrected,
    RunStarted,
    RunStatus,
    RunSucceeded,
    RunTimedOut,
    decide,
    decode,
    encode,
    evolve,
    replay,
)
from statemachine.lifecycle import STEPS
from tests.builders import FINAL_FIXTURES, NOW, kickoff, record_results, webhook


def _commands(run_id: str, rng: random.Random) -> list[Command]:
    """One run's commands in a plausible arrival order, duplicates and late ones included."""
    first, second = rng.choice(FINAL_FIXTURES), rng.choice(FINAL_FIXTURES)
    deliveries: list[Command] = [
        webhook("run-created", run_id=run_id),
        webhook(first, run_id=run_id),
        webhook("run-created", run_id=run_id, dispatch_id=f"late-{run_id}"),  # stale
    ]
    if rng.random() < 0.5:
        deliveries += [
            webhook("run-resurrected", run_id=run_id),
            webhook(second, run_id=run_id, resurrect_count=1),
        ]
    else:
        deliveries.append(webhook("run-failed", run_id=run_id, dispatch_id=f"bad-{run_id}"))
    rng.shuffle(deliveries)
    deliveries.append(deliveries[0])  # a duplicate: no event
    results = [
        record_results(run_id=run_id, request_key=f"r{i}", metrics={"posts": 10.0 * i, "n": i})
        for i in range(1, 4)
    ]
    return [kickoff(run_id=run_id), *deliveries, *results, kickoff(run_id=run_id, request_key="x")]


def build_histories(templates: int, seed: int) -> list[list[Event]]:
    """`templates` distinct run histories, each decided command by command."""
    rng = random.Random(seed)
    histories: list[list[Event]] = []
    for _ in range(templates):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex[:17]
        history: list[Event] = []
        for step, command in enumerate(_commands(run_id, rng)):
            history += decide(history, command, now=NOW + timedelta(seconds=step))
        histories.append(history)
    return histories


def _best_of(runs: int, work: Callable[[], int]) -> float:
    """Events per second of the fastest of `runs` timings of `work` (which returns its count)."""
    best = 0.0
    for _ in range(runs):
        gc.collect()
        gc.disable()
        started = time.perf_counter()
        count = work()
        elapsed = time.perf_counter() - started
        gc.enable()
        best = max(best, count / elapsed)
    return best


_TRIGGERS: dict[type[Event], str] = {
    RunStarted: "start",
    RunSucceeded: "succeed",
    RunFailed: "fail",
    RunAborted: "abort",
    RunTimedOut: "time_out",
    RunResurrected: "resurrect",
}


class _Model:
    state: str


def machine_per_run(histories: Sequence[Sequence[Event]]) -> int:
    """The rejected design: a Machine per run, one trigger per status event; returns events."""
    table = [{"trigger": s.trigger, "source": list(s.sources), "dest": s.dest} for s in STEPS]
    events = 0
    for history in histories:
        model = _Model()
        Machine(
            model=model,
            states=list(RunStatus),
            transitions=table,
            initial=RunStatus.CREATED,
            auto_transitions=False,
        )
        for event in history:
            trigger = _TRIGGERS.get(type(event))
            if trigger is not None:
                # a step our decide() judged differently may refuse; the cost is what counts
                with contextlib.suppress(MachineError):
                    getattr(model, trigger)()
        events += len(history)
    return events


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--templates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    templates = build_histories(args.templates, args.seed)
    per_run = sum(map(len, templates)) / len(templates)
    copies = -(-args.events // sum(map(len, templates)))
    runs = templates * copies
    total = sum(map(len, runs))
    print(f"{len(runs):,} runs, {total:,} events ({per_run:.1f} events a run)")

    def replay_all() -> int:
        for history in runs:
            replay(history)
        return total

    stored = [
        [(e.event_id, name, orjson.dumps(data)) for e in h for name, data in [encode(e)]]
        for h in templates
    ] * copies
    parsed = [[(i, t, orjson.loads(d)) for i, t, d in h] for h in stored[: len(templates)]]
    parsed *= copies

    def decode_and_evolve() -> int:
        for history in parsed:
            state = None
            for event_id, type_name, data in history:
                state = evolve(state, decode(event_id, type_name, data))
        return total

    def parse_decode_and_evolve() -> int:
        for history in stored:
            state = None
            for event_id, type_name, raw in history:
                state = evolve(state, decode(event_id, type_name, orjson.loads(raw)))
        return total

    print(f"replay (evolve):              {_best_of(3, replay_all):>12,.0f} events/s")
    print(f"decode + evolve:              {_best_of(3, decode_and_evolve):>12,.0f} events/s")
    print(f"json parse + decode + evolve: {_best_of(3, parse_decode_and_evolve):>12,.0f} events/s")
    sample = runs[: min(len(runs), 20_000)]
    reference = _best_of(1, lambda: machine_per_run(sample))
    print(
        f"reference, a Machine per run:  {reference:>11,.0f} events/s"
        f"  (replay is {_best_of(1, lambda: _replay_sample(sample)) / reference:,.0f}x faster"
        f" on the same {len(sample):,} runs)"
    )


def _replay_sample(histories: Sequence[Sequence[Event]]) -> int:
    for history in histories:
        replay(history)
    return sum(map(len, histories))


if __name__ == "__main__":
    main()

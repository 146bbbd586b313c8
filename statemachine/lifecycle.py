"""The run lifecycle: the table of legal steps and the one shared `transitions.Machine`.

The table is constant data. One `Machine(model=None)` is built from it at import and fired with
`machine.events[trigger].trigger(model)` on a throw-away model object (about 12 µs; a
`Machine` per run would cost ~0.5 ms and 25 KiB), once per (status, trigger): see `fire`.
This module is the only one that imports `transitions`; its `MachineError` becomes our
`InvalidTransition` here.

Regenerate the diagram in the docs with `python -m statemachine > docs/lifecycle.md`.
"""

from __future__ import annotations

from dataclasses import dataclass

from transitions import Machine, MachineError
from transitions.extensions.diagrams import GraphMachine

from statemachine.errors import InvalidTransition
from statemachine.states import TERMINAL_STATUSES, RunStatus

_ALL_TERMINAL = tuple(s for s in RunStatus if s in TERMINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class Step:
    """One row of the table: `trigger` takes a run from any of `sources` to `dest`."""

    trigger: str
    sources: tuple[RunStatus, ...]
    dest: RunStatus


# Apify fires no webhook for RUNNING, TIMING-OUT or ABORTING; the in-progress steps are in the
# table because they are Apify's lifecycle (and documented), not because a delivery fires them.
# A final status is allowed straight from `created`: the CREATED delivery may never arrive.
STEPS: tuple[Step, ...] = (
    Step("start", (RunStatus.CREATED,), RunStatus.RUNNING),
    Step("begin_timing_out", (RunStatus.RUNNING,), RunStatus.TIMING_OUT),
    Step("begin_aborting", (RunStatus.CREATED, RunStatus.RUNNING), RunStatus.ABORTING),
    Step("succeed", (RunStatus.CREATED, RunStatus.RUNNING), RunStatus.SUCCEEDED),
    Step(
        "fail",
        (RunStatus.CREATED, RunStatus.RUNNING, RunStatus.TIMING_OUT, RunStatus.ABORTING),
        RunStatus.FAILED,
    ),
    Step(
        "time_out",
        (RunStatus.CREATED, RunStatus.RUNNING, RunStatus.TIMING_OUT),
        RunStatus.TIMED_OUT,
    ),
    Step(
        "abort",
        (RunStatus.CREATED, RunStatus.RUNNING, RunStatus.TIMING_OUT, RunStatus.ABORTING),
        RunStatus.ABORTED,
    ),
    Step("resurrect", _ALL_TERMINAL, RunStatus.RUNNING),
)

INITIAL = RunStatus.CREATED
_TITLE = "run lifecycle"


def _machine_transitions(*, as_text: bool) -> list[dict[str, object]]:
    def name(status: RunStatus) -> object:
        return status.value if as_text else status

    return [
        {"trigger": s.trigger, "source": [name(x) for x in s.sources], "dest": name(s.dest)}
        for s in STEPS
    ]


_MACHINE = Machine(
    model=None,
    states=list(RunStatus),
    transitions=_machine_transitions(as_text=False),
    initial=INITIAL,
    auto_transitions=False,
)


class _Model:
    """The smallest model `transitions` can drive: one status, nothing else."""

    __slots__ = ("state",)

    def __init__(self, state: RunStatus) -> None:
        self.state = state


def fire(status: RunStatus, trigger: str) -> RunStatus:
    """The status after `trigger` from `status`; `InvalidTransition` if the table forbids it.

    The machine's answer for each (status, trigger) is kept after its first firing: the table
    is constant, so the answer cannot change, and firing through `transitions` costs ~40 µs
    under load, a tenth of the server's time per delivery in the ingest benchmark. The machine
    still decides every pair; nothing here restates the table.
    """
    answer = _FIRED.get((status, trigger))
    if answer is None:
        answer = _FIRED[(status, trigger)] = _fire_machine(status, trigger)
    if isinstance(answer, InvalidTransition):
        raise InvalidTransition(trigger, status.value)
    return answer


_FIRED: dict[tuple[RunStatus, str], RunStatus | InvalidTransition] = {}


def _fire_machine(status: RunStatus, trigger: str) -> RunStatus | InvalidTransition:
    event = _MACHINE.events.get(trigger)
    if event is None:
        raise ValueError(f"unknown lifecycle trigger {trigger!r}")
    model = _Model(status)
    try:
        event.trigger(model)
    except MachineError:
        return InvalidTransition(trigger, status.value)
    return model.state


def render_mermaid() -> str:
    """The table as a mermaid state diagram, drawn by transitions' own mermaid engine."""
    graph = GraphMachine(
        states=[s.value for s in RunStatus],
        transitions=_machine_transitions(as_text=True),
        initial=INITIAL.value,
        auto_transitions=False,
        graph_engine="mermaid",
        title=_TITLE,
    )
    source = str(graph.get_graph().draw(None))
    # transitions 0.9.3 writes the title bare inside the front matter (mermaid wants `title:`),
    # `Class x style` (mermaid's keyword is `class`), and pads blank lines with spaces.
    lines = [line.rstrip().replace("  Class ", "  class ", 1) for line in source.splitlines()]
    if lines[:3] == ["---", _TITLE, "---"]:
        lines[1] = f"title: {_TITLE}"
    return "\n".join(lines)


_DOC_HEAD = """\
# The run lifecycle

<!-- Generated from statemachine/lifecycle.py by
     `python -m statemachine > docs/lifecycle.md`. Do not edit by hand:
     tests/unit/statemachine/test_lifecycle.py fails when this file is stale. -->

The legal steps of a run's status, as `statemachine/lifecycle.py` declares them and
`transitions` draws them. Apify fires no webhook for `running`, `timing_out` or `aborting`;
`ACTOR.RUN.CREATED` becomes `RunStarted` (status `running`). A final status straight from
`created` is allowed: the CREATED delivery may arrive late or never.

"""

_DOC_TAIL = """
## How a delivery is judged

A run's *generation* is its resurrect count (`resource.stats.resurrectCount` of the delivery).
Within a generation the statuses rank `created` < `running` < `timing_out`, `aborting` < final.
Compared with the run's state, a delivery is:

- **a duplicate** (no event) when its event id is already in the run stream: the same
  `X-Apify-Webhook-Dispatch-Id`, or else the same run, event type, resurrect count and
  `createdAt`, whether it was applied or rejected as `stale` or `invalid_transition` before;
- **stale** when it is from an older generation;
- **stale** when it is from the same generation with a lower rank (CREATED after SUCCEEDED,
  RESURRECTED after a final of its own generation);
- **stale** when it is from the same generation and brings the status the run already has
  (a second SUCCEEDED from another delivery, a second CREATED): it says nothing new;
- **invalid_transition** when it is from the same generation and the table forbids the step
  (FAILED after SUCCEEDED with no resurrection between);
- **applied** when it is from the same generation and the table allows the step;
- **applied** when it is a RESURRECTED from a newer generation, whatever the status (a missed
  final of the older generation is implied);
- judged from `running`, where every generation starts, when it is any other delivery from a
  newer generation (its RESURRECTED has not arrived yet): a final status is **applied** (it
  implies the resurrection), a CREATED is **invalid_transition**. An applied delivery sets
  the resurrect count to its own.

Stale and invalid rejections are recorded on the run stream with the delivery's own event id,
so a repeat of that delivery is a duplicate. A delivery (or a results report) for a run with
no `RunCreated` is rejected as `missing_run_record` into the orphan stream `orphan-<run_id>`
at every attempt (its id includes the attempt time). Once the run is created, the next retry
gets the delivery's own id, which the run stream has never seen, and is judged as above.
"""


def render_markdown() -> str:
    """The whole of docs/lifecycle.md."""
    return f"{_DOC_HEAD}```mermaid\n{render_mermaid()}\n```\n{_DOC_TAIL}"

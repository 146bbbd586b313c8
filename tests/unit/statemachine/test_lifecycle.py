"""The lifecycle table, its one shared machine, and the diagram in the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from statemachine import InvalidTransition, RunStatus
from statemachine.lifecycle import STEPS, _fire_machine, fire, render_markdown

_DOCS = Path(__file__).resolve().parents[3] / "docs" / "lifecycle.md"


@pytest.mark.parametrize(
    ("source", "trigger", "dest"),
    [(source, step.trigger, step.dest) for step in STEPS for source in step.sources],
)
def test_every_step_of_the_table_fires(source: RunStatus, trigger: str, dest: RunStatus) -> None:
    assert fire(source, trigger) is dest


def test_step_the_table_lacks_raises_invalid_transition() -> None:
    with pytest.raises(InvalidTransition, match="'fail' from status 'succeeded'"):
        fire(RunStatus.SUCCEEDED, "fail")


@pytest.mark.parametrize("trigger", sorted({step.trigger for step in STEPS}))
@pytest.mark.parametrize("source", list(RunStatus))
def test_kept_answers_are_the_machines_on_every_firing(source: RunStatus, trigger: str) -> None:
    machine = _fire_machine(source, trigger)
    for _ in range(3):  # the first firing asks the machine, the later ones reuse its answer
        if isinstance(machine, InvalidTransition):
            with pytest.raises(InvalidTransition) as raised:
                fire(source, trigger)
            assert str(raised.value) == str(machine)
        else:
            assert fire(source, trigger) is machine


def test_unknown_trigger_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown lifecycle trigger"):
        fire(RunStatus.CREATED, "explode")


def test_lifecycle_diagram_in_the_docs_is_current() -> None:
    assert _DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/lifecycle.md is stale: run `python -m statemachine > docs/lifecycle.md`"
    )

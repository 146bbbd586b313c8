"""Figures a scenario prints for RELIABILITY.md (run pytest with -s to see them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .load import Answer


def statuses(answers: Sequence[Answer]) -> dict[int, int]:
    return dict(sorted(Counter(a.status for a in answers).items()))


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def show(scenario: str, **figures: object) -> None:
    print(f"\n[reliability] {scenario}")
    for name, value in figures.items():
        print(f"  {name}: {value}")

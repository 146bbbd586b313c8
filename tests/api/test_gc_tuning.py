"""The garbage collector while serving: rare full collections, and young cycles still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from api.startup import SERVING_GC_THRESHOLDS, tune_gc_for_serving


@pytest.fixture(name="serving_gc")
def _serving_gc() -> Iterator[None]:
    before = gc.get_threshold()
    tune_gc_for_serving()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.mark.usefixtures("serving_gc")
def test_serving_freezes_start_up_objects_and_raises_the_thresholds() -> None:
    assert gc.get_threshold() == SERVING_GC_THRESHOLDS
    assert gc.get_freeze_count() > 0  # what start-up built is never walked again


@pytest.mark.usefixtures("serving_gc")
def test_a_cycle_made_while_serving_is_still_freed_by_a_young_collection() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # reference counting alone cannot free a cycle
    young = gc.get_count()[0]
    # More new containers than the young threshold: the allocator itself starts a collection.
    kept: list[list[int]] = [[] for _ in range(SERVING_GC_THRESHOLDS[0] - young + 10)]
    assert gone() is None
    assert kept

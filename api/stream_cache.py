"""The run streams used last, decoded and kept in memory between commands."""

from __future__ import annotations

from collections import OrderedDict

from statemachine import Event, slim


class StreamCache:
    """The last run streams used, decoded, so that a command need not read its run again.

    Only an optimisation: every append names the version the cached stream had, so a stream
    another process wrote since fails with WrongExpectedVersion and is read again. Kept slim
    (see `slim`) and bounded: the least recently used run goes first.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, list[Event]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, run_id: str) -> list[Event] | None:
        history = self._entries.get(run_id)
        if history is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(run_id)
        return history

    def put(self, run_id: str, history: list[Event]) -> None:
        if self._capacity <= 0:
            return
        cached = self._entries.get(run_id)
        if cached is not None and len(cached) == len(history) - 1:
            cached.append(slim(history[-1]))  # the usual case: one event more than before
        else:
            self._entries[run_id] = [slim(event) for event in history]
        self._entries.move_to_end(run_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget(self, run_id: str) -> None:
        self._entries.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._entries)

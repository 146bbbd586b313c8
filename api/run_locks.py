"""One asyncio lock per run id: commands on one run are decided one at a time in a process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


class RunLocks:
    """One asyncio lock per run id, held while a command is decided and appended.

    Without it, 50 concurrent deliveries for one run would all read the same version and all
    but one would conflict, retry, conflict again. An entry lives only while someone uses it.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _LockEntry] = {}

    @asynccontextmanager
    async def hold(self, run_id: str) -> AsyncIterator[None]:
        entry = self._entries.setdefault(run_id, _LockEntry())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[run_id]

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class _LockEntry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0

"""The default store: everything in this process's memory."""

from __future__ import annotations

from typing import Any

from aggregator.model import ChangeEvent, Snapshot
from aggregator.status import SourceStatus, status_to_state
from aggregator.store.base import Store
from aggregator.store.changelog import MAX_TOMBSTONES, RETENTION_S, LogView, MemoryChangeLog


class MemoryStore(Store):
    """Holds the current snapshot and status of each source; for one process."""

    def __init__(self) -> None:
        super().__init__()
        self._snapshots: dict[str, Snapshot] = {}
        self._statuses: dict[str, SourceStatus] = {}
        self._logs: dict[str, MemoryChangeLog] = {}

    async def ping(self) -> bool:
        return True

    async def save_snapshot(self, snapshot: Snapshot, payload: bytes | None = None) -> None:
        current = self._snapshots.get(snapshot.source_id)
        if current is not None and current.version >= snapshot.version:
            # A slower poll finishing late must not roll the data back.
            return
        self._snapshots[snapshot.source_id] = snapshot
        await self._notify(ChangeEvent(snapshot.source_id, snapshot.version, snapshot))

    async def load_snapshot(self, source_id: str) -> Snapshot | None:
        return self._snapshots.get(source_id)

    async def save_status(self, status: SourceStatus) -> None:
        # The poller mutates its status objects in place; the same object is shared.
        self._statuses[status.source_id] = status

    async def load_statuses(self) -> dict[str, dict[str, Any]]:
        return {i: status_to_state(s) for i, s in self._statuses.items()}

    async def publish_changes(
        self,
        collection: str,
        generation: dict[str, int],
        hashes: dict[str, str],
        now: float,
        *,
        retention_s: float = RETENTION_S,
        max_tombstones: int = MAX_TOMBSTONES,
    ) -> bool:
        log = self._logs.setdefault(collection, MemoryChangeLog())
        return log.publish(generation, hashes, now, retention_s, max_tombstones)

    async def read_changes(self, collection: str, after: int) -> LogView:
        log = self._logs.get(collection)
        if log is None:
            return LogView(None, 0, 0, [], [])
        return log.read(after)

"""What an API process serves from: the latest snapshot of each source, and its indexes.

Indexes are built once per snapshot version (when the data changes), never per request,
and replaced whole so a request reads a consistent one without locks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aggregator.model import ChangeEvent, Snapshot

IndexT = TypeVar("IndexT")


class LiveData:
    """The in-process view of every source's current snapshot."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._indexes: dict[tuple[str, str], tuple[tuple[int, ...], Any]] = {}
        self._eager: dict[str, list[tuple[str, Callable[[Snapshot], Any]]]] = {}

    def build_eagerly(self, source_type: str, name: str, build: Callable[[Snapshot], Any]) -> None:
        """Build index ``name`` as soon as a snapshot of ``source_type`` arrives.

        Big indexes (a city's timetable) must not make the first request after a change wait.
        """
        self._eager.setdefault(source_type, []).append((name, build))

    def on_change(self, event: ChangeEvent) -> None:
        """Store listener: adopt the announced snapshot when it is newer than ours."""
        if event.snapshot is None:
            return
        current = self._snapshots.get(event.source_id)
        if current is None or event.snapshot.version > current.version:
            self._snapshots[event.source_id] = event.snapshot
            for name, build in self._eager.get(event.snapshot.source_type, ()):
                self.index(event.source_id, name, build)

    def adopt(self, snapshot: Snapshot) -> None:
        """Take a snapshot loaded directly from the store (e.g. at start-up)."""
        self.on_change(ChangeEvent(snapshot.source_id, snapshot.version, snapshot))

    def snapshot(self, source_id: str) -> Snapshot | None:
        return self._snapshots.get(source_id)

    def snapshots(self) -> dict[str, Snapshot]:
        return dict(self._snapshots)

    def index(
        self, source_id: str, name: str, build: Callable[[Snapshot], IndexT]
    ) -> IndexT | None:
        """The index ``name`` of the current snapshot of ``source_id``, built on first use."""
        snapshot = self._snapshots.get(source_id)
        if snapshot is None:
            return None
        key = (source_id, name)
        cached = self._indexes.get(key)
        if cached is not None and cached[0] == snapshot.version:
            return cached[1]
        built = build(snapshot)
        self._indexes[key] = (snapshot.version, built)
        return built

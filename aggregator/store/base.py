"""The abstract store every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from aggregator.model import ChangeEvent, Snapshot
from aggregator.status import SourceStatus

ChangeListener = Callable[[ChangeEvent], Awaitable[None] | None]


class Store(ABC):
    """Versioned snapshots and statuses per source, with change notification."""

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every snapshot saved by any process sharing this store."""
        self._listeners.append(listener)

    async def _notify(self, event: ChangeEvent) -> None:
        for listener in self._listeners:
            outcome = listener(event)
            if outcome is not None:
                await outcome

    async def start(self) -> None:  # noqa: B027 - optional hook; the memory store needs none
        """Connect and begin receiving change notifications."""

    async def close(self) -> None:  # noqa: B027 - optional hook; the memory store needs none
        """Release connections; the store is not used afterwards."""

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the store answers (``/readyz`` asks)."""

    @abstractmethod
    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as the current one of its source and announce it."""

    @abstractmethod
    async def load_snapshot(self, source_id: str) -> Snapshot | None:
        """The current snapshot of ``source_id``, if any."""

    @abstractmethod
    async def save_status(self, status: SourceStatus) -> None:
        """Share a source's status with every process."""

    @abstractmethod
    async def load_statuses(self) -> dict[str, SourceStatus]:
        """Every source's last shared status."""

"""The abstract store every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aggregator.model import ChangeEvent, Snapshot
from aggregator.status import SourceStatus
from aggregator.store.changelog import MAX_TOMBSTONES, RETENTION_S, LogView

ChangeListener = Callable[[ChangeEvent], Awaitable[None] | None]
StatusListener = Callable[[str, dict[str, Any]], None]


#: The shape of what a process writes in a shared store. Raise it when a connector's data,
#: stored as JSON, changes shape incompatibly: during a rolling upgrade a process then keeps
#: the data it has rather than read a snapshot whose shape it does not know (a payload, parsed
#: again by the reader's own code, is read whatever its writer's format).
STORE_FORMAT = 1


@dataclass(frozen=True)
class Shipped:
    """A snapshot as another process stored it: its data still to be rebuilt here.

    ``encoding`` says how: ``json`` (the data itself, JSON) or ``payload`` (the raw upstream
    payload, to parse again here — a compiled timetable is far bigger than its zip).
    ``store_format`` is the :data:`STORE_FORMAT` of the process that wrote it, ``writer``
    its Beffroi version (None for writers older than the field).
    """

    source_id: str
    source_type: str
    version: int
    content_hash: str
    fetched_at: datetime
    record_count: int
    encoding: Literal["json", "payload"]
    body: bytes
    issues: tuple[str, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)
    store_format: int = 1
    writer: str | None = None


class Store(ABC):
    """Versioned snapshots and statuses per source, with change notification, and the
    per-source leases that make one poller poll each source."""

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []
        self._status_listeners: list[StatusListener] = []

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every snapshot saved by any process sharing this store."""
        self._listeners.append(listener)

    def subscribe_status(self, listener: StatusListener) -> None:
        """Call ``listener(source_id, state)`` when another process shares a status."""
        self._status_listeners.append(listener)

    async def _notify(self, event: ChangeEvent) -> None:
        for listener in self._listeners:
            outcome = listener(event)
            if outcome is not None:
                await outcome

    async def start(self) -> None:  # noqa: B027 - optional hook; the memory store needs none
        """Connect and begin receiving change notifications."""

    async def stop_listening(self) -> None:  # noqa: B027 - optional hook; the memory store needs none
        """Stop announcing other processes' changes (the first step of a stop: nothing new
        should start loading while the rest closes); commands still work."""

    async def close(self) -> None:  # noqa: B027 - optional hook; the memory store needs none
        """Release connections; the store is not used afterwards."""

    @property
    def shared(self) -> bool:
        """Whether other processes see what this store holds."""
        return False

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the store answers (``/readyz`` asks)."""

    @abstractmethod
    async def save_snapshot(self, snapshot: Snapshot, payload: bytes | None = None) -> None:
        """Keep ``snapshot`` as the current one of its source and announce it.

        ``payload`` is the raw upstream body, for sources whose data other processes rebuild
        by parsing it again; other sources' data is shared as JSON.
        """

    @abstractmethod
    async def load_snapshot(self, source_id: str) -> Snapshot | Shipped | None:
        """The current snapshot of ``source_id``, if any (as shipped, for a shared store)."""

    @abstractmethod
    async def save_status(self, status: SourceStatus) -> None:
        """Share a source's status with every process."""

    @abstractmethod
    async def load_statuses(self) -> dict[str, dict[str, Any]]:
        """Every source's last shared status, as states (see ``status_to_state``)."""

    async def acquire(self, source_id: str, owner: str) -> bool:
        """Take or keep the lease on polling ``source_id``; True when ``owner`` holds it."""
        return True

    async def release(self, source_id: str, owner: str) -> None:  # noqa: B027 - optional
        """Give the lease back (on a clean stop, so another poller takes over at once)."""

    # -- change logs (see aggregator.store.changelog and aggregator.api.sync) -----------

    @abstractmethod
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
        """Record ``collection``'s current ``record id -> content hash`` set: what differs
        from the stored set gets new sequence numbers. False (nothing written) when
        ``generation`` (source id -> snapshot version) is older than the published one."""

    @abstractmethod
    async def read_changes(self, collection: str, after: int) -> LogView:
        """What changed in ``collection`` after sequence ``after``, read atomically."""

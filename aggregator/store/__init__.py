"""Where snapshots and source statuses live, and how processes learn that they changed.

:class:`Store` is the seam: the in-memory store serves a single process; a shared
store (Redis) lets several processes agree. API processes never read the store on the
request path — they keep the latest snapshots in memory (:mod:`aggregator.live`) and
refresh them when the store announces a change.
"""

from aggregator.store.base import ChangeListener, Store
from aggregator.store.memory import MemoryStore

__all__ = ["ChangeListener", "MemoryStore", "Store", "create_store"]


def create_store(backend: str) -> Store:
    """The store named by the config's ``store.backend``."""
    if backend == "memory":
        return MemoryStore()
    # The shared Redis store is its own piece of work; refuse clearly rather than
    # pretending a single-process store can coordinate several processes.
    raise ValueError(f"store backend {backend!r} is not available in this build")

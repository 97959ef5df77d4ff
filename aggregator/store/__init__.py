"""Where snapshots and source statuses live, and how processes learn that they changed.

:class:`Store` is the seam: the in-memory store serves a single process; a shared
store (Redis) lets several processes agree. API processes never read the store on the
request path — they keep the latest snapshots in memory (:mod:`aggregator.live`) and
refresh them when the store announces a change.
"""

from aggregator.config.models import StoreConfig
from aggregator.store.base import ChangeListener, Shipped, Store
from aggregator.store.memory import MemoryStore

__all__ = ["ChangeListener", "MemoryStore", "Shipped", "Store", "create_store"]


def create_store(config: StoreConfig) -> Store:
    """The store the config's ``store`` section names."""
    if config.backend == "redis":
        from aggregator.store.redis_store import RedisStore

        assert config.url is not None  # the config model requires it for redis
        return RedisStore(config.url, prefix=config.key_prefix, lease_ttl=config.lock_ttl)
    return MemoryStore()

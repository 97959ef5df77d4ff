"""A micro-cache of rendered answers: the same request within a second is answered once.

A hundred phones at the same tram stop ask for the same board within the same second. Every
public answer already says ``Cache-Control: public, max-age=N`` (N from the sources' refresh
intervals), which lets any shared cache in front of us keep it for N seconds; this keeps it
for at most ``ttl_s`` (one second by default) inside the process, the way an nginx
micro-cache (``proxy_cache_valid 1s`` with ``proxy_cache_lock``) would, without one.

What keeps it correct:

- only answers a shared cache may store (``public``, 200, not personalised: never a request
  with ``Authorization``) are kept;
- the key is everything the answer depends on from the request: the path with its query,
  whether gzip is accepted, ``Accept-Language`` (the ``Vary`` of our answers). CORS and
  security headers are added per request, after the cache, so ``Origin`` is not in the key;
- an entry is void as soon as the data changes (:attr:`LiveData.generation`: a snapshot
  adopted or dropped, an index swapped in, a configuration reload), not only when it expires.
  What it may miss for up to ``ttl_s`` is what changes with the clock alone: ``now`` on
  boards asked without ``at``, freshness ages, a source turning stale;
- concurrent misses of one key compute it once (the others wait for that answer);
- bounded: at most ``max_entries`` answers of at most ``max_body_bytes`` each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from aggregator.api.rendering import Rendered, accepts_gzip

#: (raw path with query, gzip accepted, Accept-Language).
CacheKey = tuple[str, bool, str]


@dataclass(frozen=True, slots=True)
class _Entry:
    rendered: Rendered
    generation: int
    expires: float


class ResponseCache:
    """Rendered answers by request, valid for one data generation and ``ttl_s`` seconds."""

    def __init__(
        self,
        ttl_s: float,
        generation: Callable[[], int],
        *,
        max_entries: int = 4096,
        max_body_bytes: int = 512 * 1024,
        count: Callable[[str], None] | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self._generation = generation
        self.max_entries = max_entries
        self.max_body_bytes = max_body_bytes
        self._entries: dict[CacheKey, _Entry] = {}
        self._inflight: dict[CacheKey, asyncio.Future[Rendered | None]] = {}
        self._count = count or (lambda outcome: None)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key_of(request: web.Request) -> CacheKey | None:
        """The request's key, None when its answer must not come from the cache."""
        if request.method != "GET" or "Authorization" in request.headers:
            return None
        language = request.headers.get("Accept-Language", "")
        return (request.raw_path, accepts_gzip(request), language)

    def get(self, key: CacheKey) -> Rendered | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.generation != self._generation() or entry.expires <= time.monotonic():
            del self._entries[key]
            return None
        self._count("hit")
        return entry.rendered

    async def wait_for(self, key: CacheKey) -> Rendered | None:
        """The answer another request is computing for ``key`` (None: compute it yourself)."""
        pending = self._inflight.get(key)
        if pending is None:
            return None
        # Shielded: this request being cancelled must not cancel the others' wait.
        rendered = await asyncio.shield(pending)
        if rendered is not None:
            self._count("hit")
        return rendered

    def begin(self, key: CacheKey) -> int:
        """Note that this request computes ``key``; returns the generation it starts from."""
        self._inflight[key] = asyncio.get_running_loop().create_future()
        return self._generation()

    def end(self, key: CacheKey, generation: int, rendered: Rendered | None) -> None:
        """Store what was computed (if it may be kept) and wake the requests waiting for it."""
        pending = self._inflight.pop(key, None)
        kept = rendered is not None and self._keep(key, generation, rendered)
        self._count("miss" if kept else "pass")
        if pending is not None and not pending.done():
            pending.set_result(rendered if kept else None)

    def _keep(self, key: CacheKey, generation: int, rendered: Rendered) -> bool:
        if (
            rendered.status != 200
            or rendered.shareable_s < 1
            or len(rendered.body) > self.max_body_bytes
        ):
            return False
        if generation != self._generation():
            # The data changed while it was computed: good for the waiting requests (they
            # asked before the change), not for later ones.
            return True
        now = time.monotonic()
        if len(self._entries) >= self.max_entries:
            self._evict(now)
        ttl = min(self.ttl_s, rendered.shareable_s)
        self._entries[key] = _Entry(rendered, generation, now + ttl)
        return True

    def _evict(self, now: float) -> None:
        """Drop expired entries, or the oldest half when all are young (a flood of keys)."""
        expired = [k for k, e in self._entries.items() if e.expires <= now]
        if not expired:
            expired = list(self._entries)[: len(self._entries) // 2]
        for key in expired:
            del self._entries[key]

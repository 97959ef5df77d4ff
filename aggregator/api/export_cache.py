"""Finished CSV exports, kept so that a repeat or a revalidation does not build them again.

An export of the whole filtered set can be 16 MB and take most of a second to build and
compress (docs/BENCHMARKS.md); a spreadsheet's "refresh" and a client revalidating with
``If-None-Match`` ask for the same file again. This keeps the finished file (its bytes, their
gzip, its ETag and the licence terms of its rows) by what it depends on:

- the route and its canonical query (the query's pairs sorted: ``?a=1&b=2`` and
  ``?b=2&a=1`` are one export) and the negotiated language;
- the data: :meth:`Runtime.answer_generation` (a snapshot adopted or dropped, a configuration
  reload, a source changing state after a poll), checked on every lookup;
- the clock: an entry lives as long as the answer's ``Cache-Control: max-age`` (the sources'
  refresh interval), which already lets any shared cache in front keep the very same bytes
  that long. An answer no shared cache may keep (``no-cache``) is not kept here either.

Concurrent requests for one export build it once: the later ones wait for the first; at most
:data:`MAX_CONCURRENT_BUILDS` different exports are built at once, the others wait their turn.

What keeps it small whatever clients send: a byte budget (bodies, their gzip, the key) and an
entry count; the oldest entries leave first. An export larger than the budget is not kept.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.api.csv_export import Export

#: (route path, sorted query pairs, language, data generation).
ExportKey = tuple[str, tuple[tuple[str, str], ...], str, int]

#: The default budget: room for two of the largest exports (16 MB each, with their gzip).
MAX_BYTES = 40 * 1024 * 1024
MAX_ENTRIES = 64
#: At most this many exports built at once per process (the others wait their turn, off the
#: loop): each holds its file in memory while it is made, and each thread takes its share of
#: the interpreter lock from the loop.
MAX_CONCURRENT_BUILDS = 2


@dataclass(frozen=True, slots=True)
class _Entry:
    export: Export
    expires: float
    size: int


class ExportCache:
    """Finished exports by :data:`ExportKey`, each kept for its answer's ``max-age``."""

    def __init__(
        self,
        *,
        max_bytes: int = MAX_BYTES,
        max_entries: int = MAX_ENTRIES,
        max_concurrent_builds: int = MAX_CONCURRENT_BUILDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._generation: int | None = None
        self._inflight: dict[Hashable, asyncio.Future[Export]] = {}
        self._building = asyncio.Semaphore(max_concurrent_builds)
        #: Exports built, and answered from the cache (or from a concurrent build).
        self.builds = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    async def get_or_build(
        self, key: ExportKey, build: Callable[[], Awaitable[Export]], ttl_s: float
    ) -> Export:
        """The export of ``key``: kept, being built by another request, or built now."""
        if key[3] != self._generation:
            # New data: every kept export is of the old one (the generation is in the key).
            self._generation = key[3]
            self._entries.clear()
            self._bytes = 0
        self._drop_expired()
        entry = self._entries.get(key)
        if entry is not None and entry.expires > self._clock():
            self.hits += 1
            return entry.export
        pending = self._inflight.get(key)
        if pending is not None:
            self.hits += 1
        else:
            # A task of its own: a request going away (cancelled) does not cancel the build
            # the others wait for; the file is made and kept all the same.
            pending = self._inflight[key] = asyncio.ensure_future(self._build(key, build, ttl_s))
            # Retrieved here, so that a problem nobody waits for any more is not logged.
            pending.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(pending)

    async def _build(
        self, key: ExportKey, build: Callable[[], Awaitable[Export]], ttl_s: float
    ) -> Export:
        try:
            async with self._building:
                export = await build()
        finally:
            self._inflight.pop(key, None)
        self.builds += 1
        if ttl_s >= 1:
            self._keep(key, export, ttl_s)
        return export

    def _keep(self, key: ExportKey, export: Export, ttl_s: float) -> None:
        size = export.size + len(repr(key))
        if size > self.max_bytes or key[3] != self._generation:
            return  # too large, or of data replaced while it was built
        while self._entries and (
            self._bytes + size > self.max_bytes or len(self._entries) >= self.max_entries
        ):
            self._discard(next(iter(self._entries)))
        self._entries[key] = _Entry(export, self._clock() + ttl_s, size)
        self._bytes += size

    def _drop_expired(self) -> None:
        """The expired entries, from the oldest end (entries with a shorter life behind a
        longer one leave when the budget needs room; a lookup never answers them)."""
        now = self._clock()
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if oldest.expires > now:
                break
            self._discard(key)

    def _discard(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size


#: Per owner (a process's live data): its cache.
_caches: weakref.WeakKeyDictionary[Any, ExportCache] = weakref.WeakKeyDictionary()


def cache_of(owner: Any) -> ExportCache:
    """The export cache of ``owner`` (one process's live data), made on first use."""
    cache = _caches.get(owner)
    if cache is None:
        cache = _caches[owner] = ExportCache()
    return cache

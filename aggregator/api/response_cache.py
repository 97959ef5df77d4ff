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
  whether gzip is accepted, and the language ``Accept-Language`` negotiates among the
  configured ones (the ``Vary`` of our answers; the negotiated language, not the raw header,
  so a client sending endless variants of the header still lands on one of a few keys). CORS
  and security headers are added per request, after the cache, so ``Origin`` is not in the key;
- an entry is void as soon as the data changes (:attr:`LiveData.generation`: a snapshot
  adopted or dropped, an index swapped in, a configuration reload) or a poll changes a
  source's state (``Runtime.answer_generation``), not only when it expires. What it may miss
  for up to ``ttl_s`` is what changes with the clock alone: ``now`` on boards asked without
  ``at``, freshness ages, a source's data ageing past its limit between polls;
- concurrent misses of one key compute it once (the others wait for that answer).

What keeps it small, whatever clients send (the path and query are theirs to vary):

- a byte budget (``max_bytes``: bodies, keys, headers and a per-entry overhead) and a count
  (``max_entries``); the oldest entries leave first to make room;
- entries leave once expired, and all of them once the data changes, without waiting for the
  cache to fill: each lookup and each store drops the expired ones from the oldest end.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from aggregator.api.i18n import language_from_header
from aggregator.api.rendering import Rendered, accepts_gzip

#: (raw path with query, gzip accepted, negotiated language).
CacheKey = tuple[str, bool, str]

#: What an entry costs besides its body, key and header text (objects, dict slots), roughly:
#: so that a flood of tiny answers is bounded by the byte budget too.
ENTRY_OVERHEAD_BYTES = 600
#: Accept-Language values whose negotiation is remembered (the usual few, from browsers),
#: and the longest one remembered: a client's variants cannot grow this memo either.
_LANGUAGE_MEMO_ENTRIES = 256
_LANGUAGE_MEMO_MAX_HEADER = 200


@dataclass(frozen=True, slots=True)
class _Entry:
    rendered: Rendered
    generation: int
    expires: float
    size: int


class ResponseCache:
    """Rendered answers by request, valid for one data generation and ``ttl_s`` seconds."""

    def __init__(
        self,
        ttl_s: float,
        generation: Callable[[], int],
        *,
        languages: Sequence[str] = (),
        max_bytes: int = 32_000_000,
        max_entries: int = 4096,
        max_body_bytes: int = 512 * 1024,
        count: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self._generation = generation
        #: The configured answer languages (first: the default); none: answers in one language.
        self.languages = tuple(languages)
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.max_body_bytes = min(max_body_bytes, max_bytes)
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._bytes = 0
        self._seen_generation = generation()
        self._inflight: dict[CacheKey, asyncio.Future[Rendered | None]] = {}
        self._count = count or (lambda outcome: None)
        self._clock = clock
        self._language_memo: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """What the kept entries cost, as counted against ``max_bytes``."""
        return self._bytes

    def key_of(self, request: web.Request) -> CacheKey | None:
        """The request's key, None when its answer must not come from the cache."""
        if request.method != "GET" or "Authorization" in request.headers:
            return None
        return (request.raw_path, accepts_gzip(request), self._language(request))

    def _language(self, request: web.Request) -> str:
        if not self.languages:
            return ""
        header = request.headers.get("Accept-Language", "")
        language = self._language_memo.get(header)
        if language is None:
            language = language_from_header(header, self.languages)
            if len(header) <= _LANGUAGE_MEMO_MAX_HEADER:
                if len(self._language_memo) >= _LANGUAGE_MEMO_ENTRIES:
                    self._language_memo.clear()
                self._language_memo[header] = language
        return language

    def get(self, key: CacheKey) -> Rendered | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        if entry.generation != self._generation() or entry.expires <= now:
            self._drop_stale(now)
            self._discard(key)
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
        now = self._clock()
        self._drop_stale(now)
        self._discard(key)
        size = _size_of(key, rendered)
        if size > self.max_bytes:
            return False
        # Make room from the oldest end: the first to expire anyway.
        while self._entries and (
            self._bytes + size > self.max_bytes or len(self._entries) >= self.max_entries
        ):
            self._discard(next(iter(self._entries)))
        ttl = min(self.ttl_s, rendered.shareable_s)
        self._entries[key] = _Entry(rendered, generation, now + ttl, size)
        self._bytes += size
        return True

    def _drop_stale(self, now: float) -> None:
        """Everything when the data changed; else the expired entries at the oldest end.

        Entries are kept in the order they were stored and most live ``ttl_s``, so the
        expired ones are at the front; one with a shorter life behind a longer one waits at
        most ``ttl_s`` more (and is never answered: :meth:`get` checks each entry).
        """
        current = self._generation()
        if current != self._seen_generation:
            self._seen_generation = current
            self._entries.clear()
            self._bytes = 0
            return
        entries = self._entries
        while entries:
            key, oldest = next(iter(entries.items()))
            if oldest.expires > now:
                break
            self._discard(key)

    def _discard(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size


def _size_of(key: CacheKey, rendered: Rendered) -> int:
    headers = sum(len(name) + len(value) for name, value in rendered.headers.items())
    return len(rendered.body) + len(key[0]) + len(key[2]) + headers + ENTRY_OVERHEAD_BYTES

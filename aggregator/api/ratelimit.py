"""Rate limiting per client IP: a token bucket, shared through Redis when Redis is the store.

Each client may make ``burst`` requests at once, refilled at ``rate`` per second. Answers
carry ``RateLimit-Limit``/``RateLimit-Remaining``/``RateLimit-Reset`` and, when refused, a
``429`` problem with ``Retry-After``. Health and metrics endpoints are never limited. If Redis
does not answer, requests are let through (failing open keeps the app working).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from aggregator.api.problems import ApiError
from aggregator.config.models import RateLimitConfig

log = logging.getLogger(__name__)

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
#: Buckets kept in memory before the oldest idle ones are dropped.
MAX_BUCKETS = 100_000

_REDIS_BUCKET = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    tokens: float


class MemoryBuckets:
    """Buckets in this process (the memory store: one process serves everything)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, client: str) -> Decision:
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if len(self._buckets) >= MAX_BUCKETS and client not in self._buckets:
            self._buckets.pop(next(iter(self._buckets)))  # the oldest entry
        self._buckets[client] = (tokens, now)
        return Decision(allowed, tokens)


class RedisBuckets:
    """Buckets in Redis, so every API process counts the same client the same way."""

    def __init__(self, client: Any, prefix: str, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._prefix = prefix
        self._script = client.register_script(_REDIS_BUCKET)
        self._warned = False

    async def take(self, client: str) -> Decision:
        try:
            allowed, tokens = await self._script(
                keys=[f"{self._prefix}ratelimit:{client}"], args=[self.rate, self.burst]
            )
        except Exception as exc:
            if not self._warned:
                log.warning("rate limit: Redis does not answer (%s); letting requests through", exc)
                self._warned = True
            return Decision(True, float(self.burst))
        self._warned = False
        return Decision(bool(allowed), float(tokens))


Buckets = MemoryBuckets | RedisBuckets


def _client_address(request: web.Request, trust_forwarded: bool) -> str:
    if trust_forwarded:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote or "unknown"


class RateLimiter:
    """What the conventions middleware asks before each request (see ``Limiter``)."""

    def __init__(self, config: RateLimitConfig, buckets: Buckets) -> None:
        self._config = config
        self._buckets = buckets

    async def check(self, request: web.Request) -> dict[str, str]:
        """The RateLimit headers for this answer; raises a 429 problem when refused."""
        if request.path in EXEMPT or request.method == "OPTIONS":
            return {}
        buckets = self._buckets
        decision = await buckets.take(_client_address(request, self._config.trust_forwarded_for))
        headers = {
            "RateLimit-Limit": str(buckets.burst),
            "RateLimit-Remaining": str(int(decision.tokens)),
            "RateLimit-Reset": str(math.ceil((buckets.burst - decision.tokens) / buckets.rate)),
            "RateLimit-Policy": f"{buckets.burst};w={math.ceil(buckets.burst / buckets.rate)}",
        }
        if not decision.allowed:
            wait = math.ceil((1 - decision.tokens) / buckets.rate)
            raise ApiError(
                429,
                "Too many requests",
                f"this client made too many requests; retry in {wait}s",
                kind="rate-limited",
                headers={**headers, "Retry-After": str(wait)},
            )
        return headers


def client_key(request: web.Request, config: RateLimitConfig) -> str:
    """The address ``request``'s client is counted under, by the rate limiter and by anything
    else that bounds clients one by one (the live streams' per-client cap): one definition, so
    that both always agree on who a client is."""
    return _client_address(request, config.trust_forwarded_for)

"""Rate limiting per client IP: a token bucket, shared through Redis when Redis is the store.

Each client may make ``burst`` requests at once, refilled at ``rate`` per second. Answers
carry ``RateLimit-Limit``/``RateLimit-Remaining``/``RateLimit-Reset`` and, when refused, a
``429`` problem with ``Retry-After``. Health and metrics endpoints are never limited. If Redis
does not answer, requests are let through (failing open keeps the app working).

Who the client is: the peer's address, unless proxies are trusted. Behind proxies that append
to ``X-Forwarded-For``, only the entries they wrote are believed, counted from the right
(``trusted_proxies``) or recognised by network (``trusted_proxy_cidrs``), the way proxy-fix
middlewares do (werkzeug's ``ProxyFix``, uvicorn's ``forwarded_allow_ips``): anything left of
them the client wrote itself. Addresses are parsed and written back canonically, so a key is
at most an IPv6 address long and two spellings of one address are one client.

Buckets kept in memory are bounded: a bucket back to full (idle for ``burst / rate``) is the
same as none and leaves, and past ``max_buckets`` the least recently used ones leave.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from aggregator.api.problems import ApiError
from aggregator.config.models import RateLimitConfig

log = logging.getLogger(__name__)

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
#: Buckets kept in memory at most (about 200 bytes each) before the least recently used leave.
MAX_BUCKETS = 100_000
#: Idle buckets dropped per request at most (the sweep stays cheap on any one request).
_SWEEP_PER_TAKE = 8

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

    def __init__(self, rate: float, burst: int, *, max_buckets: int = MAX_BUCKETS) -> None:
        self.rate, self.burst = rate, burst
        self.max_buckets = max_buckets
        #: client -> (tokens, last use), least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, client: str) -> Decision:
        now = time.monotonic()
        buckets = self._buckets
        tokens, last = buckets.pop(client, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._drop_idle(now)
        while len(buckets) >= self.max_buckets:
            buckets.popitem(last=False)
        buckets[client] = (tokens, now)
        return Decision(allowed, tokens)

    def _drop_idle(self, now: float) -> None:
        """Buckets refilled to full since their last use: forgetting them changes nothing."""
        buckets = self._buckets
        for _ in range(_SWEEP_PER_TAKE):
            if not buckets:
                return
            client, (tokens, last) = next(iter(buckets.items()))
            if tokens + (now - last) * self.rate < self.burst:
                return
            del buckets[client]


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


@dataclass(frozen=True)
class ProxyTrust:
    """Which ``X-Forwarded-For`` entries to believe: the ``hops`` rightmost ones, or those
    written by proxies in ``networks``. Neither: the peer's address is the client."""

    hops: int = 0
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def of(cls, config: RateLimitConfig) -> ProxyTrust:
        return cls(config.proxy_hops, tuple(config.trusted_proxy_cidrs))

    def trusts(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.networks)


def client_address(request: web.Request, config: RateLimitConfig) -> str:
    """The client's address as the configured proxies (``server.rate_limit``) tell it: the one
    definition the rate limiter, the admin throttle and the streams' per-client cap all use."""
    return _client_address(request, ProxyTrust.of(config))


def _client_address(request: web.Request, trust: ProxyTrust) -> str:
    """The address identifying a request's client, canonical (a short, bounded key)."""
    peer = request.remote or "unknown"
    if not trust.hops and not trust.networks:
        return peer
    parsed_peer = _parse_address(peer)
    if parsed_peer is None:
        return peer  # not a TCP peer (a Unix socket): no address to go on
    forwarded = [
        entry.strip()
        for line in request.headers.getall("X-Forwarded-For", ())
        for entry in line.split(",")
    ]
    if trust.networks:
        return str(_first_untrusted(parsed_peer, forwarded, trust))
    if len(forwarded) < trust.hops:
        # Fewer entries than proxies: it did not come through them all; only the peer is sure.
        return str(parsed_peer)
    written = _parse_address(forwarded[-trust.hops])
    return str(written) if written is not None else str(parsed_peer)


def _first_untrusted(
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address, forwarded: list[str], trust: ProxyTrust
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """From the peer leftwards, the first address not of a trusted proxy (or the last one
    a trusted proxy wrote, when the chain is all proxies or an entry is not an address)."""
    current = peer
    for entry in reversed(forwarded):
        if not trust.trusts(current):
            return current
        written = _parse_address(entry)
        if written is None:
            return current
        current = written
    return current


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address, also as proxies may write it with a port (``1.2.3.4:5``, ``[::1]:5``);
    an IPv4 address mapped into IPv6 (``::ffff:1.2.3.4``) is that IPv4 address."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class RateLimiter:
    """What the conventions middleware asks before each request (see ``Limiter``)."""

    def __init__(self, config: RateLimitConfig, buckets: Buckets) -> None:
        self._config = config
        self._buckets = buckets
        self._trust = ProxyTrust.of(config)

    async def check(self, request: web.Request) -> dict[str, str]:
        """The RateLimit headers for this answer; raises a 429 problem when refused."""
        if request.path in EXEMPT or request.method == "OPTIONS":
            return {}
        buckets = self._buckets
        decision = await buckets.take(_client_address(request, self._trust))
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
                "rate_limited",
                fields={"wait": wait},
                kind="rate-limited",
                headers={**headers, "Retry-After": str(wait)},
            )
        return headers

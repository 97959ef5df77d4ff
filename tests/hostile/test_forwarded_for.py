"""A client cannot pick its own rate-limit bucket by writing ``X-Forwarded-For``.

Before: with ``trust_forwarded_for`` the limiter keyed on the leftmost entry, which the client
writes itself when its proxy appends to the header: 30 of 30 requests passed instead of 5.
Here the test client (on 127.0.0.1) plays the proxy: it sends what a proxy appending the real
client's address would forward.
"""

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from support import runtime_from

from aggregator.api.ratelimit import MemoryBuckets
from aggregator.config import ConfigError

from .stations_support import serve_stations, stations_yaml

BURST = 5
ATTEMPTS = 30


def config_yaml(url: str, trust: str) -> str:
    return stations_yaml(
        url, f"server:\n      rate_limit: {{enabled: true, rate: 0.01, burst: {BURST}, {trust}}}"
    )


async def serve(upstream, trust: str) -> TestClient:
    client, _ = await serve_stations(upstream, config_yaml(upstream.url("/stations.json"), trust))
    return client


async def passed(client: TestClient, forwarded: list[str | list[str]]) -> int:
    """How many requests, one per X-Forwarded-For value (a list: several header lines), got
    a 200; every other answer must be a 429."""
    count = 0
    for value in forwarded:
        lines = value if isinstance(value, list) else [value]
        headers = CIMultiDict(("X-Forwarded-For", line) for line in lines)
        status = (await client.get("/v1/sources", headers=headers)).status
        assert status in (200, 429), status
        count += status == 200
    return count


def forged(real_chain: str) -> list[str]:
    """Thirty requests from one client, each with a new forged address on the left."""
    return [f"10.{n}.{n}.{n}, {real_chain}" for n in range(ATTEMPTS)]


@pytest.mark.parametrize(
    ("trust", "real_chain"),
    [
        ("trusted_proxies: 1", "203.0.113.7"),
        ("trusted_proxies: 2", "203.0.113.7, 192.0.2.1"),
        ("trusted_proxy_cidrs: [127.0.0.0/8]", "203.0.113.7"),
        ("trusted_proxy_cidrs: [127.0.0.1/32, 192.0.2.0/24]", "203.0.113.7, 192.0.2.1"),
        ("trusted_proxy_cidrs: ['::1/128', 127.0.0.0/8, 10.0.0.0/8]", "203.0.113.7, 10.9.9.9"),
    ],
)
async def test_a_forged_leftmost_entry_does_not_escape_the_limit(upstream, trust, real_chain):
    """Whatever it writes on the left, the client is the address the trusted proxies saw;
    another client behind the same proxies still has its own burst."""
    client = await serve(upstream, trust)
    try:
        assert await passed(client, forged(real_chain)) == BURST
        neighbour = real_chain.replace("203.0.113.7", "203.0.113.99")
        assert await passed(client, [neighbour] * 8) == BURST
    finally:
        await client.close()


async def test_the_deprecated_option_now_means_one_proxy(upstream, caplog):
    """``trust_forwarded_for: true`` (the config the flaw was found with) is one proxy now,
    and says it is deprecated."""
    with caplog.at_level(logging.WARNING, logger="aggregator.config"):
        client = await serve(upstream, "trust_forwarded_for: true")
    try:
        assert await passed(client, forged("203.0.113.7")) == BURST
        assert any("trust_forwarded_for is deprecated" in r.getMessage() for r in caplog.records)
    finally:
        await client.close()


async def test_a_forged_header_line_of_its_own_does_not_count(upstream):
    """A client's own X-Forwarded-For line before the proxy's is part of the same list."""
    client = await serve(upstream, "trusted_proxies: 1")
    try:
        lines = [[f"10.0.0.{n}", "203.0.113.7"] for n in range(ATTEMPTS)]
        assert await passed(client, lines) == BURST
        assert await passed(client, [["10.0.0.1", "203.0.113.99"]] * 8) == BURST
    finally:
        await client.close()


async def test_a_peer_outside_the_trusted_networks_is_the_client(upstream):
    """A client reaching the server directly (not through a trusted proxy) is limited by its
    own address, whatever X-Forwarded-For it sends. (A guard on the networks rule itself: the
    code before it ignored the header here too.)"""
    client = await serve(upstream, "trusted_proxy_cidrs: [192.0.2.0/24]")
    try:
        rotating = [f"198.51.100.{n}" for n in range(ATTEMPTS)]
        assert await passed(client, rotating) == BURST
    finally:
        await client.close()


async def test_real_clients_behind_the_proxy_keep_their_own_buckets(upstream):
    """The limit is per real client: two clients behind the same proxy each get a burst, and
    garbage in the chain falls back to the proxy's own address instead of a client's choice."""
    client = await serve(upstream, "trusted_proxy_cidrs: [127.0.0.0/8, 192.0.2.0/24]")
    try:
        first = await passed(client, ["203.0.113.7, 192.0.2.1"] * 8)
        second = await passed(client, ["anything, 203.0.113.8:51234, 192.0.2.1"] * 8)
        garbage = await passed(client, [f"10.0.0.{n}, not-an-ip-{n}" for n in range(8)])
        assert (first, second, garbage) == (BURST, BURST, BURST)
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("trust", "named"),
    [
        ("trusted_proxies: 1, trusted_proxy_cidrs: [10.0.0.0/8]", "trusted_proxy_cidrs"),
        ("trust_forwarded_for: true, trusted_proxies: 2", "trusted_proxies"),
        ("trusted_proxy_cidrs: [10.0.0.0/33]", "trusted_proxy_cidrs"),
        ("trusted_proxies: -1", "trusted_proxies"),
    ],
)
def test_a_confusing_proxy_configuration_is_refused(trust, named):
    with pytest.raises(ConfigError, match=named):
        runtime_from(config_yaml("http://127.0.0.1:9/x.json", trust))


async def test_memory_buckets_stay_bounded_and_idle_ones_leave():
    """Buckets are client-keyed: past ``max_buckets`` the least recently used leave, and a
    bucket refilled to full is forgotten (it changes nothing)."""
    buckets = MemoryBuckets(rate=1000.0, burst=2, max_buckets=100)
    for n in range(1000):
        assert (await buckets.take(f"198.51.100.{n % 250}-{n}")).allowed
        assert len(buckets) <= 100
    await asyncio.sleep(0.05)  # 2 tokens refill in 2 ms at 1000/s: every bucket is idle
    for n in range(20):
        await buckets.take(f"192.0.2.{n}")
    assert len(buckets) < 100  # idle ones swept as new clients came
    slow = MemoryBuckets(rate=0.01, burst=2, max_buckets=100)
    results = [(await slow.take("203.0.113.7")).allowed for _ in range(3)]
    assert results == [True, True, False]  # a busy bucket is kept, not forgotten


async def test_proxy_hops_count_from_the_right():
    """One trusted proxy: the entry it appended (never the forged leftmost one); none: the
    peer; two: the entry before; more hops than entries: the peer."""
    from aiohttp import web

    from aggregator.api.ratelimit import ProxyTrust, _client_address

    async def addresses(request: web.Request) -> web.Response:
        trusts = [ProxyTrust(hops=1), ProxyTrust(), ProxyTrust(hops=2), ProxyTrust(hops=3)]
        return web.json_response([_client_address(request, trust) for trust in trusts])

    app = web.Application()
    app.router.add_get("/", addresses)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/", headers={"X-Forwarded-For": "10.6.6.6, 203.0.113.7"})
        assert await answer.json() == ["203.0.113.7", "127.0.0.1", "10.6.6.6", "127.0.0.1"]

"""Guessing the admin token is throttled per client, with no rate_limit section at all.

Before: a client could try tokens as fast as the server answered, unless the general rate
limit was on (and then at its full rate).
"""

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from aggregator.api.admin_throttle import AdminFailures

from .stations_support import serve_stations, stations_yaml

TOKEN = "the-right-admin-token-0123456789"
PATH = "/v1/admin/sources/stations"


def config_yaml(url: str, extra: str = "") -> str:
    return stations_yaml(url, f"server:\n      admin_token: {TOKEN}\n      {extra}")


async def serve(upstream, extra: str = "") -> TestClient:
    client, runtime = await serve_stations(
        upstream, config_yaml(upstream.url("/stations.json"), extra)
    )
    assert not runtime.config.server.rate_limit.enabled
    return client


def bearer(token: str, forwarded: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return headers


@pytest.fixture
async def client(upstream):
    test_client = await serve(upstream)
    yield test_client
    await test_client.close()


async def test_wrong_tokens_are_throttled_without_a_rate_limit(client):
    """Ten wrong guesses get 401; from then on 429 with Retry-After, on every admin route."""
    statuses = [(await client.get(PATH, headers=bearer(f"guess-{n}"))).status for n in range(40)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429] * 30
    refused = await client.post("/v1/admin/reload", headers=bearer("another-guess"))
    assert refused.status == 429
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    body = await refused.json()
    assert body["status"] == 429 and body["detail_code"] == "admin_throttled"


async def test_the_right_token_is_refused_too_while_throttled(client):
    """A right guess after the limit is answered like a wrong one: no oracle to go on with."""
    assert (await client.get(PATH, headers=bearer(TOKEN))).status == 200
    for n in range(10):
        assert (await client.get(PATH, headers=bearer(f"guess-{n}"))).status == 401
    assert (await client.get(PATH, headers=bearer(TOKEN))).status == 429
    # Public routes are not affected.
    assert (await client.get("/v1/sources")).status == 200


async def test_missing_and_malformed_credentials_count_as_failures(client):
    for headers in ({}, {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer"}):
        for _ in range(4):
            await client.get(PATH, headers=headers)
    assert (await client.get(PATH, headers=bearer(TOKEN))).status == 429


async def test_the_window_and_limit_are_configurable_and_the_window_ends(upstream):
    """``admin_max_failures: 3`` within ``admin_failure_window: 2s``: the fourth try is
    refused, and once the window has passed the right token works again."""
    # A window the four tries fit in however loaded the machine (300 ms could be overrun,
    # and the fourth try would then rightly be allowed).
    client = await serve(upstream, "admin_max_failures: 3\n      admin_failure_window: 2s")
    try:
        statuses = [(await client.get(PATH, headers=bearer("nope"))).status for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        await asyncio.sleep(2.2)
        assert (await client.get(PATH, headers=bearer(TOKEN))).status == 200
    finally:
        await client.close()


async def test_clients_are_told_apart_by_the_trusted_proxy(upstream):
    """Behind a trusted proxy each real client has its own count; a forged leftmost
    X-Forwarded-For entry does not give a new one."""
    client = await serve(upstream, "rate_limit: {trusted_proxies: 1}")
    try:
        for n in range(12):
            await client.get(PATH, headers=bearer("nope", f"10.0.0.{n}, 203.0.113.7"))
        locked = await client.get(PATH, headers=bearer(TOKEN, "10.9.9.9, 203.0.113.7"))
        assert locked.status == 429
        other = await client.get(PATH, headers=bearer(TOKEN, "203.0.113.8"))
        assert other.status == 200
    finally:
        await client.close()


def test_the_failure_counts_stay_bounded():
    """The counters are client-keyed: ended windows leave, and never more than max_clients."""
    now = [0.0]
    failures = AdminFailures(max_clients=50, clock=lambda: now[0])
    for n in range(500):
        failures.failed(f"198.51.100.{n}", window_s=60)
        assert len(failures) <= 50
    assert failures.retry_after("198.51.100.499", 1, 60) == 60
    now[0] = 61.0
    for n in range(10):
        failures.retry_after(f"192.0.2.{n}", 1, 60)
    assert len(failures) < 50
    assert failures.retry_after("198.51.100.499", 1, 60) is None

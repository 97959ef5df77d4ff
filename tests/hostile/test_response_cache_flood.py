"""A client varying what it sends cannot grow the response cache past its budget.

Before: the raw ``Accept-Language`` header was part of the cache key and entries left only
when the cache was full, so 4,000 requests with distinct headers for one big answer kept
4,000 copies of it (up to 4,096 x 512 KB, about 2 GB per process).
"""

import asyncio
import re
import time

import orjson
import pytest
from aiohttp.test_utils import TestClient
from support import runtime_from
from upstream_server import Reply

from aggregator.api.app import RESPONSE_CACHE_KEY
from aggregator.api.response_cache import ResponseCache

from .stations_support import serve_stations, stations_yaml

TOKEN = "flood-test-admin-token"
LANGUAGES = ("fr", "en")


def stations(count: int, label: str = "Gare") -> bytes:
    return orjson.dumps(
        [
            {"code": f"S{n:04d}", "nom": f"{label} {n} " + "x" * 60, "name_en": f"{label} EN {n}"}
            for n in range(count)
        ]
    )


def config_yaml(url: str, *, ttl: str = "10s", budget: str = "32MB") -> str:
    head = (
        f"server:\n      admin_token: {TOKEN}\n      response_cache_ttl: {ttl}\n"
        f"      response_cache_bytes: {budget}\n"
        f"    defaults:\n      languages: [{', '.join(LANGUAGES)}]"
    )
    return stations_yaml(
        url, head, "fields:\n          label: {translations: {fr: nom, en: name_en}}"
    )


async def serve(upstream, replies, **config: str) -> TestClient:
    yaml = config_yaml(upstream.url("/stations.json"), **config)
    client, _ = await serve_stations(upstream, yaml, replies)
    return client


def cache_of(client: TestClient) -> ResponseCache:
    return client.server.app[RESPONSE_CACHE_KEY]


async def misses(client: TestClient) -> float:
    text = await (await client.get("/metrics")).text()
    found = re.search(r'beffroi_response_cache_total\{outcome="miss"\} ([\d.e+]+)', text)
    return float(found.group(1)) if found else 0.0


def hostile_languages(count: int) -> list[str]:
    """Accept-Language values all different, some naming a language we serve, most not."""
    shapes = [
        "fr-FR,fr;q=0.{n},en;q=0.1",
        "en-x-{n},en;q=0.9",
        "zz-{n}",
        "de;q=0.{n}, *;q=0.5",
        "x{n}",
        "fr;q=1, en;q=0.{n}",
    ]
    return [shapes[n % len(shapes)].format(n=n + 1) for n in range(count)]


@pytest.fixture
async def big_answer(upstream):
    client = await serve(upstream, Reply(body=stations(600)))
    yield client
    await client.close()


async def test_distinct_accept_language_headers_share_the_negotiated_keys(big_answer):
    """600 distinct Accept-Language values for one URL: at most one entry (and one rendering)
    per language we serve, each answer in the language its header negotiates."""
    path = "/v1/sources/stations/records?limit=100"
    for n, header in enumerate(hostile_languages(600)):
        answer = await big_answer.get(path, headers={"Accept-Language": header})
        assert answer.status == 200
        expected = "en" if header.startswith("en") else "fr"
        assert answer.headers["Content-Language"] == expected, (n, header)
    assert len(cache_of(big_answer)) <= len(LANGUAGES)
    assert await misses(big_answer) <= len(LANGUAGES)


async def test_distinct_queries_stay_within_the_byte_budget(upstream):
    """Distinct query strings are distinct answers: they are kept, but never past the budget,
    the oldest leaving first; the newest one is still served from the cache."""
    budget = 100_000
    client = await serve(upstream, Reply(body=stations(600)), budget=f"{budget}B")
    try:
        cache = cache_of(client)
        sizes = []
        for limit in range(41, 101):
            answer = await client.get(
                f"/v1/sources/stations/records?limit={limit}",
                headers={"Accept-Encoding": "identity"},
            )
            assert answer.status == 200
            sizes.append(len(await answer.read()))
            assert 0 < cache.bytes <= budget
        assert sum(sizes) > 3 * budget  # the flood was well beyond the budget
        assert len(cache) < len(sizes)
        before = await misses(client)
        again = await client.get(
            "/v1/sources/stations/records?limit=100", headers={"Accept-Encoding": "identity"}
        )
        assert again.status == 200
        assert await misses(client) == before  # a hit
    finally:
        await client.close()


async def test_expired_entries_leave_without_a_full_cache(upstream):
    """Entries past their TTL leave at the next store, long before the cache fills."""
    client = await serve(upstream, Reply(body=stations(50)), ttl="1s")
    try:
        cache = cache_of(client)
        asked = []
        for limit in range(1, 21):
            asked.append(time.monotonic())
            assert (await client.get(f"/v1/sources/stations/records?limit={limit}")).status == 200
        # Kept while young: every entry asked for less than the TTL before the last store is
        # still there (all 20 but on a very loaded machine, where the loop may take longer).
        young = sum(at > time.monotonic() - 1.0 for at in asked)
        assert young >= 2
        assert len(cache) >= young
        await asyncio.sleep(1.2)  # every one of them is now past its 1 s
        assert (await client.get("/v1/sources/stations/records?limit=30")).status == 200
        assert len(cache) == 1
        kept = next(iter(cache._entries.values()))
        assert cache.bytes == kept.size
    finally:
        await client.close()


async def test_a_data_change_empties_the_cache(upstream):
    """A refresh with new data voids every entry at once, not each one when next asked."""
    client = await serve(upstream, [Reply(body=stations(50)), Reply(body=stations(50, "Mairie"))])
    try:
        cache = cache_of(client)
        for limit in range(1, 11):
            assert (await client.get(f"/v1/sources/stations/records?limit={limit}")).status == 200
        assert len(cache) == 10
        auth = {"Authorization": f"Bearer {TOKEN}"}
        refreshed = await client.post("/v1/admin/sources/stations/refresh", headers=auth)
        assert (await refreshed.json())["data"]["outcome"] == "changed"
        answer = await (await client.get("/v1/sources/stations/records?limit=1")).json()
        assert answer["data"][0]["label"].startswith("Mairie 0")
        assert len(cache) == 1
    finally:
        await client.close()


async def test_the_budget_is_checked_when_the_config_is_read():
    """A budget that is not a size is refused with the option named."""
    with pytest.raises(Exception, match="response_cache_bytes"):
        runtime_from(config_yaml("http://127.0.0.1:9/x.json", budget="lots"))

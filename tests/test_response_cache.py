"""The response micro-cache: the same public request is rendered once per second and data
generation, never across a data change, never for admin, streams or errors."""

import asyncio
import gzip
import re

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.api.rendering import Rendered
from aggregator.api.response_cache import ResponseCache

TOKEN = "cache-test-admin-token"


def rows(label: str, count: int = 40) -> bytes:
    return orjson.dumps(
        [
            {"code": f"S{n:03d}", "nom": f"{label} {n}", "name_en": f"{label} EN {n}"}
            for n in range(count)
        ]
    )


def config_yaml(url: str, ttl: str = "1s") -> str:
    return f"""
    server:
      admin_token: {TOKEN}
      response_cache_ttl: {ttl}
    defaults:
      languages: [fr, en]
    connectors:
      - id: stations
        type: json_records
        url: "{url}"
        refresh: 2m
        required: true
        retries: 0
        id_field: code
        fields:
          label: {{translations: {{fr: nom, en: name_en}}}}
    """


async def served(upstream, replies, ttl: str = "60s") -> TestClient:
    """A test server whose response cache keeps answers ``ttl``: by default long enough that
    no pause of a loaded machine between two requests turns an expected hit into a miss."""
    upstream.route("/stations.json", replies)
    runtime = runtime_from(config_yaml(upstream.url("/stations.json"), ttl))
    client = TestClient(TestServer(create_app(runtime)))
    await client.start_server()
    await eventually(lambda: runtime.live.snapshot("stations") is not None)
    return client


async def cache_counts(client: TestClient) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    found = re.findall(r'beffroi_response_cache_total\{outcome="(\w+)"\} ([\d.e+]+)', text)
    return {outcome: float(value) for outcome, value in found}


@pytest.fixture
async def client(upstream):
    test_client = await served(upstream, [Reply(body=rows("Gare")), Reply(body=rows("Mairie"))])
    yield test_client
    await test_client.close()


async def test_the_same_request_is_rendered_once(client):
    """Two identical requests: one rendering (same generated_at), counted as miss then hit."""
    first = await (await client.get("/v1/sources/stations/records?limit=3")).json()
    second = await (await client.get("/v1/sources/stations/records?limit=3")).json()
    assert first == second
    assert first["data"][0]["label"] == "Gare 0"
    counts = await cache_counts(client)
    assert counts["miss"] == 1 and counts["hit"] == 1


async def test_key_separates_query_language_and_encoding(client):
    """Another query, another language or gzip get their own answer, each right."""
    path = "/v1/sources/stations/records?limit=30"
    french = await client.get(path, headers={"Accept-Language": "fr"})
    english = await client.get(path, headers={"Accept-Language": "en"})
    assert (await french.json())["data"][0]["label"] == "Gare 0"
    assert (await english.json())["data"][0]["label"] == "Gare EN 0"
    assert english.headers["Content-Language"] == "en"
    fewer = await (await client.get("/v1/sources/stations/records?limit=2")).json()
    assert len(fewer["data"]) == 2
    for _ in range(2):
        raw = await client.get(path, headers={"Accept-Encoding": "identity"}, auto_decompress=False)
        assert "Content-Encoding" not in raw.headers
        assert len(orjson.loads(await raw.read())["data"]) == 30
        zipped = await client.get(path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert len(orjson.loads(gzip.decompress(await zipped.read()))["data"]) == 30


async def test_a_data_change_voids_the_cache_at_once(client):
    """A refresh bringing new data is visible on the very next request, TTL or not."""
    path = "/v1/sources/stations/records?limit=1"
    before = await (await client.get(path)).json()
    assert before["data"][0]["label"] == "Gare 0"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    refreshed = await (await client.post("/v1/admin/sources/stations/refresh", headers=auth)).json()
    assert refreshed["data"]["outcome"] == "changed"
    after = await (await client.get(path)).json()
    assert after["data"][0]["label"] == "Mairie 0"


async def test_etag_and_cors_on_cached_answers(client):
    """A cached answer keeps its ETag (304 on If-None-Match) and per-request CORS headers."""
    path = "/v1/sources/stations/records?limit=5"
    first = await client.get(path)
    etag = first.headers["ETag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag
    assert "Content-Type" not in again.headers
    other_origin = await client.get(path, headers={"Origin": "https://elsewhere.example"})
    assert other_origin.status == 200
    assert "Access-Control-Allow-Origin" not in other_origin.headers
    assert other_origin.headers["X-Content-Type-Options"] == "nosniff"


async def test_twenty_identical_requests_at_once_are_rendered_once(client):
    """Twenty requests for a new key at once: one rendering, the same answer for all."""
    path = "/v1/sources/stations/records?limit=7"
    answers = await asyncio.gather(*(client.get(path) for _ in range(20)))
    bodies = [await answer.json() for answer in answers]
    assert all(body == bodies[0] for body in bodies)
    counts = await cache_counts(client)
    assert counts["miss"] == 1 and counts["hit"] == 19


async def test_errors_admin_and_uncacheable_answers_are_not_kept(client):
    """A 400, an admin answer, health: rendered each time."""
    for _ in range(2):
        assert (await client.get("/v1/sources/stations/records?limit=0")).status == 400
        assert (await client.get("/healthz")).status == 200
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await client.get("/v1/admin/sources/stations", headers=auth)).status == 200
        # A public route asked with credentials is not served from (nor into) the cache.
        assert (await client.get("/v1/sources", headers=auth)).status == 200
    counts = await cache_counts(client)
    assert counts.get("hit", 0) == 0 and counts.get("miss", 0) == 0


async def test_entries_expire_after_the_ttl(upstream):
    """Past the TTL the answer is rendered again: two misses, no hit (generated_at, to the
    second, may not tell two renderings a quarter of a second apart)."""
    client = await served(upstream, Reply(body=rows("Gare")), ttl="100ms")
    try:
        path = "/v1/sources/stations/records?limit=1"
        first = await (await client.get(path)).json()
        await asyncio.sleep(0.25)
        second = await (await client.get(path)).json()
        assert first["data"] == second["data"]
        counts = await cache_counts(client)
        assert counts["miss"] == 2 and counts.get("hit", 0) == 0
    finally:
        await client.close()


async def test_off_when_the_ttl_is_null(upstream):
    client = await served(upstream, Reply(body=rows("Gare")), ttl="null")
    try:
        for _ in range(3):
            assert (await client.get("/v1/sources/stations/records?limit=1")).status == 200
        assert await cache_counts(client) == {}
    finally:
        await client.close()


def test_requests_waiting_for_a_key_get_its_one_rendering():
    """While one request renders a key, the others wait for that answer instead of rendering;
    when it cannot be kept (an error), each of them renders its own."""
    cache = ResponseCache(60, lambda: 0)

    async def race() -> None:
        key = ("/v1/x", False, "")
        generation = cache.begin(key)
        waiting = [asyncio.create_task(cache.wait_for(key)) for _ in range(5)]
        await asyncio.sleep(0)
        assert not any(task.done() for task in waiting)
        answer = Rendered(200, {}, b"{}", "etag", 60)
        cache.end(key, generation, answer)
        assert [await task for task in waiting] == [answer] * 5
        assert cache.get(key) is answer

        failed = ("/v1/y", False, "")
        generation = cache.begin(failed)
        waiter = asyncio.create_task(cache.wait_for(failed))
        await asyncio.sleep(0)
        cache.end(failed, generation, Rendered(400, {}, b"{}", None, 0))
        assert await waiter is None
        assert cache.get(failed) is None

    asyncio.run(race())


def test_the_cache_stays_bounded():
    """A flood of distinct keys never holds more than max_entries answers."""
    cache = ResponseCache(60, lambda: 0, max_entries=8, max_body_bytes=100)

    async def fill() -> None:
        answer = Rendered(200, {}, b"{}", "etag", 60)
        for n in range(50):
            key = (f"/v1/x?n={n}", False, "")
            cache.end(key, cache.begin(key), answer)
            assert len(cache) <= 8
        big = Rendered(200, {}, b"x" * 101, "etag", 60)
        cache.end(("/big", False, ""), 0, big)
        assert cache.get(("/big", False, "")) is None

    asyncio.run(fill())

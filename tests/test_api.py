"""The conventions every endpoint follows, checked on the core endpoints of a real server."""

import gzip

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app

STATIONS = orjson.dumps(
    [
        {
            "code": f"S{n:03d}",
            "nom": f"Station {n}",
            "name_en": f"Station number {n}",
            "places": n,
        }
        for n in range(1, 61)
    ]
)


def config_yaml(url: str, cors: str = '["https://app.example"]') -> str:
    return f"""
    server:
      cors_origins: {cors}
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
          places: {{path: places, type: int}}
    """


@pytest.fixture
async def client(upstream):
    upstream.route("/stations.json", Reply(body=STATIONS))
    runtime = runtime_from(config_yaml(upstream.url("/stations.json")))
    app = create_app(runtime)
    async with TestClient(TestServer(app)) as test_client:
        await eventually(lambda: runtime.live.snapshot("stations") is not None)
        test_client.runtime = runtime
        yield test_client


async def test_envelope_meta_and_cache_headers(client):
    """A JSON answer is {data, meta} with source freshness and a max-age from the refresh."""
    response = await client.get("/v1/sources/stations/records?limit=2")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "public, max-age=120"
    body = await response.json()
    assert [r["id"] for r in body["data"]] == ["stations:S001", "stations:S002"]
    assert body["meta"]["sources"]["stations"]["state"] == "ok"
    assert body["meta"]["sources"]["stations"]["stale"] is False
    assert "generated_at" in body["meta"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_etag_and_if_none_match_give_304(client):
    """The same data twice has the same ETag, and If-None-Match with it gets a bodiless 304."""
    first = await client.get("/v1/sources/stations/records")
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = await client.get("/v1/sources/stations/records")
    assert again.headers["ETag"] == etag
    cached = await client.get("/v1/sources/stations/records", headers={"If-None-Match": etag})
    assert cached.status == 304
    assert await cached.read() == b""
    other = await client.get(
        "/v1/sources/stations/records?limit=3", headers={"If-None-Match": etag}
    )
    assert other.status == 200


async def test_gzip_above_one_kilobyte_when_accepted(client):
    """Large bodies are gzipped for clients that accept it, and left plain otherwise."""
    zipped = await client.get(
        "/v1/sources/stations/records?limit=50",
        headers={"Accept-Encoding": "gzip"},
        auto_decompress=False,
    )
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    data = orjson.loads(gzip.decompress(await zipped.read()))
    assert len(data["data"]) == 50
    plain = await client.get(
        "/v1/sources/stations/records?limit=50",
        headers={"Accept-Encoding": "identity"},
        auto_decompress=False,
    )
    assert "Content-Encoding" not in plain.headers
    small = await client.get("/healthz", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert "Content-Encoding" not in small.headers


async def test_cors_preflight_and_exposed_etag(client):
    """An allowed origin's preflight is answered; ETag is exposed; other origins are refused."""
    preflight = await client.options(
        "/v1/sources",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "If-None-Match, Accept-Language",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "If-None-Match, Accept-Language"
    simple = await client.get("/v1/sources", headers={"Origin": "https://app.example"})
    assert simple.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "ETag" in simple.headers["Access-Control-Expose-Headers"]
    foreign = await client.options(
        "/v1/sources",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert foreign.status == 403
    assert "Access-Control-Allow-Origin" not in foreign.headers
    assert (
        "Access-Control-Allow-Origin"
        not in (await client.get("/v1/sources", headers={"Origin": "https://evil.example"})).headers
    )


@pytest.mark.parametrize(
    ("query", "parameter", "detail"),
    [
        ("limit=abc", "limit", "'abc' is not an integer"),
        ("limit=0", "limit", "must be between 1 and 100, got 0"),
        ("limt=5", "limt", "unknown parameter; did you mean 'limit'?"),
        ("lang=xx", "lang", "'xx' is not one of: fr, en"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor", "is not a cursor this server issued"),
    ],
)
async def test_bad_parameters_are_problem_json_naming_the_parameter(
    client, query, parameter, detail
):
    """Each bad query parameter is a 400 problem+json that names it and says why."""
    english = {"Accept-Language": "en"}
    response = await client.get(f"/v1/sources/stations/records?{query}", headers=english)
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = await response.json(content_type=None)
    assert problem["status"] == 400
    (error,) = problem["errors"]
    assert (error["parameter"], error["detail"], error["detail_language"]) == (
        parameter,
        detail,
        "en",
    )
    assert error["code"] == problem["detail_code"]
    assert problem["detail"] == f"{parameter}: {detail}"


async def test_unknown_route_and_source_are_404_problems(client):
    """An unknown path and an unknown source id are 404 problem documents."""
    for path in ("/v1/nope", "/v1/sources/nope"):
        response = await client.get(path)
        assert response.status == 404
        assert response.headers["Content-Type"] == "application/problem+json"
        problem = await response.json(content_type=None)
        # The config's default language is fr: the title is French, the code is stable.
        assert (problem["code"], problem["title"]) == ("not_found", "Introuvable")


async def test_wrong_method_is_405_with_allow(client):
    """A POST on a read-only endpoint is a 405 problem listing the allowed methods."""
    response = await client.post("/v1/sources", data=b"{}")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    assert response.headers["Content-Type"] == "application/problem+json"


async def test_cursor_pagination_walks_every_record_once(client):
    """Following next_cursor visits all 60 records once, in id order, then stops."""
    seen, cursor = [], None
    while True:
        query = "limit=25" + (f"&cursor={cursor}" if cursor else "")
        body = await (await client.get(f"/v1/sources/stations/records?{query}")).json()
        seen += [r["id"] for r in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 60


async def test_altered_cursor_is_rejected(client):
    """A cursor with one character changed is a 400, never another position."""
    body = await (await client.get("/v1/sources/stations/records?limit=5")).json()
    cursor = body["meta"]["next_cursor"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    response = await client.get(f"/v1/sources/stations/records?limit=5&cursor={tampered}")
    assert response.status == 400


async def test_language_negotiation(client):
    """?lang= wins over Accept-Language; the answer says its language and varies on it."""
    english = await client.get(
        "/v1/sources/stations/records?limit=1", headers={"Accept-Language": "en-GB,en;q=0.9"}
    )
    assert (await english.json())["data"][0]["label"] == "Station number 1"
    assert english.headers["Content-Language"] == "en"
    assert "Accept-Language" in english.headers["Vary"]
    french = await client.get(
        "/v1/sources/stations/records?limit=1&lang=fr", headers={"Accept-Language": "en"}
    )
    assert (await french.json())["data"][0]["label"] == "Station 1"
    default = await client.get(
        "/v1/sources/stations/records?limit=1", headers={"Accept-Language": "de"}
    )
    assert default.headers["Content-Language"] == "fr"


async def test_sources_status_and_metrics(client):
    """/v1/sources reports the poll; /metrics exposes per-source and per-route figures."""
    body = await (await client.get("/v1/sources/stations")).json()
    assert body["data"]["state"] == "ok"
    assert body["data"]["record_count"] == 60
    assert body["data"]["last_error"] is None
    await client.get("/v1/sources")
    metrics = await (await client.get("/metrics")).text()
    assert 'beffroi_source_records{source="stations"} 60.0' in metrics
    assert 'beffroi_source_last_success_timestamp_seconds{source="stations"}' in metrics
    assert 'beffroi_source_poll_duration_seconds_count{source="stations"}' in metrics
    assert 'route="/v1/sources",status="2xx"' in metrics


async def test_health_and_readiness(client):
    """healthz answers alive; readyz is ready once the required source has loaded."""
    health = await client.get("/healthz")
    assert health.status == 200
    assert health.headers["Cache-Control"] == "no-store"
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["data"]["status"] == "ready"


async def test_readiness_waits_for_required_sources(upstream):
    """Until a required source has loaded, readyz is a 503 that says which one."""
    upstream.route("/stations.json", Reply(status=500))
    runtime = runtime_from(config_yaml(upstream.url("/stations.json")))
    async with TestClient(TestServer(create_app(runtime))) as client:
        await eventually(lambda: runtime.statuses["stations"].consecutive_failures >= 1)
        response = await client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["data"]["reasons"] == [
            "required source stations has not loaded yet"
        ]
        source = await (await client.get("/v1/sources/stations")).json()
        assert source["data"]["state"] == "failing"


async def test_rate_limit_answers_429_with_retry_after(upstream):
    """Past its burst a client gets 429 problem+json with Retry-After; health is never limited."""
    upstream.route("/stations.json", Reply(body=STATIONS))
    # A token every 100 s: no pause of a loaded machine between the requests refills one.
    yaml = config_yaml(upstream.url("/stations.json")).replace(
        "server:\n", "server:\n      rate_limit: {enabled: true, rate: 0.01, burst: 2}\n"
    )
    runtime = runtime_from(yaml)
    async with TestClient(TestServer(create_app(runtime))) as client:
        first = await client.get("/v1/sources")
        assert first.status == 200
        assert first.headers["RateLimit-Limit"] == "2"
        assert first.headers["RateLimit-Remaining"] == "1"
        assert (await client.get("/v1/sources")).status == 200
        refused = await client.get("/v1/sources")
        assert refused.status == 429
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await client.get("/healthz")).status == 200

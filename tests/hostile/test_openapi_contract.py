"""The API description is a contract a client may build on: a request /v1/openapi.json says is
valid is not refused, and a refused one is not described as valid.

Each former failure of schemathesis (``st run --checks all`` against the demo app) is replayed
here with its exact request; the rules OpenAPI 3.1 cannot state (between parameters, or between
the items of one) stay as strict xfails, so the day they become expressible they are noticed.
The document is also served like every other large answer: gzipped when asked, with an ETag.
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema_rs
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from

from aggregator.api.app import create_app
from aggregator.api.params import MAX_WINDOW_S, window_seconds
from aggregator.api.schemas import window_duration
from aggregator.reload import apply_config
from aggregator.runtime import Runtime
from connectors.gtfs_rt.routes import BBOX

#: One source of each kind whose parameters name sources; never polled: parameters are checked
#: before any data is looked at.
CONFIG = """
defaults:
  timezone: Europe/Paris
  languages: [fr, en]
connectors:
  - id: caltrain
    type: gtfs
    url: https://transit.example/caltrain.zip
  - id: caltrain-rt
    type: gtfs_rt
    feed: caltrain
    urls: [https://transit.example/trip-updates.pb]
  - id: lovelo
    type: gbfs
    files:
      station_information: https://bikes.example/station_information.json
      station_status: https://bikes.example/station_status.json
  - id: relais
    type: parkings
    url: https://parkings.example/relais.json
    id_field: libelle
  - id: council
    type: ics
    channel: agenda
    url: https://mairie.example/council.ics
"""

#: "AA" then subtags up to the 512 characters the old pattern allowed (the fuzzer's value).
LONG_TAG = "AA" + "_00000000" * 56


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient, Runtime]]:
    runtime = runtime_from(CONFIG)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        yield client, runtime


async def document_of(client: TestClient) -> dict[str, Any]:
    response = await client.get("/v1/openapi.json")
    assert response.status == 200
    return orjson.loads(await response.read())


def schema_accepts(document: dict[str, Any], template: str, query: list[tuple[str, str]]) -> bool:
    """Whether the document's parameters admit this query string (as schemathesis reads it:
    a value is valid if its string, integer, number or boolean reading fits the schema)."""
    operation = document["paths"][template]["get"]
    declared = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    names = {name for name, _ in query}
    if not names <= declared.keys():
        return False
    if any(p["required"] and name not in names for name, p in declared.items()):
        return False
    return all(_value_fits(declared[name]["schema"], value) for name, value in query)


def _value_fits(schema: dict[str, Any], raw: str) -> bool:
    validator = jsonschema_rs.validator_for(schema)
    readings: list[Any] = [raw]
    for read in (int, float):
        try:
            number = read(raw)
        except ValueError:
            continue
        if math.isfinite(number):
            readings.append(number)
    if raw in ("true", "false"):
        readings.append(raw == "true")
    return any(validator.is_valid(reading) for reading in readings)


async def server_accepts(client: TestClient, url: str) -> bool:
    """Not refused for its parameters (a 404 for an unknown id is an answer, not a refusal)."""
    response = await client.get(url)
    assert response.status < 500, await response.text()
    return response.status != 400


def row(name: str, template: str, url: str) -> Any:
    return pytest.param(template, url, id=name)


def cross_parameter(name: str, template: str, url: str, rule: str) -> Any:
    reason = f"SCHEMA TOO LOOSE (a rule OpenAPI 3.1 cannot state): {rule}"
    return pytest.param(template, url, id=name, marks=pytest.mark.xfail(strict=True, reason=reason))


#: The twelve requests schemathesis found valid by the document and refused by the server,
#: exactly as it sent them (the two long lang values and the bbox are rebuilt: the report cut
#: them), then the ones the cross-parameter rules still leave, then valid neighbours.
CASES = [
    row(
        "agenda-lang-AA",
        "/v1/agenda",
        "/v1/agenda?from=2000-01-01T00%3A00%3A00Z&to=2000-01-01T00%3A00%3A00Z&q=0&category=0"
        "&lat=-90&lon=-180&radius=1&accessibility=hearing&free=true&source=0&sort=start"
        "&limit=20&cursor=0&lang=AA",
    ),
    row(
        "alerts-lang-AA",
        "/v1/alerts",
        "/v1/alerts?line=0%3A0&active_at=2000-01-01T00%3A00%3A00Z&lang=AA",
    ),
    row("bikes-source-0", "/v1/bikes/stations", "/v1/bikes/stations?lat=-90&lon=-180&source=0"),
    row(
        "departures-duration-0-feed-0",
        "/v1/departures",
        "/v1/departures?lat=-90&lon=-180&radius=400&per_stop=5&at=2000-01-01T00%3A00%3A00Z"
        "&duration=0&lines=%3A0&include_cancelled=true&feed=0",
    ),
    row(
        "events-lang-AA",
        "/v1/events",
        "/v1/events?from=2000-01-01T00%3A00%3A00Z&to=2000-01-01T00%3A00%3A00Z&q=0&category=0"
        "&lat=-90&lon=-180&radius=1&accessibility=hearing&free=true&source=0&sort=start"
        "&limit=20&cursor=0&lang=AA&channel=events",
    ),
    row("event-long-lang", "/v1/events/{event_id}", f"/v1/events/0%3A0?lang={LONG_TAG}"),
    row("home-long-lang", "/v1/home", f"/v1/home?lat=-90&lon=-180&lang={LONG_TAG}"),
    row("lines-feed-0", "/v1/lines", "/v1/lines?feed=0"),
    row("parkings-source-0", "/v1/parkings", "/v1/parkings?lat=-90&lon=-180&source=0"),
    row(
        "stops-feed-0",
        "/v1/stops",
        "/v1/stops?q=0&lat=-90&lon=-180&limit=20&feed=0&format=json",
    ),
    row(
        "vehicles-bbox-unicode-blanks-and-exponents",
        "/v1/vehicles",
        "/v1/vehicles?format=geojson&bbox=%E2%80%83.8E%2B2782%1F%E2%80%83%C2%A0%0C"
        "%2C-3700.5538%0D%2C%1C%09%E2%80%A9%2B7883339215E%2B05756017%E2%80%8A"
        "%2C%2B3%0B%E2%80%87",
    ),
    row("vehicles-bbox-unicode-blank", "/v1/vehicles", "/v1/vehicles?bbox=%E2%80%831,2,3,4"),
    cross_parameter(
        "categories-lat-without-lon",
        "/v1/categories",
        "/v1/categories?from=2000-01-01T00%3A00%3A00Z&category=0&lat=-90"
        "&accessibility=hearing&free=true&channel=events",
        "lat and lon go together",
    ),
    cross_parameter(
        "events-to-not-after-from",
        "/v1/events",
        "/v1/events?from=2000-01-01T00%3A00%3A00Z&to=2000-01-01T00%3A00%3A00Z&lang=FR",
        "to must be after from, by at most 366 days",
    ),
    cross_parameter(
        "stops-lat-without-lon",
        "/v1/stops",
        "/v1/stops?lat=-90&limit=20&feed=caltrain&format=json",
        "q, lat and lon, or commune is required, and lat and lon go together",
    ),
    cross_parameter(
        "vehicles-bbox-south-above-north",
        "/v1/vehicles",
        "/v1/vehicles?format=json&bbox=-9.1773%2C-0.85903%2C179.610%2C-90",
        "bbox needs west <= east and south <= north",
    ),
    row("lang-FR", "/v1/alerts", "/v1/alerts?lang=FR"),
    row("lang-fr-BE", "/v1/events/{event_id}", "/v1/events/council%3Ax?lang=fr-BE"),
    row("feed-configured", "/v1/lines", "/v1/lines?feed=caltrain"),
    row("source-configured", "/v1/parkings", "/v1/parkings?lat=50.6&lon=3.1&source=relais"),
    row(
        "bike-source-configured",
        "/v1/bikes/stations",
        "/v1/bikes/stations?lat=0&lon=0&source=lovelo",
    ),
    row("duration-seconds", "/v1/departures", "/v1/departures?lat=0&lon=0&duration=5400"),
    row("duration-hours-minutes", "/v1/departures", "/v1/departures?lat=0&lon=0&duration=1h30m"),
    row("duration-one-day", "/v1/departures", "/v1/departures?lat=0&lon=0&duration=1d"),
    row("bbox-plain", "/v1/vehicles", "/v1/vehicles?bbox=-180,-90.0,180,90"),
]


@pytest.mark.parametrize(("template", "url"), CASES)
async def test_the_document_and_the_server_agree_on_the_request(
    served: tuple[TestClient, Runtime], template: str, url: str
) -> None:
    """Valid by /v1/openapi.json exactly when the server does not refuse it with a 400."""
    client, _runtime = served
    document = await document_of(client)
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    described = schema_accepts(document, template, query)
    accepted = await server_accepts(client, url)
    assert described == accepted, f"document says valid={described}, server accepted={accepted}"


def test_every_duration_the_document_describes_is_accepted() -> None:
    """The duration schema's forms (finitely many) are all in the server's 1m-24h: walked
    over a superset of each form, nothing the pattern admits is refused."""
    schema = window_duration(MAX_WINDOW_S)
    seconds, spelled = schema["anyOf"]
    pattern = re.compile(spelled["pattern"])
    candidates = [f"{m}m" for m in range(0, 2000)] + [f"{d}d" for d in range(0, 5)]
    candidates += [f"{h}h" for h in range(0, 40)]
    candidates += [f"{h}h{m}m" for h in range(0, 40) for m in range(0, 100)]
    admitted = [c for c in candidates if pattern.fullmatch(c)]
    assert len(admitted) == 1440 + 24 + 23 * 60 + 1
    for value in admitted:
        assert 60 <= window_seconds(value) <= MAX_WINDOW_S, value
    for value in range(seconds["minimum"], seconds["maximum"] + 1, 7):
        window_seconds(str(value))  # raises BadParameter if refused


def test_the_bbox_pattern_bounds_each_coordinate() -> None:
    """What the bbox pattern admits, float() reads within the degrees; out of range is not."""
    for west in ("-180", "-179.999", "0", "12.5", "180", "180.000"):
        assert BBOX.fullmatch(f"{west},-90,180,90.0"), west
    for bad in ("180.001", "181", "1e2", "+1", " 1", "1\u2003", "01", "-", "1.", ".5", "NaN"):
        assert not BBOX.fullmatch(f"{bad},0,0,0"), bad
        assert not BBOX.fullmatch(f"0,{bad},0,0"), bad


async def test_the_document_lists_the_sources_after_a_reload(
    served: tuple[TestClient, Runtime],
) -> None:
    """feed= names the configured GTFS sources: a reload adding one changes the document
    (and its ETag), so it never describes a deployment that is gone."""
    client, runtime = served
    before = await client.get("/v1/openapi.json")
    assert _feed_enum(orjson.loads(await before.read())) == ["caltrain"]
    added = CONFIG + "  - id: stq\n    type: gtfs\n    url: https://transit.example/stq.zip\n"
    await apply_config(runtime, runtime_from(added).config)
    after = await client.get("/v1/openapi.json")
    assert _feed_enum(orjson.loads(await after.read())) == ["caltrain", "stq"]
    assert after.headers["ETag"] != before.headers["ETag"]
    assert (await client.get("/v1/lines?feed=stq")).status == 200


def _feed_enum(document: dict[str, Any]) -> list[str]:
    parameters = document["paths"]["/v1/lines"]["get"]["parameters"]
    return next(p["schema"]["enum"] for p in parameters if p["name"] == "feed")


async def test_the_document_is_gzipped_when_asked() -> None:
    """131 KB of JSON: Accept-Encoding: gzip gets the compressed bytes, like other answers."""
    runtime = runtime_from(CONFIG)
    server = TestServer(create_app(runtime, poll=False))
    async with TestClient(server, auto_decompress=False) as client:
        plain = await client.get("/v1/openapi.json", headers={"Accept-Encoding": "identity"})
        plain_body = await plain.read()
        assert "Content-Encoding" not in plain.headers
        zipped = await client.get("/v1/openapi.json", headers={"Accept-Encoding": "gzip, br"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in zipped.headers["Vary"]
        body = await zipped.read()
        assert len(body) < len(plain_body) / 4
        assert gzip.decompress(body) == plain_body


async def test_the_document_has_an_etag_and_a_304(served: tuple[TestClient, Runtime]) -> None:
    """The ETag is stable between requests; If-None-Match with it gets a 304 without a body."""
    client, _runtime = served
    first = await client.get("/v1/openapi.json")
    etag = first.headers["ETag"]
    second = await client.get("/v1/openapi.json")
    assert second.headers["ETag"] == etag
    again = await client.get("/v1/openapi.json", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    other = await client.get("/v1/openapi.json", headers={"If-None-Match": 'W/"something-else"'})
    assert other.status == 200

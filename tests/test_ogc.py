"""OGC API - Features on the demo's real data, read by a real OGC client (OWSLib's
``owslib.ogcapi.features.Features``) from a real server on 127.0.0.1; every GeoJSON answer is
checked with the ``geojson`` package (RFC 7946)."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import geojson
import orjson
import pytest
from fuzz.live import DEMO_CONFIG, LiveServer, demo_data_dir
from owslib.ogcapi.features import Features

FIXTURES = Path(__file__).parent / "fixtures"
#: The demo's sources, plus its GBFS bike share (config/demo.yaml has it too) and a car park
#: source (a handmade file shaped like Lille's park-and-ride set, tests/fixtures/bikes), so
#: each kind of collection is there; two licences, as a deployment declares them.
CONFIG = (
    DEMO_CONFIG.replace(
        "    export_url: file:openagenda-paris-events-ods-v1.json\n",
        "    export_url: file:openagenda-paris-events-ods-v1.json\n    licence: etalab-2.0\n",
    )
    + """
  - id: lovelo-bikes
    type: gbfs
    licence: ODbL-1.0
    files:
      station_information: file:lovelo-station-information.json
      station_status: file:lovelo-station-status.json
  - id: relais
    type: parkings
    url: file:parkings-relais-ods-v1-handmade.json
    id_field: libelle
    fields:
      name: nom
      city: commune
      capacity: capacite
      free_spaces: nbplacesdispo
      state: etat
      last_updated: datemiseajour
    values:
      state: {OUVERT: open, FERME: closed, COMPLET: full}
"""
)
COLLECTIONS = {
    "caltrain": "stops",
    "stq": "stops",
    "lovelo-bikes": "bike_stations",
    "relais": "parkings",
    "niort-pharmacies": "places",
    "paris-events": "events",
    "machbar": "events",
    "council": "events",
}
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
#: Boxes that cut each collection (not all of it, not none of it).
CUTS = {
    "caltrain": [-122.5, 37.4, -122.1, 37.8],  # the Peninsula's north half
    "lovelo-bikes": [1.08, 49.43, 1.11, 49.45],  # central Rouen
    "niort-pharmacies": [-0.47, 46.31, -0.44, 46.33],  # central Niort
    "paris-events": [2.25, 48.8, 2.35, 48.9],  # western Paris
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = demo_data_dir(tmp_path_factory.mktemp("ogc-data"))
    shutil.copy(FIXTURES / "bikes" / "parkings-relais-ods-v1-handmade.json", data)
    live = LiveServer(data, CONFIG).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def ogc(server: LiveServer) -> Features:
    return Features(server.base_url + "/ogc")


def valid(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` once the geojson package finds it valid RFC 7946."""
    parsed = geojson.GeoJSON.to_instance(document, strict=True)
    assert parsed.is_valid, parsed.errors()
    features = document["features"] if document["type"] == "FeatureCollection" else [document]
    for feature in features:
        lon, lat = feature["geometry"]["coordinates"]
        assert -180 <= lon <= 180 and -90 <= lat <= 90, feature["id"]
        assert isinstance(feature["id"], str) and feature["properties"]["id"] == feature["id"]
    return document


def get(server: LiveServer, path: str, language: str = "en") -> tuple[int, str, Any]:
    request = urllib.request.Request(server.base_url + path, headers={"Accept-Language": language})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers["Content-Type"], orjson.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], orjson.loads(error.read())


def link(document: dict[str, Any], rel: str) -> dict[str, str] | None:
    found = [each for each in document["links"] if each["rel"] == rel]
    assert len(found) <= 1, found
    return found[0] if found else None


def query_of(href: str) -> dict[str, Any]:
    """A link's query as OWSLib's ``collection_items`` takes it (bbox as a list)."""
    query: dict[str, Any] = dict(parse_qsl(urlsplit(href).query))
    if "bbox" in query:
        query["bbox"] = query["bbox"].split(",")
    return query


def inside(feature: dict[str, Any], box: list[float]) -> bool:
    lon, lat = feature["geometry"]["coordinates"]
    west, south, east, north = box
    across = lon >= west or lon <= east  # west > east: the box crosses the antimeridian
    return south <= lat <= north and (west <= lon <= east if west <= east else across)


def test_the_landing_page_conformance_and_collections_through_owslib(ogc: Features) -> None:
    rels = {each["rel"]: each for each in ogc.links}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert all(each["type"] and each["title"] for each in ogc.links)
    assert rels["service-desc"]["href"].endswith("/v1/openapi.json")
    assert set(ogc.conformance()["conformsTo"]) == {CORE, GEOJSON}
    assert sorted(ogc.feature_collections()) == sorted(COLLECTIONS)
    listed = {c["id"]: c for c in ogc.collections()["collections"]}
    for collection_id, kind in COLLECTIONS.items():
        collection = ogc.collection(collection_id)
        assert collection["kind"] == kind == listed[collection_id]["kind"]
        assert collection["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
        assert link(collection, "items")["type"] == "application/geo+json"
    # Licences come from each source's configuration.
    assert link(ogc.collection("paris-events"), "license")["href"] == (
        "https://spdx.org/licenses/etalab-2.0.html"
    )
    assert link(ogc.collection("lovelo-bikes"), "license")["title"] == "ODbL-1.0"
    assert link(ogc.collection("caltrain"), "license") is None  # none configured here


def test_extents_hold_every_feature(ogc: Features) -> None:
    """The spatial extent is the data's own box; the events' temporal extent spans them."""
    for collection_id in ("caltrain", "lovelo-bikes", "relais", "niort-pharmacies"):
        [box] = ogc.collection(collection_id)["extent"]["spatial"]["bbox"]
        everything = valid(ogc.collection_items(collection_id, limit=1000))
        assert everything["numberReturned"] == everything["numberMatched"] > 0
        points = [f["geometry"]["coordinates"] for f in everything["features"]]
        assert box == [
            min(p[0] for p in points),
            min(p[1] for p in points),
            max(p[0] for p in points),
            max(p[1] for p in points),
        ]
    temporal = ogc.collection("paris-events")["extent"]["temporal"]
    [[first, last]] = temporal["interval"]
    events = valid(ogc.collection_items("paris-events", limit=1000))["features"]
    starts = [datetime.fromisoformat(f["properties"]["start"]) for f in events]
    assert datetime.fromisoformat(first) == min(starts)
    assert datetime.fromisoformat(last) >= max(starts)


@pytest.mark.parametrize("collection_id", sorted(CUTS))
def test_pages_through_a_box_following_next_then_prev(ogc: Features, collection_id: str) -> None:
    """limit=7 pages inside a box, next links to the end: every feature in the box once, as
    many as numberMatched; prev links walk back to the first page."""
    box = CUTS[collection_id]
    everything = valid(ogc.collection_items(collection_id, limit=1000))["features"]
    expected = [f["id"] for f in everything if inside(f, box)]
    assert 7 < len(expected) < len(everything), "the box should cut the collection"
    pages = [valid(ogc.collection_items(collection_id, bbox=box, limit=7))]
    assert link(pages[0], "prev") is None
    while (following := link(pages[-1], "next")) is not None:
        assert following["type"] == "application/geo+json"
        pages.append(valid(ogc.collection_items(collection_id, **query_of(following["href"]))))
    seen = [f["id"] for page in pages for f in page["features"]]
    assert seen == expected  # in the collection's order, none twice, none missed
    assert all(page["numberMatched"] == len(expected) for page in pages)
    assert [page["numberReturned"] for page in pages] == [len(p["features"]) for p in pages]
    assert all(page["numberReturned"] <= 7 for page in pages)
    assert all(datetime.fromisoformat(page["timeStamp"]) for page in pages)
    back = [pages[-1]]
    while (previous := link(back[-1], "prev")) is not None:
        back.append(valid(ogc.collection_items(collection_id, **query_of(previous["href"]))))
    assert [[f["id"] for f in p["features"]] for p in reversed(back)] == [
        [f["id"] for f in p["features"]] for p in pages
    ]


def test_a_box_across_the_antimeridian(ogc: Features) -> None:
    """west > east: from west eastwards over the antimeridian to east (the standard's rule)."""
    box = [-122.3, -90.0, -122.5, 90.0]
    everything = valid(ogc.collection_items("caltrain", limit=1000))["features"]
    answer = valid(ogc.collection_items("caltrain", bbox=box, limit=1000))
    assert [f["id"] for f in answer["features"]] == [f["id"] for f in everything if inside(f, box)]
    assert 0 < answer["numberMatched"] < len(everything)


def test_datetime_selects_the_events_under_way(ogc: Features) -> None:
    everything = valid(ogc.collection_items("paris-events", limit=1000))["features"]
    instant = "2025-04-12T18:30:00+02:00"
    moment = datetime.fromisoformat(instant)
    under_way = [
        f["id"]
        for f in everything
        if datetime.fromisoformat(f["properties"]["start"])
        <= moment
        <= datetime.fromisoformat(f["properties"]["end"] or f["properties"]["start"])
    ]
    answer = valid(ogc.collection_items("paris-events", datetime_=instant, limit=1000))
    assert [f["id"] for f in answer["features"]] == under_way and under_way
    since = valid(
        ogc.collection_items("paris-events", datetime_="2025-06-01T00:00:00Z/..", limit=1000)
    )
    assert 0 < since["numberMatched"] < len(everything)
    for feature in since["features"]:
        end = feature["properties"]["end"] or feature["properties"]["start"]
        assert datetime.fromisoformat(end) >= datetime.fromisoformat("2025-06-01T00:00:00+00:00")
    # Stops have no time: datetime does not select among them.
    stops = ogc.collection_items("caltrain", datetime_=instant, limit=1000)
    assert stops["numberMatched"] == ogc.collection_items("caltrain", limit=1)["numberMatched"]


def test_a_limit_above_the_maximum_is_served_as_the_maximum(ogc: Features) -> None:
    answer = valid(ogc.collection_items("paris-events", limit=5000))
    assert answer["numberReturned"] == answer["numberMatched"] <= 1000
    assert link(answer, "next") is None
    default = valid(ogc.collection_items("paris-events"))
    assert default["numberReturned"] == 10 and link(default, "next") is not None


@pytest.mark.parametrize("collection_id", sorted(COLLECTIONS))
def test_one_feature_is_the_one_listed(ogc: Features, collection_id: str) -> None:
    listed = valid(ogc.collection_items(collection_id, limit=3))["features"]
    if collection_id in ("machbar", "council"):  # their calendars give no coordinates
        assert listed == []
        return
    for feature in listed:
        one = valid(ogc.collection_item(collection_id, feature["id"]))
        assert one["geometry"] == feature["geometry"]
        assert one["properties"] == feature["properties"]
        assert link(one, "self")["type"] == "application/geo+json"
        assert link(one, "collection")["href"].endswith(f"/ogc/collections/{collection_id}")


BAD = [
    ("/ogc/collections/caltrain/items?bbox=1,2,3", 400, "ogc_bbox_form"),
    ("/ogc/collections/caltrain/items?bbox=0,50,1,40", 400, "bbox_south_north"),
    ("/ogc/collections/caltrain/items?bbox=0,0,181,1", 400, "ogc_bbox_form"),
    ("/ogc/collections/caltrain/items?limit=0", 400, "out_of_range"),
    ("/ogc/collections/caltrain/items?limit=ten", 400, "not_an_integer"),
    ("/ogc/collections/caltrain/items?limit=10001", 400, "out_of_range"),
    ("/ogc/collections/paris-events/items?datetime=yesterday", 400, "not_a_datetime"),
    (
        "/ogc/collections/paris-events/items?datetime=2025-02-01/2025-01-01",
        400,
        "datetime_interval",
    ),
    ("/ogc/collections/paris-events/items?datetime=../..", 400, "datetime_interval"),
    ("/ogc/collections/paris-events/items?datetime=2025/2026/2027", 400, "datetime_form"),
    ("/ogc/collections/caltrain/items?f=html", 400, "not_one_of"),
    ("/ogc/collections/caltrain/items?bbox-crs=x", 400, "unknown_parameter"),
    ("/ogc/collections/caltrain/items?cursor=AAAA", 400, "cursor_unknown"),
    ("/ogc/collections/nowhere", 404, "no_collection"),
    ("/ogc/collections/nowhere/items", 404, "no_collection"),
    ("/ogc/collections/caltrain/items/caltrain:nowhere", 404, "no_feature"),
    ("/ogc/collections/stq/items/caltrain:70011", 404, "no_feature"),
]


@pytest.mark.parametrize(("path", "status", "code"), BAD)
def test_bad_requests_are_problems_in_both_languages(
    server: LiveServer, path: str, status: int, code: str
) -> None:
    details = set()
    for language in ("fr", "en"):
        answered, media, problem = get(server, path, language)
        assert (answered, media) == (status, "application/problem+json"), problem
        assert problem["detail_code"] == code and problem["detail_language"] == language
        details.add(problem["detail"])
    assert len(details) == 2  # a text in each language


def test_the_json_encoding_asked_the_ogc_way_is_served(server: LiveServer) -> None:
    """GDAL's OAPIF driver and QGIS, written against pygeoapi and ldproxy, add f=json."""

    def content(answer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in answer.items() if k not in ("links", "timeStamp", "meta")}

    for path in ("/ogc", "/ogc/collections", "/ogc/collections/caltrain/items?limit=2"):
        plain_status, _media, plain = get(server, path)
        status, _media, answer = get(server, path + ("&" if "?" in path else "?") + "f=json")
        assert (status, plain_status) == (200, 200) and content(answer) == content(plain)
        assert content(answer)


def test_a_cursor_is_refused_on_another_query(ogc: Features, server: LiveServer) -> None:
    first = ogc.collection_items("caltrain", limit=2)
    cursor = query_of(link(first, "next")["href"])["cursor"]
    status, _media, problem = get(
        server, f"/ogc/collections/caltrain/items?limit=2&bbox=-123,37,-121,38&cursor={cursor}"
    )
    assert status == 400 and problem["detail_code"] == "cursor_other_query"


PLACES_ONLY = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
clock: {fixed: "2023-11-07T17:06:00-08:00"}
server: {response_cache_ttl: 30s}
connectors:
  - id: niort-pharmacies
    type: places
    url: file:niort-pharmacies-osm.geojson
    format: geojson
    id_field: "@id"
    category: pharmacy
    fields: {name: name}
"""


@pytest.mark.parametrize("public_url", [None, "https://data.example.org"])
async def test_links_follow_the_address_asked_unless_a_public_url_is_set(public_url) -> None:
    """Without catalog.public_url the links are built on the Host asked at: the micro-cache
    (on by default) must not serve one host's links to another; with it, they are its."""
    from aiohttp.test_utils import TestClient, TestServer
    from support import runtime_from

    from aggregator.api.app import create_app

    config = PLACES_ONLY + (f"catalog: {{public_url: '{public_url}'}}\n" if public_url else "")
    runtime = runtime_from(config, base_dir=Path(__file__).parents[1] / "config" / "demo-data")
    assert (await runtime.poll_once("niort-pharmacies")).outcome == "changed"
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        for host in ("a.example", "b.example", "a.example"):
            for path in ("/ogc", "/ogc/collections", "/ogc/collections/niort-pharmacies/items"):
                answer = await client.get(path, headers={"Host": host})
                assert answer.status == 200
                body = await answer.json(content_type=None)
                expected = public_url or f"http://{host}"
                assert link(body, "self")["href"].startswith(f"{expected}/ogc"), (host, path)
                shared = answer.headers["Cache-Control"] != "public, max-age=0"
                assert shared == (public_url is not None), answer.headers["Cache-Control"]

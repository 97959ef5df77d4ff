"""The places connector type and /v1/places, on real OSM pharmacies and Overpass/CSV shapes."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from bikes.helpers import runtime_from

from aggregator.api.app import create_app
from connectors.places.connector import PlacesConnector

from .helpers import FIXTURES

CONFIG = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
clock: {fixed: "2025-07-15T10:00:00+02:00"}
connectors:
  - id: niort
    type: places
    url: file:niort-pharmacies-osm.geojson
    id_field: "@id"
    category: pharmacy
    fields: {name: name, opening_hours: opening_hours, phone: phone, city: "addr:city"}
  - id: lille
    type: places
    url: file:lille-places-overpass-handmade.json
    format: overpass
    home_categories: [town_hall, pharmacy]
  - id: mairies
    type: places
    url: file:places-handmade.csv
    format: csv
    id_field: code
    fields: {name: nom, category: type, opening_hours: horaires, lat: lat, lon: lon, phone: tel}
    values:
      category: {MAIRIE: town_hall, PISCINE: swimming_pool}
"""
TOWN_HALL = (50.6311, 3.0580)
NIORT = (46.3235, -0.4588)


@pytest.fixture
async def runtime():
    runtime = runtime_from(CONFIG, base_dir=FIXTURES)
    for source in ("niort", "lille", "mairies"):
        assert (await runtime.poll_once(source)).outcome == "changed", source
    return runtime


@pytest.fixture
async def client(runtime):
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def get_json(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


def test_the_type_is_registered_through_its_entry_point():
    from support import CONNECTOR_TYPES

    assert CONNECTOR_TYPES["places"] is PlacesConnector


async def test_overpass_nodes_and_ways_with_centre_nearest_first(client, runtime):
    """Nodes and ways (at their centre) come nearest first with OSM's categories; a way
    without centre is reported, an untagged member node is no place."""
    lat, lon = TOWN_HALL
    body = await get_json(client, f"/v1/places?lat={lat}&lon={lon}&radius=2000&source=lille")
    ids = [p["id"] for p in body["data"]]
    assert ids[0] == "lille:node/101" and "lille:way/202" in ids
    assert "lille:node/1" not in ids and "lille:way/505" not in ids
    hall = body["data"][0]
    assert hall["category"] == "town_hall" and hall["distance_m"] == 0.0
    assert hall["accessibility"] == {"wheelchair": "yes"}
    assert hall["contact"]["phone"] == "+33 3 20 49 50 00"
    assert hall["open_now"] is True  # Tuesday 10:00
    assert hall["next_change"] == {"at": "2025-07-15T17:00:00+02:00", "state": "closed"}
    issues = runtime.statuses["lille"].issue_samples
    assert any("way/505" in issue and "no position" in issue for issue in issues)


async def test_unparseable_hours_are_kept_as_text_and_reported(client, runtime):
    """The Niort pharmacies write "09:00-12:15 / 14:15-19:00": kept as text, never guessed,
    reported with the feature's id."""
    lat, lon = NIORT
    body = await get_json(client, f"/v1/places?lat={lat}&lon={lon}&radius=20000&limit=100")
    by_id = {p["id"]: p for p in body["data"]}
    slashed = by_id["niort:node/6290892159"]
    assert slashed["opening_hours"]["parsed"] is False
    assert slashed["opening_hours"]["raw"].startswith("Mo 14:00-19:00, Tu-Fr 09:00-12:15 /")
    assert slashed["open_now"] is None and slashed["next_change"] is None
    fine = next(
        p
        for p in body["data"]
        if p["opening_hours"] and p["opening_hours"]["raw"] == "Mo-Sa 08:30-20:00"
    )
    assert fine["opening_hours"]["parsed"] is True and fine["open_now"] is True
    issues = runtime.statuses["niort"].issue_samples
    assert any("node/6290892159" in issue and "does not parse" in issue for issue in issues)


async def test_open_now_category_and_accent_insensitive_text(client):
    lat, lon = TOWN_HALL
    base = f"/v1/places?lat={lat}&lon={lon}&radius=3000"
    found = await get_json(client, base + "&q=mediatheque%20LEVY")
    assert [p["id"] for p in found["data"]] == ["lille:way/202"]
    pools = await get_json(client, base + "&category=swimming_pool,library")
    assert {p["category"] for p in pools["data"]} == {"swimming_pool", "library"}
    # Monday 14 July, Fête nationale, 10:00: the town hall (PH off) and the library (Mo off)
    # are closed; the recycling centre opens on holidays in the morning.
    at = "2025-07-14T10:00:00%2B02:00"
    open_ones = await get_json(client, base + f"&open_at={at}&source=lille")
    assert {p["id"] for p in open_ones["data"]} == {"lille:node/303", "lille:node/606"}


async def test_cursor_pages_follow_the_distance_order(client):
    lat, lon = NIORT
    path = f"/v1/places?lat={lat}&lon={lon}&radius=20000&limit=5&source=niort"
    seen, cursor = [], None
    while True:
        body = await get_json(client, path + (f"&cursor={cursor}" if cursor else ""))
        seen += [(p["distance_m"], p["id"]) for p in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 33 and seen == sorted(seen)


async def test_place_detail_has_the_week_with_holidays_marked(client):
    body = await get_json(client, "/v1/places/lille:node/606?lang=fr")
    place = body["data"]
    week = place["week"]
    assert len(week) == 7 and week[0]["date"] == "2025-07-15"
    # From Tuesday 15 July: no holiday that week; the 14th is past.
    assert all(day["holiday"] is None for day in week)
    holiday = await get_json(
        client, "/v1/places/lille:node/606?lang=fr&at=2025-07-14T08:00:00%2B02:00"
    )
    monday = holiday["data"]["week"][0]
    assert monday["holiday"] == "Fête nationale"
    assert monday["intervals"] == [
        {
            "start": "2025-07-14T09:00:00+02:00",
            "end": "2025-07-14T12:00:00+02:00",
            "state": "open",
            "comment": None,
        }
    ]


async def test_csv_source_values_map_and_bad_parameters(client, runtime):
    body = await get_json(client, "/v1/places?source=mairies")
    assert [(p["id"], p["category"]) for p in body["data"]] == [
        ("mairies:M1", "town_hall"),
        ("mairies:P1", "swimming_pool"),
    ]
    assert body["data"][0]["distance_m"] is None
    assert any("'X1'" in issue for issue in runtime.statuses["mairies"].issue_samples)
    for query, parameter in (
        ("category=castle", "category"),
        ("lat=50.6", "lon"),
        ("open_now=true&open_at=2025-07-14T10:00:00%2B02:00", "open_at"),
        ("colour=red", "colour"),
        ("radius=500", "radius"),
    ):
        problem = await get_json(client, f"/v1/places?{query}", status=400)
        assert problem["errors"][0]["parameter"] == parameter, query
    await get_json(client, "/v1/places/lille:node/999", status=404)


async def test_geojson_and_etag(client):
    lat, lon = TOWN_HALL
    path = f"/v1/places?lat={lat}&lon={lon}&format=geojson&limit=1"
    response = await client.get(path)
    body = await response.json(content_type=None)
    assert body["features"][0]["geometry"]["coordinates"] == [3.058, 50.6311]
    again = await client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_home_shows_the_nearest_open_places_of_the_listed_categories(client):
    """Tuesday 10:00 by the town hall: the town hall, the 24/7 pharmacy and the district
    town hall (another source) are open; the library (open too) is not a category the
    operator listed for the home screen."""
    lat, lon = TOWN_HALL
    body = await get_json(client, f"/v1/home?lat={lat}&lon={lon}")
    part = body["data"]["places"]
    assert [p["id"] for p in part["items"]] == ["lille:node/101", "lille:node/303", "mairies:M1"]
    assert part["unavailable"] is None
    far = await get_json(client, "/v1/home?lat=0&lon=0")
    assert far["data"]["places"]["items"] == []
    assert far["data"]["places"]["unavailable"]["code"] == "empty"
    assert far["data"]["places"]["reason"]["code"] == "empty"


async def test_home_places_part_without_listed_categories_says_no_source():
    runtime = runtime_from(
        CONFIG.replace("    home_categories: [town_hall, pharmacy]\n", ""), base_dir=FIXTURES
    )
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        body = await get_json(client, "/v1/home?lat=50.6&lon=3.0")
    part = body["data"]["places"]
    assert part["items"] == []
    assert part["reason"]["code"] == part["unavailable"]["code"] == "no_source"
    assert part["reason"]["sources"] == []

"""The transit endpoints on the bundled real feeds (Caltrain 2023, Québec ferries 2026)."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from

from aggregator.api.app import create_app

CONFIG_DIR = Path(__file__).parents[1] / "config"
FEEDS = """
defaults:
  timezone: America/Los_Angeles
  allow_file_urls: true
clock:
  fixed: 2023-11-07T17:05:00-08:00
connectors:
  - id: caltrain
    type: gtfs
    url: file:demo-data/caltrain-2023-11.gtfs.zip
  - id: stq
    type: gtfs
    url: file:demo-data/stq-ferries-2026.gtfs.zip
"""


@pytest.fixture
async def client():
    runtime = runtime_from(FEEDS, base_dir=CONFIG_DIR)
    for source_id in runtime.connectors:
        assert (await runtime.poll_once(source_id)).outcome == "changed"
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def get_json(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


async def test_stop_search_ignores_accents_case_and_small_words(client):
    """'gare fluviale levis' finds 'Gare fluviale de Lévis' with the line that serves it."""
    body = await get_json(client, "/v1/stops?q=gare%20fluviale%20levis")
    first = body["data"][0]
    assert first["id"] == "stq:LEV"
    assert first["name"] == "Gare fluviale de Lévis"
    assert [line["id"] for line in first["lines"]] == ["stq:quebec"]
    assert body["meta"]["sources"]["stq"]["state"] == "ok"


async def test_stops_near_a_point_nearest_first_with_distance(client):
    """Stops around Palo Alto station come nearest first with their distance in metres."""
    body = await get_json(client, "/v1/stops?lat=37.4434&lon=-122.1652&radius=1500")
    distances = [stop["distance_m"] for stop in body["data"]]
    assert distances == sorted(distances) and distances
    assert body["data"][0]["name"].startswith("Palo Alto")
    assert all(d <= 1500 for d in distances)


async def test_stops_as_geojson_put_longitude_first(client):
    """format=geojson answers an RFC 7946 FeatureCollection with [lon, lat] points."""
    response = await client.get("/v1/stops?q=levis&format=geojson")
    assert response.headers["Content-Type"].startswith("application/geo+json")
    body = await response.json(content_type=None)
    assert body["type"] == "FeatureCollection"
    feature = body["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [-71.18824, 46.810658]}
    assert "sources" in body["meta"]


async def test_stop_detail_lists_platforms_and_lines(client):
    """A station lists its platforms (children) and every line calling at them."""
    body = await get_json(client, "/v1/stops/caltrain:san_francisco")
    stop = body["data"]
    assert stop["location_type"] == "station"
    assert {p["parent_station"] for p in stop["platforms"]} == {"caltrain:san_francisco"}
    assert len(stop["platforms"]) >= 2
    assert "caltrain:L1" in [line["id"] for line in stop["lines"]]


async def test_line_detail_has_directions_with_ordered_stops(client):
    """A line shows each direction with its stops in riding order."""
    lines = await get_json(client, "/v1/lines?feed=caltrain")
    assert {line["mode"] for line in lines["data"]} == {"rail", "bus"}  # a bus bridge too
    rail = await get_json(client, "/v1/lines?feed=caltrain&mode=rail")
    assert rail["data"] and {line["mode"] for line in rail["data"]} == {"rail"}
    body = await get_json(client, "/v1/lines/caltrain:L1")
    directions = body["data"]["directions"]
    assert {d["direction_id"] for d in directions} == {0, 1}
    southbound = next(d for d in directions if d["direction_id"] == 1)
    names = [s["name"] for s in southbound["stops"]]
    assert names[0].startswith("San Francisco")
    assert body["data"]["color"] == "#C5C5C5"


async def test_departures_sorted_in_local_time_with_service_date(client):
    """The next departures at San Francisco come in time order with the agency's offset."""
    body = await get_json(client, "/v1/stops/caltrain:san_francisco/departures?limit=5&duration=2h")
    departures = body["data"]["departures"]
    times = [d["scheduled_time"] for d in departures]
    assert times == sorted(times) and len(times) == 5
    assert times[0] == "2023-11-07T17:10:00-08:00"
    assert all(d["service_date"] == "2023-11-07" for d in departures)
    assert body["data"]["explanation"] is None
    assert body["meta"]["now"] == "2023-11-07T17:05:00-08:00"
    assert departures[0]["realtime"] is False and departures[0]["status"] == "scheduled"


async def test_departures_filtered_by_line_and_grouped(client):
    """lines= keeps only those lines; group=line_direction gives the next per line and way."""
    body = await get_json(
        client, "/v1/stops/caltrain:san_francisco/departures?lines=caltrain:L1&limit=10"
    )
    assert {d["line"]["id"] for d in body["data"]["departures"]} == {"caltrain:L1"}
    grouped = await get_json(
        client, "/v1/stops/caltrain:san_francisco/departures?group=line_direction&per_group=2"
    )
    groups = grouped["data"]["groups"]
    assert groups and all(1 <= len(g["departures"]) <= 2 for g in groups)
    assert len({(g["line"]["id"], g["direction_id"]) for g in groups}) == len(groups)


async def test_empty_board_says_why(client):
    """A board on a date the feed does not cover explains itself instead of being blank."""
    body = await get_json(client, "/v1/stops/stq:LEV/departures")
    assert body["data"]["departures"] == []
    assert body["data"]["explanation"]["code"] == "outside_feed_validity"
    inside = await get_json(client, "/v1/stops/stq:LEV/departures?at=2026-03-02T08:00:00-05:00")
    assert inside["data"]["departures"]


async def test_nearby_boards_nearest_first(client):
    """Boards around a point come nearest first, stations standing for their platforms."""
    body = await get_json(client, "/v1/departures?lat=37.7764&lon=-122.3949&radius=800")
    boards = body["data"]
    assert boards[0]["stop"]["id"] == "caltrain:san_francisco"
    assert boards[0]["departures"]
    distances = [b["stop"]["distance_m"] for b in boards]
    assert distances == sorted(distances)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/stops", "lat"),
        ("/v1/stops?lat=95&lon=2", "lat"),
        ("/v1/stops?lat=50.6", "lon"),
        ("/v1/stops?q=gare&feed=nope", "feed"),
        ("/v1/stops/caltrain:san_francisco/departures?at=tomorrow", "at"),
        ("/v1/stops/caltrain:san_francisco/departures?duration=3d", "duration"),
        ("/v1/stops/caltrain:san_francisco/departures?lines=L1", "lines"),
        ("/v1/departures?lat=37.7", "lon"),
        # Where no stop is, a malformed line is refused all the same (Schemathesis found it).
        ("/v1/departures?lat=60.94&lon=96.79&lines=L1", "lines"),
    ],
)
async def test_bad_transit_parameters_are_named(client, path, parameter):
    """Each bad transit parameter is a 400 naming it."""
    body = await get_json(client, path, status=400)
    assert body["errors"][0]["parameter"] == parameter


async def test_unknown_stop_and_line_are_404(client):
    """Unknown or malformed ids are 404 problems."""
    for path in (
        "/v1/stops/caltrain:nope",
        "/v1/stops/nofeed",
        "/v1/lines/stq:nope",
        "/v1/stops/nope:x/departures",
    ):
        body = await get_json(client, path, status=404)
        assert body["status"] == 404

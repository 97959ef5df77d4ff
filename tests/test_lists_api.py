"""Lists an app can page through, on the demo's real data: every list pages with
``meta.next_cursor`` and counts with ``meta.total``, one maximum ``limit`` everywhere, a short
departure board says its window and how to widen it, instants to the second everywhere."""

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from

from aggregator.api.app import create_app
from aggregator.api.pagination import MAX_LIMIT

CONFIG_DIR = Path(__file__).parents[1] / "config"
ROUEN = "lat=49.4432&lon=1.0999"
SAN_FRANCISCO = "lat=37.7764&lon=-122.3949"

#: Every list of the demo, with the filters that make it non-empty.
LISTS = [
    "/v1/stops?q=san",
    f"/v1/stops?{SAN_FRANCISCO}&radius=5000",
    f"/v1/bikes/stations?{ROUEN}&radius=2000",
    "/v1/vehicles",
    "/v1/events?from=2019-01-01T00:00:00%2B01:00&to=2019-12-31T00:00:00%2B01:00",
    "/v1/sources/lovelo-stations/records",
]
#: Lists the demo holds nothing in at its instant (its alerts capture has none active).
EMPTY_LISTS = ["/v1/alerts"]


@pytest.fixture
async def client():
    """The demo configuration, every source loaded once, no polling."""
    runtime = runtime_from((CONFIG_DIR / "demo.yaml").read_text(), base_dir=CONFIG_DIR)
    for source_id in runtime.connectors:
        assert (await runtime.poll_once(source_id)).outcome == "changed", source_id
    await runtime.live.settled()  # the event index is built in the background
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def get_json(client, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, (path, await response.text())
    return await response.json(content_type=None)


def joined(path: str, extra: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{extra}"


@pytest.mark.parametrize("path", LISTS)
async def test_every_list_pages_with_a_cursor_and_counts(client, path):
    """Pages of 2 walked with ``meta.next_cursor`` give the whole list once, in order, and
    ``meta.total`` counts it (stops, bike stations, alerts and vehicles had neither)."""
    whole = await get_json(client, joined(path, f"limit={MAX_LIMIT}"))
    ids = [item["id"] for item in whole["data"]]
    assert len(ids) >= 3, path  # enough to need two pages of 2
    if "total" in whole["meta"]:
        assert whole["meta"]["total"] == len(ids) or whole["meta"]["next_cursor"], path
    walked: list[str] = []
    cursor = None
    for _ in range(100):
        page = await get_json(
            client, joined(path, "limit=2" + (f"&cursor={cursor}" if cursor else ""))
        )
        assert "next_cursor" in page["meta"], path
        assert len(page["data"]) <= 2
        walked += [item["id"] for item in page["data"]]
        cursor = page["meta"]["next_cursor"]
        if cursor is None:
            break
    assert walked[: len(ids)] == ids, path
    assert len(walked) == len(set(walked)), path
    assert page["meta"].get("total", len(walked)) == len(walked), path


@pytest.mark.parametrize("path", LISTS)
async def test_a_cursor_of_another_query_is_refused(client, path):
    """A cursor only means something for the filters it was issued for."""
    first = await get_json(client, joined(path, "limit=1"))
    cursor = first["meta"]["next_cursor"]
    assert cursor, path
    other = await client.get(f"/v1/vehicles?line=caltrain:nothing&cursor={cursor}")
    assert other.status == 400
    problem = await other.json(content_type=None)
    assert [e["parameter"] for e in problem["errors"]] == ["cursor"]


@pytest.mark.parametrize(
    "path",
    [
        *LISTS,
        *EMPTY_LISTS,
        "/v1/stops/caltrain:san_francisco/departures",
        f"/v1/parkings?{ROUEN}",
        "/v1/agenda",
    ],
)
async def test_one_maximum_limit_everywhere(client, path):
    """``limit`` above the one maximum is a 400 naming it, on every list (records allowed
    500, stops 100, alerts and vehicles had no limit at all)."""
    assert (await client.get(joined(path, f"limit={MAX_LIMIT}"))).status == 200, path
    response = await client.get(joined(path, f"limit={MAX_LIMIT + 1}&lang=en"))
    assert response.status == 400, path
    problem = await response.json(content_type=None)
    assert problem["errors"] == [
        {
            "parameter": "limit",
            "code": "out_of_range",
            "detail": f"must be between 1 and {MAX_LIMIT}, got {MAX_LIMIT + 1}",
            "detail_language": "en",
        }
    ], path


async def test_a_board_shorter_than_asked_says_its_window_and_how_to_widen_it(client):
    """Asked for 10 departures, San Francisco's board holds fewer in its default hour: meta
    says the window it looked at and, in the asked language, which parameter widens it."""
    path = "/v1/stops/caltrain:san_francisco/departures?limit=10"
    short = await get_json(client, path + "&lang=fr")
    assert 0 < len(short["data"]["departures"]) < 10
    window = short["meta"]["window"]
    assert window["duration_s"] == 3600
    assert window["start"] == "2023-11-07T17:06:00-08:00"
    assert window["end"] == "2023-11-07T18:06:00-08:00"
    hint = short["meta"]["hint"]
    assert (hint["code"], hint["parameter"]) == ("widen_window", "duration")
    assert "duration" in hint["message"] and "période" in hint["message"]
    english = await get_json(client, path + "&lang=en")
    assert "window" in english["meta"]["hint"]["message"]

    wide = await get_json(client, path + "&duration=6h")
    assert len(wide["data"]["departures"]) == 10
    assert wide["meta"]["window"]["duration_s"] == 6 * 3600
    assert "hint" not in wide["meta"]


#: An ISO 8601 instant (with a time of day), and its fraction of a second when it has one.
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def instants(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if INSTANT.fullmatch(value) else []
    if isinstance(value, dict):
        return [found for item in value.values() for found in instants(item)]
    if isinstance(value, list):
        return [found for item in value for found in instants(item)]
    return []


@pytest.mark.parametrize(
    "path",
    [
        *LISTS,
        "/v1/stops/caltrain:san_francisco/departures",
        f"/v1/departures?{SAN_FRANCISCO}",
        "/v1/trips/caltrain:310",
        "/v1/agenda",
        f"/v1/home?{SAN_FRANCISCO}",
        "/v1/sources",
    ],
)
async def test_every_instant_is_to_the_second_with_its_offset(client, path):
    """One precision for every instant the API writes: seconds, with an offset (generated_at
    had milliseconds, the sources' last_success microseconds)."""
    body = await get_json(client, path)
    found = instants(body)
    assert found, path
    for instant in found:
        match = INSTANT.fullmatch(instant)
        assert match is not None
        assert match.group(1) and not match.group(2) and match.group(3), (path, instant)


async def test_home_answers_in_the_zone_of_the_place(client):
    """San Francisco's home screen says now and the weekend in Pacific time (its transit's
    zone), not in the configured city's Paris time; Rouen's, with no transit near, in Paris's."""
    here = await get_json(client, f"/v1/home?{SAN_FRANCISCO}")
    assert here["meta"]["now"] == "2023-11-07T17:06:00-08:00"
    assert here["meta"]["weekend"] == ["2023-11-11T00:00:00-08:00", "2023-11-13T00:00:00-08:00"]
    rouen = await get_json(client, f"/v1/home?{ROUEN}")
    assert rouen["meta"]["now"] == "2023-11-08T02:06:00+01:00"
    assert rouen["meta"]["weekend"] == ["2023-11-11T00:00:00+01:00", "2023-11-13T00:00:00+01:00"]


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/v1/stops?q=san", "name,lat,lon"),
        (f"/v1/bikes/stations?{ROUEN}", "name,bikes_available"),
        ("/v1/vehicles", "line,lat,lon"),
        ("/v1/events?from=2023-11-01T00:00:00Z&to=2024-10-31T00:00:00Z", "title,start,end"),
        ("/v1/lines", "short_name,color"),
    ],
)
async def test_fields_keeps_only_the_asked_item_fields(client, path, fields):
    """``fields=`` cuts every item to the asked fields and its id, and the answer shrinks;
    a name the item schema does not have is a 400 naming it."""
    whole = await client.get(path, headers={"Accept-Encoding": "identity"})
    full_size = len(await whole.read())
    response = await client.get(
        joined(path, f"fields={fields}"), headers={"Accept-Encoding": "identity"}
    )
    assert response.status == 200, await response.text()
    cut = await response.json()
    assert cut["data"], path
    for item in cut["data"]:
        assert set(item) <= {"id", *fields.split(",")}, item
        assert "id" in item
    assert len(await response.read()) < full_size
    wrong = await get_json(client, joined(path, f"fields={fields},colour_of_the_sky&lang=en"), 400)
    assert wrong["errors"][0]["parameter"] == "fields"
    assert "'colour_of_the_sky' is not a field" in wrong["errors"][0]["detail"]


async def test_fields_cuts_the_properties_of_a_geojson_answer(client):
    body = await get_json(client, f"/v1/bikes/stations?{ROUEN}&format=geojson&fields=name")
    assert body["features"]
    for feature in body["features"]:
        assert set(feature["properties"]) == {"id", "name"}
        assert feature["geometry"]["type"] == "Point"


async def test_a_departure_has_the_same_keys_with_or_without_realtime(client):
    """A board of a feed without realtime (Québec's ferries) has the keys of one with it
    (Caltrain): vehicle_id, uncertainty_s null and alert_ids [] rather than missing."""
    ferries = await get_json(
        client, "/v1/stops/stq:QUE/departures?at=2026-03-10T08:00:00-05:00&duration=24h"
    )
    trains = await get_json(client, "/v1/stops/caltrain:san_francisco/departures")
    assert ferries["meta"]["realtime"]["stq"]["available"] is False
    assert trains["meta"]["realtime"]["caltrain"]["available"] is True
    scheduled, live = ferries["data"]["departures"], trains["data"]["departures"]
    assert scheduled and live
    assert {frozenset(d) for d in scheduled} == {frozenset(d) for d in live}
    assert all(d["alert_ids"] == [] and d["vehicle_id"] is None for d in scheduled)

"""A real per-zone waste ICS through the waste connector and the events calendar engine.

Toronto's curbside collection areas (the City's polygons) and each zone's calendar as an ICS
(the City's pickup schedule converted to one calendar per zone), checked against the City's
own schedule table. Provenance and licences: tests/fixtures/waste/PROVENANCE.md.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app

FIXTURES = Path(__file__).parent / "fixtures" / "waste"
ZONES = FIXTURES / "toronto-collection-areas-d4-tuesday.geojson"
SCHEDULE = FIXTURES / "toronto-pickup-schedule-2025-tuesday.csv"

# Monday 2 June 2025: yard waste is in season, every other Tuesday.
CLOCK = "2025-06-02T08:00:00-04:00"
TODAY = date(2025, 6, 2)
#: Inside Scarborough's (District 4) "Tuesday 1" and "Tuesday 2" areas.
INSIDE_1 = (43.78245244608427, -79.15949527548858)
INSIDE_2 = (43.820367569007615, -79.2003530685123)
#: A vertex the two areas share.
BORDER = (43.79946332795136, -79.16619835911328)
#: City Hall, downtown: in neither area.
OUTSIDE = (43.6534, -79.3839)
PER_STREAM = 5


def city_table(schedule: str) -> dict[str, list[str]]:
    """The next dates of each stream for ``schedule``, from the City's own table."""
    columns = {"Garbage": "household", "Recycling": "recycling", "YardWaste": "garden"}
    found: dict[str, list[str]] = {stream: [] for stream in columns.values()}
    with SCHEDULE.open(encoding="utf-8") as table:
        for row in csv.DictReader(table):
            day = datetime.strptime(row["CollectionDate"], "%d-%m-%Y").date()
            if row["Schedule"] != schedule or day < TODAY:
                continue
            for column, stream in columns.items():
                if row[column] == "T" and len(found[stream]) < PER_STREAM:
                    found[stream].append(day.isoformat())
    return found


@pytest.fixture
async def client(upstream):
    upstream.route("/areas.geojson", Reply.file(ZONES))
    for zone in ("Tuesday1", "Tuesday2"):
        upstream.route(
            f"/{zone}.ics",
            Reply.file(FIXTURES / f"toronto-{zone}.ics", content_type="text/calendar"),
        )
    config = f"""
    defaults: {{timezone: America/Toronto}}
    clock: {{fixed: "{CLOCK}"}}
    connectors:
      - id: toronto
        type: waste
        url: {upstream.url("/areas.geojson")}
        fields: {{id: AREA_LONG_, name: AREA_NAME}}
        ics:
          D4TU1: {upstream.url("/Tuesday1.ics")}
          D4TU2: {upstream.url("/Tuesday2.ics")}
        ics_streams: {{garbage: household, recycling: recycling, yard waste: garden}}
        per_stream: {PER_STREAM}
        horizon_days: 120  # five fortnightly dates of each stream
    """
    runtime = runtime_from(config)
    assert (await runtime.poll_once("toronto")).outcome == "changed"
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        test_client.runtime = runtime
        yield test_client


async def collections(client, point) -> dict:
    lat, lon = point
    response = await client.get(f"/v1/waste/collections?lat={lat}&lon={lon}")
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


def by_stream(data: dict, zone: str) -> dict[str, list[str]]:
    return {c["stream"]: c["dates"] for c in data["collections"] if c["zone"] == zone}


async def test_each_zone_gets_the_citys_dates_from_its_ics(client):
    """Inside each area: garbage, recycling and yard waste on the dates the City's table
    gives. A "Yard Waste/Garbage Day" event is a day of both streams; the calendar holds
    nothing the streams do not name (the green bin is only in the events' descriptions)."""
    snapshot = client.runtime.live.snapshot("toronto")
    assert snapshot.issues == ()
    for point, zone, schedule in (
        (INSIDE_1, "toronto:D4TU1", "Tuesday1"),
        (INSIDE_2, "toronto:D4TU2", "Tuesday2"),
    ):
        data = await collections(client, point)
        assert [z["id"] for z in data["zones"]] == [zone]
        assert data["zones"][0]["name"] == schedule.replace("Tuesday", "Tuesday ")
        got = by_stream(data, zone)
        assert got == city_table(schedule), schedule
        # Every collection is on a Tuesday, the areas' name says so.
        assert {date.fromisoformat(d).weekday() for ds in got.values() for d in ds} == {1}
    # The two areas alternate: one's garbage week is the other's recycling week.
    first, second = city_table("Tuesday1"), city_table("Tuesday2")
    assert first["household"][0] == second["recycling"][0]


async def test_a_border_gives_both_zones_and_outside_gives_none(client):
    """On a vertex both areas share: both zones' collections. Downtown: no zone, said so."""
    data = await collections(client, BORDER)
    assert [z["id"] for z in data["zones"]] == ["toronto:D4TU1", "toronto:D4TU2"]
    assert by_stream(data, "toronto:D4TU1") == city_table("Tuesday1")
    assert by_stream(data, "toronto:D4TU2") == city_table("Tuesday2")
    outside = await collections(client, OUTSIDE)
    assert outside["zones"] == [] and outside["collections"] == []
    assert outside["explanation"]["code"] == "outside_zones"

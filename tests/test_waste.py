"""The waste connector type and /v1/waste/collections on Bordeaux Métropole's real collection
zones and weekdays (tests/fixtures/waste/PROVENANCE.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import CONNECTOR_TYPES, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from connectors.waste.connector import WasteConnector

FIXTURES = Path(__file__).parent / "fixtures" / "waste"
ZONES = FIXTURES / "bordeaux-metropole-en_frcol_s.json"
assert CONNECTOR_TYPES["waste"] is WasteConnector  # registered through its entry point

# Monday 30 March 2026; Easter Monday is 6 April 2026.
CLOCK = "2026-03-30T09:00:00+02:00"
BORDEAUX = f"""
defaults: {{timezone: Europe/Paris}}
clock: {{fixed: "{CLOCK}"}}
connectors:
  - id: bdx
    type: waste
    url: URL
    fields: {{id: gid, name: commune, geometry: geo_shape, stream: type, weekdays: jour_col}}
    values:
      stream: {{OM: household, TRI: recycling}}
    holiday_shifts: {{2026-04-06: 2026-04-07, 2026-04-03: null}}
"""
#: Inside household zone 4330 (Tue, Fri) and recycling zone 4316 (Mon), Bordeaux centre.
INSIDE = (44.8452295, -0.5909103094389943)
#: A vertex shared by household zones 4330 and 4312 and recycling zones 4341 and 4316.
BORDER = (44.8419, -0.5994925)
#: Inside a hole of Mérignac's household zone 4218, which no other zone fills.
HOLE = (44.8296018, -0.6562009220290846)
#: Lille: in no Bordeaux zone.
OUTSIDE = (50.6366, 3.0635)


@pytest.fixture
async def client(upstream):
    upstream.route("/zones.json", Reply.file(ZONES))
    runtime = runtime_from(BORDEAUX.replace("URL", upstream.url("/zones.json")))
    assert (await runtime.poll_once("bdx")).outcome == "changed"
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        test_client.runtime = runtime
        yield test_client


async def collections(client, point, status=200, lang="en"):
    lat, lon = point
    response = await client.get(f"/v1/waste/collections?lat={lat}&lon={lon}&lang={lang}")
    assert response.status == status, await response.text()
    return (await response.json())["data"]


async def test_a_point_inside_gets_its_zones_and_next_dates_per_stream(client):
    """Household Tue/Fri (Good Friday cancelled), recycling Monday (Easter Monday → Tuesday)."""
    data = await collections(client, INSIDE)
    assert [z["id"] for z in data["zones"]] == ["bdx:4316", "bdx:4330"]
    assert data["zones"][0]["name"] == "Bordeaux" and data["explanation"] is None
    by_stream = {c["stream"]: c for c in data["collections"]}
    assert by_stream["recycling"]["dates"] == ["2026-03-30", "2026-04-07", "2026-04-13"]
    assert by_stream["household"]["zone"] == "bdx:4330"
    assert by_stream["household"]["dates"] == ["2026-03-31", "2026-04-07", "2026-04-10"]
    assert [c["stream"] for c in data["collections"]] == ["recycling", "household"]


async def test_a_point_on_a_shared_border_is_in_both_zones(client):
    data = await collections(client, BORDER)
    assert [z["id"] for z in data["zones"]] == ["bdx:4312", "bdx:4316", "bdx:4330", "bdx:4341"]
    household = sorted(c["zone"] for c in data["collections"] if c["stream"] == "household")
    assert household == ["bdx:4312", "bdx:4330"]


@pytest.mark.parametrize("point", [HOLE, OUTSIDE], ids=["in_a_hole", "outside"])
async def test_a_point_in_no_zone_gets_an_empty_answer_that_says_so(client, point):
    data = await collections(client, point, lang="fr")
    assert data["zones"] == [] and data["collections"] == []
    assert data["explanation"]["code"] == "outside_zones"
    assert "aucune des zones" in data["explanation"]["message"]


async def test_zones_without_geometry_are_named_and_the_rest_serve(client):
    """Ten of Bordeaux Métropole's real rows have no geometry: each is named, none served."""
    runtime = client.runtime
    snapshot = runtime.live.snapshot("bdx")
    assert snapshot.stats["rows"] == 61 and snapshot.stats["zones"] == 51
    issues = runtime.statuses["bdx"].issue_samples
    assert any("zone '4314' dropped: no geometry" in issue for issue in issues)


async def test_home_shows_the_next_collection(client):
    response = await client.get(f"/v1/home?lat={INSIDE[0]}&lon={INSIDE[1]}")
    assert response.status == 200
    waste = (await response.json())["data"]["waste"]
    assert waste["unavailable"] is None
    assert waste["items"][0] == {
        "stream": "recycling",
        "zone": "bdx:4316",
        "next": "2026-03-30",
        "dates": ["2026-03-30", "2026-04-07", "2026-04-13"],
    }


async def test_bad_parameters_are_refused(client):
    response = await client.get("/v1/waste/collections?lat=44.8")
    assert response.status == 400 and "lon" in (await response.json())["detail"]
    response = await client.get("/v1/waste/collections?lat=44.8&lon=-0.5&radius=3")
    assert response.status == 400 and "radius" in (await response.json())["detail"]


def _corrupted_zones(tmp_path: Path) -> Path:
    """Three real zones, the first made into a bow-tie (its ring crosses itself)."""
    rows = [r for r in json.loads(ZONES.read_text()) if r["gid"] in ("4330", "4316", "4312")]
    ring = rows[0]["geo_shape"]["geometry"]["coordinates"][0]
    ring[1], ring[len(ring) // 2] = ring[len(ring) // 2], ring[1]
    path = tmp_path / "zones.json"
    path.write_text(json.dumps(rows))
    return path


async def test_rules_from_yaml_csv_and_ics_and_an_invalid_polygon(upstream, tmp_path):
    """Zones alone, schedules beside them: YAML rules (every other week), a CSV, an ICS per zone.
    An invalid polygon is dropped and named; the other zones serve."""
    upstream.route("/zones.json", Reply.file(_corrupted_zones(tmp_path)))
    upstream.route(
        "/rules.csv",
        Reply(
            body=b"zone;stream;weekdays;every_weeks;reference_date\n4312;glass;jeudi;1;\n"
            b"4312;bulky;someday;1;\n"
        ),
    )
    upstream.route("/4316.ics", Reply.file(FIXTURES / "biweekly-exdate-until.ics"))
    config = f"""
    defaults: {{timezone: Europe/Paris}}
    clock: {{fixed: "{CLOCK}"}}
    connectors:
      - id: zones
        type: waste
        url: {upstream.url("/zones.json")}
        fields: {{id: gid, name: commune, geometry: geo_shape}}
        rules:
          "4312":
            - {{stream: garden, weekdays: [we], every_weeks: 2, reference_date: 2026-04-08}}
        rules_csv: {upstream.url("/rules.csv")}
        ics: {{"4316": "{upstream.url("/4316.ics")}"}}
        ics_streams: {{exdate: paper}}
    """
    runtime = runtime_from(config)
    assert (await runtime.poll_once("zones")).outcome == "changed"
    issues = runtime.statuses["zones"].issue_samples
    assert any("zone '4330' dropped: an invalid polygon (Self-intersection" in i for i in issues)
    assert any("rules_csv line 3: dropped (weekdays ['someday']" in i for i in issues)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        data = await collections(client, BORDER)
        assert [z["id"] for z in data["zones"]] == ["zones:4312", "zones:4316"]
        got = {(c["zone"], c["stream"]): c["dates"] for c in data["collections"]}
        assert got[("zones:4312", "garden")] == ["2026-04-08", "2026-04-22", "2026-05-06"]
        assert got[("zones:4312", "glass")] == ["2026-04-02", "2026-04-09", "2026-04-16"]
        # The ICS: every other Monday and Tuesday since 14 August 2017 (recurring-ical-events).
        assert got[("zones:4316", "paper")] == ["2026-03-30", "2026-03-31", "2026-04-13"]


async def test_a_rules_csv_of_one_column_is_reported_not_fatal(upstream, tmp_path):
    """csv.Sniffer cannot tell a one-column file's delimiter: its rows are dropped and named,
    and the zones still load."""
    upstream.route("/zones.json", Reply.file(ZONES))
    upstream.route("/rules.csv", Reply(body=b"zone\n4312\n"))
    config = f"""
    defaults: {{timezone: Europe/Paris}}
    clock: {{fixed: "{CLOCK}"}}
    connectors:
      - id: zones
        type: waste
        url: {upstream.url("/zones.json")}
        fields: {{id: gid, geometry: geo_shape}}
        rules_csv: {upstream.url("/rules.csv")}
    """
    runtime = runtime_from(config)
    assert (await runtime.poll_once("zones")).outcome == "changed"
    issues = runtime.live.snapshot("zones").issues
    assert any(i.startswith("rules_csv line 2: dropped (") for i in issues), issues

"""The events endpoints on real data: the Paris OpenAgenda export and the machBar calendar."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from

from aggregator.api.app import create_app

DATA = Path(__file__).parents[1] / "config" / "demo-data"
YEAR = "from=2023-11-01T00:00:00Z&to=2024-11-01T00:00:00Z"
CONFIG = """
defaults:
  allow_file_urls: true
  languages: [fr, en]
clock:
  fixed: 2023-11-07T17:06:00-08:00
connectors:
  - id: paris-events
    type: opendatasoft
    export_url: file:openagenda-paris-events-ods-v1.json
    timezone: Europe/Paris
  - id: machbar
    type: ics
    url: file:machbar-potsdam-2019.ics
    categories: [atelier]
  - id: council
    type: ics
    channel: agenda
    url: file:council.ics
"""
COUNCIL = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Test//Council//FR
BEGIN:VEVENT
UID:conseil-2023-11-20@mairie.example
DTSTART;TZID=Europe/Paris:20231120T180000
DTEND;TZID=Europe/Paris:20231120T210000
SUMMARY:Conseil municipal
LOCATION:Hôtel de Ville
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
async def client(tmp_path):
    for name in ("openagenda-paris-events-ods-v1.json", "machbar-potsdam-2019.ics"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    (tmp_path / "council.ics").write_text(COUNCIL.replace("\n", "\r\n"))
    runtime = runtime_from(CONFIG, base_dir=tmp_path)
    for source_id in runtime.connectors:
        assert (await runtime.poll_once(source_id)).outcome == "changed"
    await runtime.live.settled()  # the event index is rebuilt in the background
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def get_json(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


async def test_default_window_is_the_next_seven_days(client):
    """Without from/to, the answer covers now → now + 7 days, sorted by start."""
    body = await get_json(client, "/v1/events?limit=100")
    starts = [e["start"] for e in body["data"]]
    assert starts == sorted(starts) and starts
    assert all("2023-11-07" <= s[:10] <= "2023-11-15" for s in starts)
    assert {e["channel"] for e in body["data"]} == {"events"}


async def test_pages_visit_each_occurrence_once(client):
    """Following next_cursor over a year gives every occurrence once, in order."""
    seen, cursor, total = [], None, None
    while True:
        path = f"/v1/events?{YEAR}&limit=40" + (f"&cursor={cursor}" if cursor else "")
        body = await get_json(client, path)
        total = body["meta"]["total"]
        seen += [(e["start"], e["id"]) for e in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == total > 100
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)


async def test_text_search_is_accent_insensitive_and_localised(client):
    """'brasserie' finds 'Les Brasseries Parisiennes ...'; titles come in the asked language."""
    body = await get_json(client, f"/v1/events?{YEAR}&q=brasserie")
    assert any("Brasseries" in e["title"] for e in body["data"])
    assert body["meta"]["language"] == "fr"


async def test_geo_filter_and_distance_sort(client):
    """Around Parc Georges Brassens, events come nearest first with their distance."""
    body = await get_json(
        client, f"/v1/events?{YEAR}&lat=48.8302&lon=2.3017&radius=3000&sort=distance"
    )
    distances = [e["distance_m"] for e in body["data"]]
    assert distances and distances == sorted(distances) and distances[-1] <= 3000


async def test_agenda_channel_and_event_detail(client):
    """The council's session is on /v1/agenda, not /v1/events; its detail lists occurrences."""
    agenda = await get_json(client, "/v1/agenda?" + YEAR)
    assert [e["title"] for e in agenda["data"]] == ["Conseil municipal"]
    session = agenda["data"][0]
    assert session["start"] == "2023-11-20T18:00:00+01:00"
    events = await get_json(client, f"/v1/events?{YEAR}&channel=events&limit=100&q=conseil")
    assert all(e["channel"] == "events" for e in events["data"])
    detail = await get_json(client, f"/v1/events/{session['id']}")
    assert detail["data"]["id"] == session["id"]
    assert detail["data"]["other_occurrences"] == []
    weekly = await get_json(client, f"/v1/events?{YEAR}&source=machbar&q=chaostreff&limit=1")
    recurring = await get_json(client, f"/v1/events/{weekly['data'][0]['id']}")
    assert len(recurring["data"]["other_occurrences"]) > 10


async def test_categories_with_counts(client):
    """Categories of a range come with occurrence and event counts."""
    body = await get_json(client, "/v1/categories?" + YEAR)
    atelier = next(c for c in body["data"] if c["key"] == "atelier")
    assert atelier["count"] > atelier["events"] >= 1


async def test_updated_since_is_refused_with_a_pointer_to_sync(client):
    """The timestamp form could not tell a change from a poll: a 400 points to sync."""
    body = await get_json(client, "/v1/events?updated_since=2000-01-01T00:00:00Z", status=400)
    assert "sync=start" in body["errors"][0]["detail"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", "to"),
        ("from=2023-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", "to"),
        ("lat=48.8", "lon"),
        ("radius=100", "radius"),
        ("sort=distance", "sort"),
        ("accessibility=wheels", "accessibility"),
        ("channel=news", "channel"),
        ("cursor=AAAA", "cursor"),
        ("sync=start&lon=x", "lon"),
        ("sync=start&limit=500", "limit"),
        ("sync=nonsense", "sync"),
    ],
)
async def test_bad_event_parameters_are_named(client, query, parameter):
    """Each bad events parameter is a 400 that names it."""
    body = await get_json(client, f"/v1/events?{query}", status=400)
    assert body["errors"][0]["parameter"] == parameter


async def test_unknown_event_is_404(client):
    """An unknown occurrence id is a 404 problem."""
    await get_json(client, "/v1/events/nope:x:y", status=404)


async def test_an_event_location_has_one_shape_whatever_its_source(client):
    """Every location is null or has the same six keys, null when unknown: an ICS LOCATION
    (a name, no GEO) used to come as {name} alone, an Opendatasoft one with more keys."""
    keys = {"name", "address", "city", "postal_code", "lat", "lon"}
    seen = set()
    for channel in ("events", "agenda"):
        body = await get_json(client, f"/v1/events?{YEAR}&channel={channel}&limit=100")
        for event in body["data"]:
            if event["location"] is not None:
                assert set(event["location"]) == keys, event["id"]
                seen.add(event["source"])
    assert {"paris-events", "council"} <= seen
    council = await get_json(client, f"/v1/agenda?{YEAR}")
    assert council["data"][0]["location"] == {
        "name": "Hôtel de Ville",
        "address": None,
        "city": None,
        "postal_code": None,
        "lat": None,
        "lon": None,
    }

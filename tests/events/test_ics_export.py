"""/v1/events.ics and /v1/agenda.ics: a calendar a resident subscribes to once.

Read back by two independent parsers (icalendar, and allenporter's `ical`, which refuses what
RFC 5545 forbids), re-expanded with recurring-ical-events to the same occurrences as the JSON
list, stable across refreshes, and telling changes (SEQUENCE, LAST-MODIFIED) and cancellations
(STATUS:CANCELLED)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import icalendar
import recurring_ical_events
from aiohttp.test_utils import TestClient, TestServer
from ical.calendar_stream import IcsCalendarStream
from support import runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app

DATA = Path(__file__).parents[2] / "config" / "demo-data"
RANGE = "from=2019-02-25T00:00:00Z&to=2019-06-01T00:00:00Z"


def machbar_config() -> str:
    # machBar Potsdam's real public calendar (weekly series with EXDATEs), at its own time.
    return """
    defaults: {allow_file_urls: true, timezone: Europe/Berlin}
    clock: {fixed: "2019-02-27T12:00:00+01:00"}
    connectors:
      - {id: machbar, type: ics, url: "file:machbar-potsdam-2019.ics"}
    """


async def json_occurrences(client: TestClient, query: str) -> list[dict]:
    found, cursor = [], None
    while True:
        page = await (
            await client.get(
                f"/v1/events?{query}&limit=100" + (f"&cursor={cursor}" if cursor else "")
            )
        ).json()
        found += page["data"]
        cursor = page["meta"].get("next_cursor")
        if not cursor:
            return found


async def test_the_calendar_is_valid_for_two_parsers_and_holds_the_list(tmp_path):
    runtime = runtime_from(machbar_config(), base_dir=DATA)
    await runtime.poll_once("machbar")
    await runtime.live.settled()
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        answer = await client.get(f"/v1/events.ics?{RANGE}")
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/calendar; charset=utf-8"
        body = await answer.read()
        listed = await json_occurrences(client, RANGE)
        again = await (await client.get(f"/v1/events.ics?{RANGE}")).read()
    assert len(listed) >= 20
    assert again == body  # the same calendar while the data is the same

    strict = IcsCalendarStream.calendar_from_ics(body.decode())  # raises on an RFC violation
    assert len(strict.events) == len(listed)
    assert {tz.tz_id for tz in strict.timezones} == {"Europe/Berlin"}
    parsed = icalendar.Calendar.from_ical(body)
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))  # folded (RFC 5545, 3.1)

    # Re-expanded, the calendar gives back exactly the list's occurrences.
    start, end = dt.datetime(2019, 2, 25, tzinfo=dt.UTC), dt.datetime(2019, 6, 1, tzinfo=dt.UTC)
    expanded = {
        (str(e["UID"]), e["DTSTART"].dt.astimezone(dt.UTC))
        for e in recurring_ical_events.of(parsed).between(start, end)
    }
    assert expanded == {
        (o["id"], dt.datetime.fromisoformat(o["start"]).astimezone(dt.UTC)) for o in listed
    }


CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Mairie//Agenda//FR
BEGIN:VEVENT
UID:conseil-2026-03@mairie.example
DTSTAMP:20260101T000000Z
LAST-MODIFIED:{modified}
DTSTART;TZID=Europe/Paris:20260312T180000
DTEND;TZID=Europe/Paris:20260312T200000
SUMMARY:{summary}
LOCATION:Hôtel de ville, salle du conseil
END:VEVENT
BEGIN:VEVENT
UID:reunion-quartier@mairie.example
DTSTAMP:20260101T000000Z
LAST-MODIFIED:20260201T090000Z
DTSTART;TZID=Europe/Paris:20260315T100000
SUMMARY:Réunion de quartier
STATUS:{status}
END:VEVENT
END:VCALENDAR
"""


async def test_changes_bump_sequence_and_cancellations_stay_as_cancelled(upstream):
    first = CALENDAR.format(
        modified="20260201T090000Z", summary="Conseil municipal", status="CONFIRMED"
    )
    second = CALENDAR.format(
        modified="20260220T160000Z", summary="Conseil municipal (salle B)", status="CANCELLED"
    )
    upstream.route(
        "/agenda.ics",
        [
            Reply(body=first.replace("\n", "\r\n").encode()),
            Reply(body=second.replace("\n", "\r\n").encode()),
        ],
    )
    runtime = runtime_from(
        f"""
        clock: {{fixed: "2026-03-01T12:00:00+01:00"}}
        connectors:
          - {{id: mairie, type: ics, channel: agenda, url: "{upstream.url("/agenda.ics")}"}}
        """
    )
    bodies = []
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        for _ in range(2):
            await runtime.poll_once("mairie")
            await runtime.live.settled()  # the events index is rebuilt in the background
            bodies.append(
                icalendar.Calendar.from_ical(await (await client.get("/v1/agenda.ics")).read())
            )
        assert (await client.get("/v1/agenda.ics?limit=5")).status == 400
    before, after = ({str(e["UID"]): e for e in cal.walk("VEVENT")} for cal in bodies)
    assert before.keys() == after.keys()  # the same UIDs across refreshes
    (council,) = [uid for uid in before if uid.startswith("mairie:conseil")]
    assert int(after[council]["SEQUENCE"]) > int(before[council]["SEQUENCE"])
    assert after[council]["LAST-MODIFIED"].dt > before[council]["LAST-MODIFIED"].dt
    assert str(after[council]["SUMMARY"]) == "Conseil municipal (salle B)"
    (meeting,) = [uid for uid in before if uid.startswith("mairie:reunion")]
    assert str(before[meeting]["STATUS"]) == "CONFIRMED"
    assert str(after[meeting]["STATUS"]) == "CANCELLED"


#: Paris' events of 2018 (OpenAgenda through opendata.paris.fr) as a council's agenda, with
#: the demo's communes (IGN's ADMIN EXPRESS extract): some are held outside Paris.
PARIS_AGENDA = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
clock: {fixed: "2019-09-10T12:00:00+02:00"}
connectors:
  - id: paris-events
    type: opendatasoft
    export_url: file:openagenda-paris-events-ods-v1.json
    timezone: Europe/Paris
    channel: agenda
  - id: communes
    type: communes
    url: file:communes-demo-extract.geojson
    fields: {code: code, name: nom}
"""
YEAR_2018 = "from=2018-01-01T00:00:00%2B01:00&to=2018-12-31T00:00:00%2B01:00"


async def test_a_calendar_of_one_commune_holds_the_lists_occurrences_of_that_commune():
    """commune= on events.ics and agenda.ics: read back by both parsers, the calendar holds
    the occurrences /v1/events (or /v1/agenda) lists in that commune, and no other."""
    runtime = runtime_from(PARIS_AGENDA, base_dir=DATA)
    for source_id in ("paris-events", "communes"):
        assert (await runtime.poll_once(source_id)).outcome == "changed"
    await runtime.live.settled()
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        for path in ("/v1/events", "/v1/agenda"):
            every = await (await client.get(f"{path}.ics?{YEAR_2018}")).read()
            answer = await client.get(f"{path}.ics?{YEAR_2018}&commune=75056")
            assert answer.status == 200, await answer.text()
            body = await answer.read()
            listed = await json_occurrences(client, f"{YEAR_2018}&commune=75056")
            if path == "/v1/agenda":
                agenda = await (
                    await client.get(f"{path}?{YEAR_2018}&commune=75056&limit=100")
                ).json()
                assert [o["id"] for o in agenda["data"]] == [o["id"] for o in listed]
            assert listed and {o["commune"]["code"] for o in listed} == {"75056"}
            uids = [o["id"] for o in listed]
            strict = IcsCalendarStream.calendar_from_ics(body.decode())
            assert [e.uid for e in strict.events] == uids
            parsed = icalendar.Calendar.from_ical(body)
            assert [str(e["UID"]) for e in parsed.walk("VEVENT")] == uids
            whole = [str(e["UID"]) for e in icalendar.Calendar.from_ical(every).walk("VEVENT")]
            assert set(uids) < set(whole)  # the filter left the other communes' out
            # A commune with no occurrence in the year: a valid, empty calendar.
            empty = await (await client.get(f"{path}.ics?{YEAR_2018}&commune=79191")).read()
            assert IcsCalendarStream.calendar_from_ics(empty.decode()).events == []


async def test_the_calendar_names_its_sources_terms_and_share_alike():
    """A saved calendar keeps no HTTP header: its description names each source's licence and
    attribution, in the asked language, and says that share-alike (ODbL) data must be shared
    alike; the answer also links each licence (RFC 8288), as the CSV exports do."""
    config = machbar_config().replace(
        '{id: machbar, type: ics, url: "file:machbar-potsdam-2019.ics"}',
        '{id: machbar, type: ics, url: "file:machbar-potsdam-2019.ics", licence: ODbL-1.0, '
        'attribution: "machBar Potsdam"}',
    )
    runtime = runtime_from(config, base_dir=DATA)
    await runtime.poll_once("machbar")
    await runtime.live.settled()
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        texts = {}
        for language in ("en", "fr"):
            answer = await client.get(f"/v1/events.ics?{RANGE}&lang={language}")
            assert answer.status == 200
            assert answer.headers.getall("Link") == [
                '<https://spdx.org/licenses/ODbL-1.0.html>; rel="license"'
            ]
            body = await answer.read()
            IcsCalendarStream.calendar_from_ics(body.decode())  # still valid, strictly
            calendar = icalendar.Calendar.from_ical(body)
            texts[language] = str(calendar["DESCRIPTION"])
            assert str(calendar["X-WR-CALDESC"]) == texts[language]
        # Outside the events' dates, no source contributes: no terms, no link.
        empty = await client.get("/v1/events.ics?from=2030-01-01T00:00:00Z&to=2030-02-01T00:00:00Z")
        assert "Link" not in empty.headers
        assert "DESCRIPTION" not in icalendar.Calendar.from_ical(await empty.read())
    assert texts["en"] == (
        "Sources and their terms of reuse: machbar, ODbL-1.0, machBar Potsdam. The data of "
        "machbar is under a share-alike licence: what is derived from it must be shared under "
        "the same licence."
    )
    assert texts["fr"].startswith("Sources et conditions de réutilisation : machbar, ODbL-1.0")
    assert "partage à l'identique" in texts["fr"]

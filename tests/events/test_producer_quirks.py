"""Calendars and agendas as some producers publish them: events inside a nested VCALENDAR,
an all-day event with an unreadable DURATION, an OpenAgenda agenda read from a saved export
or from a ``file:`` base URL. Hand-made bodies of those shapes; none may vanish silently."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from aggregator.fetch import Fetcher
from connectors.events.openagenda import OpenAgendaConfig, OpenAgendaConnector
from events.helpers import FIXTURES, context, expand

HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
END = "END:VCALENDAR\r\n"


def _event(uid: str, start: str, extra: str = "") -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{start}\r\n{extra}"
        f"SUMMARY:{uid}\r\nEND:VEVENT\r\n"
    )


def _titles(result) -> list[str]:
    return sorted(r["title"]["fr"] for r in result.data)


def test_events_inside_a_nested_vcalendar_are_read_and_reported():
    """A second calendar wrapped inside the first (some exporters do): its events are read
    with the others, screened like them (counted, capped) and the nesting is reported."""
    text = (
        HEAD
        + _event("outer", "DTSTART:20260610T100000Z")
        + HEAD
        + _event("inner", "DTSTART:20260611T100000Z", "DTEND:20260611T110000Z\r\n")
        + HEAD
        + _event("deeper", "DTSTART:20260612T100000Z")
        + END
        + END
        + END
    )
    result = expand(text.encode())
    assert _titles(result) == ["deeper", "inner", "outer"]
    assert result.stats["events"] == 3
    assert "2 event(s) inside a nested VCALENDAR read with the others" in result.issues


def test_a_nested_event_without_dtstart_is_skipped_and_said():
    """Screening reaches nested events too: one without DTSTART is reported, not crashed on."""
    text = HEAD + _event("ok", "DTSTART:20260610T100000Z") + HEAD + _event("bad", "") + END + END
    result = expand(text.encode())
    assert _titles(result) == ["ok"]
    assert "event 'bad' skipped: no DTSTART" in result.issues


def test_all_day_event_with_an_unreadable_duration_lasts_one_day():
    """DURATION:-PT1W1D2H3M4S cannot be read: RFC 5545 then gives a DATE start one day."""
    text = (
        HEAD
        + _event("fete", "DTSTART;VALUE=DATE:20260610", "DURATION:-PT1W1D2H3M4S\r\n")
        + _event("meeting", "DTSTART:20260611T080000Z", "DURATION:P1Q\r\n")
        + END
    )
    result = expand(text.encode())
    by_title = {r["title"]["fr"]: r for r in result.data}
    fete = by_title["fete"]
    assert (fete["start"], fete["end"], fete["all_day"]) == (
        "2026-06-10T00:00:00+02:00",
        "2026-06-11T00:00:00+02:00",
        True,
    )
    # A DATE-TIME start without a usable end ends when it starts (same RFC section).
    meeting = by_title["meeting"]
    assert meeting["start"] == meeting["end"] == "2026-06-11T10:00:00+02:00"
    duration_issues = [i for i in result.issues if "DURATION ignored" in i]
    assert len(duration_issues) == 2
    assert "it ends as if none were given" in duration_issues[0]


# --------------------------------------------------------------------------- OpenAgenda
def _openagenda(**keys) -> OpenAgendaConnector:
    config = OpenAgendaConfig.model_validate({"id": "oa", "type": "openagenda", **keys})
    return OpenAgendaConnector(config, context())


async def test_openagenda_saved_export_is_read_whole(tmp_path):
    """The events JSON of an agenda's export, saved on disk: read without key or paging."""
    detailed = orjson.loads((FIXTURES / "events_event.json").read_bytes())["event"]
    export = tmp_path / "agenda-export.json"
    export.write_bytes(orjson.dumps({"total": 1, "events": [detailed]}))
    oa = _openagenda(export_url=export.as_uri())
    async with Fetcher() as fetcher:
        result = await oa.fetch(fetcher, None)
    parsed = oa.parse(result.body)
    assert parsed.stats["events"] == 1 and not parsed.issues
    assert parsed.record_count == len(detailed["timings"]) > 0
    assert {r["source"] for r in parsed.data} == {"oa"}


async def test_openagenda_export_as_a_bare_list_of_events(tmp_path):
    events = orjson.loads((FIXTURES / "events_events.json").read_bytes())["events"]
    export = tmp_path / "events.json"
    export.write_bytes(orjson.dumps(events))
    oa = _openagenda(export_url=export.as_uri())
    async with Fetcher() as fetcher:
        parsed = oa.parse((await oa.fetch(fetcher, None)).body)
    assert parsed.stats["events"] == 1 and not parsed.issues


async def test_openagenda_file_base_url_reads_local_pages_when_allowed(tmp_path):
    """A file: base_url with allow_file_urls true reads the file (the message no longer
    wrongly says file: URLs are disabled)."""
    pages = tmp_path / "v2" / "agendas" / "41630080"
    pages.mkdir(parents=True)
    body = orjson.loads((FIXTURES / "events_events.json").read_bytes())
    body["after"] = None
    (pages / "events").write_bytes(orjson.dumps(body))
    oa = _openagenda(agenda_uid="41630080", api_key="k", base_url=(tmp_path / "v2").as_uri())
    async with Fetcher() as fetcher:
        result = await oa.fetch(fetcher, None)
    assert oa.parse(result.body).stats["events"] == 1


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, r"give agenda_uid and api_key \(the OpenAgenda API\), or export_url"),
        ({"agenda_uid": "1"}, "give agenda_uid and api_key"),
        (
            {"agenda_uid": "1", "api_key": "k", "export_url": "https://example.org/e.json"},
            "not both",
        ),
    ],
)
def test_openagenda_config_says_what_is_missing(keys, message):
    with pytest.raises(ValidationError, match=message):
        OpenAgendaConfig.model_validate({"id": "oa", "type": "openagenda", **keys})

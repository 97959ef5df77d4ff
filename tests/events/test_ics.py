"""The ics connector on real-world and hand-made calendars: one test per edge case of DESIGN §5.

Which real file shows which case is listed in tests/events/README.md.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from aggregator.fetch import Fetcher
from connectors.events.ics import IcsConfig, IcsConnector
from events.helpers import by_title, calendar, context, expand, shared_file


def _starts(records: list[dict]) -> list[str]:
    return [r["start"] for r in records]


def test_rrule_with_exdate_skips_the_deleted_week():
    """A weekly COUNT=8 series with one EXDATE (SabreDAV) gives the other 7."""
    result = expand(shared_file("python-recurring-ical-events/each_week_but_one_deleted.ics"))
    assert result.record_count == 7
    assert "2019-03-11T00:30:00+01:00" not in _starts(result.data)
    assert _starts(result.data)[:2] == ["2019-03-04T00:30:00+01:00", "2019-03-18T00:30:00+01:00"]


def test_rdate_only_event_expands_to_each_date():
    """An event made only of RDATEs (Hacker Public Radio) yields each RDATE."""
    result = expand(shared_file("python-recurring-ical-events/rdate_hackerpublicradio.ics"))
    assert result.record_count >= 12
    assert result.data[0]["start"] == "2013-08-03T21:00:00+02:00"
    assert len({r["id"] for r in result.data}) == result.record_count


def test_recurrence_id_moves_an_occurrence_without_a_duplicate():
    """Moved instances (Thunderbird) replace their original slot and are flagged rescheduled."""
    result = expand(shared_file("python-recurring-ical-events/recurring_events_moved.ics"))
    assert result.record_count == 7
    moved = [r for r in result.data if r["status"] == "rescheduled"]
    assert moved
    for record in moved:
        assert record["previous_start"] != record["start"]
    # The original slot of a moved occurrence is not served a second time.
    assert len({r["recurrence_id"] for r in result.data}) == result.record_count


def test_range_thisandfuture_shifts_every_later_occurrence_with_distinct_ids():
    """RECURRENCE-ID;RANGE=THISANDFUTURE (RESERVAS) moves all later instances, ids stay unique."""
    result = expand(shared_file("python-recurring-ical-events/issue_75_range_parameter.ics"))
    ids = [r["id"] for r in result.data]
    assert len(ids) == len(set(ids))
    on_17th = [r for r in result.data if r["start"].startswith("2024-09-17")]
    assert len(on_17th) == 1
    assert on_17th[0]["start"] == "2024-09-17T11:00:00+02:00"  # 09:00Z: moved 3 hours earlier
    assert on_17th[0]["title"] == {"fr": "MODIFIED EVENT"}
    assert on_17th[0]["id"] == "cal:210:20240917T120000Z"  # keyed on its original start
    assert on_17th[0]["previous_start"] == "2024-09-17T14:00:00+02:00"
    assert result.issue_count == 0


def test_feed_of_only_modified_instances_is_read():
    """A Google-invite style feed with RECURRENCE-ID instances and no master still lists them."""
    body = calendar(
        "UID:inv-1\nRECURRENCE-ID:20260112T090000Z\nDTSTART:20260112T100000Z\n"
        "DTEND:20260112T110000Z\nSUMMARY:Réunion de quartier",
        "UID:inv-1\nRECURRENCE-ID:20260119T090000Z\nDTSTART:20260119T090000Z\n"
        "DTEND:20260119T100000Z\nSUMMARY:Réunion de quartier",
    )
    result = expand(body)
    assert [r["id"] for r in result.data] == [
        "cal:inv-1:20260112T090000Z",
        "cal:inv-1:20260119T090000Z",
    ]
    assert result.data[0]["start"] == "2026-01-12T11:00:00+01:00"


def test_windows_tzid_with_its_vtimezone_reads_as_the_iana_zone():
    """Outlook's "W. Europe Standard Time" (node-ical ms_timezones.ics) is central European time."""
    result = expand(shared_file("node-ical/ms_timezones.ics"))
    tests = [r for r in result.data if r["title"].get("fr") == "test"]
    assert tests and tests[0]["start"] == "2020-09-10T09:00:00+02:00"


def test_windows_tzid_without_vtimezone_is_mapped_to_iana():
    """A bare "Romance Standard Time" TZID with no VTIMEZONE is Paris time, not floating."""
    body = calendar(
        "UID:w1\nDTSTART;TZID=Romance Standard Time:20260310T180000\n"
        "DTEND;TZID=Romance Standard Time:20260310T200000\nSUMMARY:Conseil"
    )
    record = expand(body).data[0]
    assert record["start"] == "2026-03-10T18:00:00+01:00"
    assert record["end"] == "2026-03-10T20:00:00+01:00"


def test_made_up_tzid_with_vtimezone_uses_its_definition():
    """A made-up TZID "(UTC-03:00) Brasília" defined by a real VTIMEZONE (icalendar issue 237)."""
    vtimezone = shared_file("collective-icalendar/timezones__issue_237_brazilia_standard.ics")
    body = calendar(
        'UID:br\nDTSTART;TZID="(UTC-03:00) Brasília":20260710T100000\nSUMMARY:Reunião',
        header=vtimezone.read_text(encoding="utf-8"),
    )
    result = expand(body)
    assert result.data[0]["start"] == "2026-07-10T15:00:00+02:00"  # 10:00 at UTC-3
    assert result.stats["floating_or_unknown_zone"] == 0


def test_made_up_tzid_without_definition_falls_back_to_the_configured_zone():
    """ "Customized Time Zone" with no VTIMEZONE is read in the configured zone, and counted."""
    body = calendar("UID:c1\nDTSTART;TZID=Customized Time Zone:20260310T180000\nSUMMARY:Expo")
    result = expand(body)
    assert result.data[0]["start"] == "2026-03-10T18:00:00+01:00"
    assert result.stats["floating_or_unknown_zone"] == 1


def test_tzid_without_vtimezone_uses_the_named_iana_zone():
    """A known IANA TZID with no VTIMEZONE (icalendar issue 722) is resolved, not floating."""
    result = expand(shared_file("collective-icalendar/calendars__issue_722_missing_timezones.ics"))
    custom = by_title(result, "an event with a custom tz name")
    assert custom[0]["start"] == "2014-08-29T14:00:00+02:00"  # 08:00 New York
    assert custom[0]["end"] == "2014-08-29T17:00:00+02:00"  # 08:00 Los Angeles


def test_x_wr_timezone_moves_utc_times_into_the_calendar_zone():
    """Google exports with X-WR-TIMEZONE (rie issue 59) keep the instant, in the calendar's zone."""
    result = expand(
        shared_file("python-recurring-ical-events/x_wr_timezone_simple_events_issue_59.ics")
    )
    first = result.data[0]
    assert first["title"]["fr"].startswith("Google Calendar says this is noon")
    assert datetime.fromisoformat(first["start"]) == datetime.fromisoformat(
        "2021-12-22T12:00:00-05:00"
    )


@pytest.mark.parametrize(
    "header",
    [
        "X-WR-TIMEZONE:Europe/Nowhere",
        # Two values: one property holding a list (found by the parser fuzzer).
        "X-WR-TIMEZONE:Europe/Berlin\nX-WR-TIMEZONE:Europe/Berlin",
    ],
)
def test_an_unusable_x_wr_timezone_is_an_issue_and_the_events_are_kept(header):
    """A calendar-wide zone that names no zone is reported and ignored, never a crash
    (recurring_ical_events would convert it again and raise)."""
    result = expand(calendar("UID:x\nDTSTART:20260705T210000Z\nSUMMARY:Feu", header=header))
    assert [r["start"] for r in result.data] == ["2026-07-05T23:00:00+02:00"]
    assert any("X-WR-TIMEZONE" in issue and "ignored" in issue for issue in result.issues)


def test_floating_times_are_read_in_the_configured_zone():
    """Floating DTSTARTs (rie duration.ics) are local times of the configured zone."""
    result = expand(shared_file("python-recurring-ical-events/duration.ics"))
    assert by_title(result, "Short event")[0]["start"] == "2018-01-20T12:00:00+01:00"
    assert result.stats["floating_or_unknown_zone"] == 2


def test_floating_hand_made_event_keeps_its_wall_clock_time():
    """DTSTART:20260705T210000 (no zone) is 21:00 in Paris, i.e. +02:00 in summer."""
    record = expand(calendar("UID:f\nDTSTART:20260705T210000\nSUMMARY:Feu")).data[0]
    assert record["start"] == "2026-07-05T21:00:00+02:00"


def test_all_day_without_dtend_lasts_one_day():
    """An all-day event with no DTEND (RFC 5545: one day) ends the next day, exclusive."""
    record = expand(calendar("UID:d\nDTSTART;VALUE=DATE:20260714\nSUMMARY:Fête nationale")).data[0]
    assert record["all_day"] is True
    assert (record["start_date"], record["end_date"]) == ("2026-07-14", "2026-07-15")
    assert record["start"] == "2026-07-14T00:00:00+02:00"
    assert record["end"] == "2026-07-15T00:00:00+02:00"


def test_all_day_with_dtend_equal_to_dtstart_lasts_one_day():
    """CalendarLabs writes DTEND = DTSTART for all-day events; it is read as one day."""
    result = expand(shared_file("allenporter-ical/calendar_labs_same_day_dtend.ics"))
    record = result.data[0]
    assert record["all_day"] is True
    assert (record["start_date"], record["end_date"]) == ("2025-12-08", "2025-12-09")


def test_duration_instead_of_dtend():
    """DURATION gives the end (rie duration.ics): 3 days for a date, 3 hours for a time."""
    result = expand(shared_file("python-recurring-ical-events/duration.ics"))
    days = by_title(result, "Duration Event 1")[0]
    hours = by_title(result, "Duration Event 2")[0]
    assert (days["start_date"], days["end_date"]) == ("2018-01-10", "2018-01-13")
    assert (hours["start"], hours["end"]) == (
        "2018-01-15T10:00:00+01:00",
        "2018-01-15T13:00:00+01:00",
    )


def test_cancelled_instance_is_kept_and_flagged():
    """One cancelled instance of a weekly series stays in the feed with status "cancelled"."""
    body = calendar(
        "UID:s\nDTSTART;TZID=Europe/Paris:20260105T180000\nDURATION:PT1H\n"
        "RRULE:FREQ=WEEKLY;COUNT=3\nSUMMARY:Yoga",
        "UID:s\nRECURRENCE-ID;TZID=Europe/Paris:20260112T180000\n"
        "DTSTART;TZID=Europe/Paris:20260112T180000\nDURATION:PT1H\nSTATUS:CANCELLED\nSUMMARY:Yoga",
    )
    result = expand(body)
    assert [r["status"] for r in result.data] == ["scheduled", "cancelled", "scheduled"]


def test_cancelled_event_in_a_real_feed_is_flagged():
    """STATUS:CANCELLED in icalevents status_and_url.ics is served, flagged cancelled."""
    result = expand(shared_file("icalevents/status_and_url.ics"))
    cancelled = by_title(result, "Cancelled Event")
    assert cancelled and all(r["status"] == "cancelled" for r in cancelled)
    assert by_title(result, "Confirmed Event")[0]["status"] == "scheduled"


def test_broken_line_in_one_event_keeps_it_and_the_others():
    """A stray "X" line and an unreadable DTSTART: the good events survive, problems reported."""
    body = calendar(
        "UID:a\nDTSTART:20260101T100000Z\nX\nSUMMARY:Bon",
        "UID:b\nDTSTART:2026010\nSUMMARY:Mauvais",
        "UID:c\nDTSTART:20260102T100000Z\nSUMMARY:Bon aussi",
    )
    result = expand(body)
    assert [r["title"]["fr"] for r in result.data] == ["Bon", "Bon aussi"]
    assert result.issue_count >= 2
    assert any("'b'" in issue and "DTSTART" in issue for issue in result.issues)


def test_real_calendar_with_parsing_errors_keeps_its_events():
    """icalendar's parsing_error.ics (an empty EXDATE) still yields its events."""
    result = expand(shared_file("collective-icalendar/calendars__parsing_error.ics"))
    assert result.record_count > 0
    assert any("EXDATE" in issue for issue in result.issues)


def test_rrule_with_spaces_is_repaired():
    """ "BYDAY=MO, TU, ..." (icalendar issue 165, Outlook) is read without its spaces."""
    result = expand(shared_file("collective-icalendar/calendars__issue_165_missing_event.ics"))
    assert result.record_count > 1
    assert any("without its spaces" in issue for issue in result.issues)


def test_unclosed_component_does_not_swallow_later_events():
    """A VALARM never closed hides every later event from icalendar; we read event by event."""
    body = calendar(
        "UID:a\nDTSTART:20260101T100000Z\nSUMMARY:Avant",
        "UID:b\nDTSTART:20260101T110000Z\nBEGIN:VALARM\nSUMMARY:Cassé",
        "UID:c\nDTSTART:20260102T100000Z\nSUMMARY:Après",
    )
    result = expand(body)
    assert [r["title"]["fr"] for r in result.data] == ["Avant", "Après"]
    assert result.stats["read_event_by_event"] is True


def test_calendar_that_fails_as_a_whole_is_read_event_by_event():
    """A stray END line makes the whole calendar fail; each VEVENT is then parsed alone."""
    body = calendar("UID:a\nDTSTART:20260101T100000Z\nSUMMARY:Un") + b"END:VCALENDAR\r\n"
    result = expand(body)
    assert [r["title"]["fr"] for r in result.data] == ["Un"]
    assert result.stats["read_event_by_event"] is True


def test_not_a_calendar_is_a_clear_failure():
    """An HTML error page instead of a calendar raises, so the last good snapshot is kept."""
    with pytest.raises(ValueError, match="not an iCalendar"):
        expand(b"<html><body>502 Bad Gateway</body></html>")


def test_byte_order_mark_is_ignored():
    """A UTF-8 BOM before BEGIN:VCALENDAR does not hide the calendar."""
    body = b"\xef\xbb\xbf" + calendar("UID:a\nDTSTART:20260101T100000Z\nSUMMARY:Fête")
    result = expand(body)
    assert result.data[0]["title"] == {"fr": "Fête"}
    assert result.stats["encoding"] == "utf-8"


def test_latin1_calendar_is_decoded():
    """A Latin-1 feed reads its accents right, with an issue saying it is not UTF-8."""
    body = calendar("UID:a\nDTSTART:20260101T100000Z\nSUMMARY:Fête à l'Hôtel de Ville")
    result = expand(body.decode().encode("latin-1"))
    assert result.data[0]["title"] == {"fr": "Fête à l'Hôtel de Ville"}
    assert result.stats["encoding"] == "cp1252"
    assert any("not UTF-8" in issue for issue in result.issues)


def test_damaged_utf8_real_file_stays_utf8():
    """ical4j's 1106817412.ics has a few broken bytes in Japanese text: read as UTF-8 anyway."""
    result = expand(shared_file("ical4j-valid/1106817412.ics"))
    assert result.record_count == 1
    assert "2005年" in result.data[0]["title"]["fr"]


def test_html_description_is_sanitised_with_a_plain_text_twin():
    """<script> and handlers go, links and emphasis stay; the plain text has no tags."""
    body = calendar(
        "UID:h\nDTSTART:20260101T100000Z\nSUMMARY:Concert\n"
        'DESCRIPTION:<p>Entrée <b>libre</b> <a href="https://ville.fr" onclick="x()">infos</a>'
        "</p><script>alert(1)</script>"
    )
    record = expand(body).data[0]
    html = record["description_html"]["fr"]
    assert "<script" not in html and "onclick" not in html and "alert" not in html
    assert "<b>libre</b>" in html and 'href="https://ville.fr"' in html
    assert record["description"]["fr"] == "Entrée libre infos"


def test_plain_description_gets_escaped_html():
    """A plain-text DESCRIPTION keeps its text and gets an escaped HTML version with breaks."""
    body = calendar("UID:p\nDTSTART:20260101T100000Z\nSUMMARY:T\nDESCRIPTION:a < b\\nligne 2")
    record = expand(body).data[0]
    assert record["description"]["fr"] == "a < b\nligne 2"
    assert record["description_html"]["fr"] == "<p>a &lt; b<br>ligne 2</p>"


def test_html_in_real_google_descriptions_is_sanitised():
    """Google's machbar feed carries HTML descriptions: served sanitised, with plain text."""
    result = expand(shared_file("python-recurring-ical-events/machbar_16_feb_2019.ics"))
    with_html = [r for r in result.data if "<" in (r["description_html"].get("fr") or "")]
    assert with_html
    for record in with_html:
        assert "<script" not in record["description_html"]["fr"]
        assert "<p>" not in record["description"]["fr"]


def test_exploding_rrule_is_bounded_by_window_and_caps():
    """FREQ=SECONDLY with no end is cut to the occurrence cap without expanding the window."""
    body = calendar("UID:bomb\nDTSTART:20260101T000000Z\nRRULE:FREQ=SECONDLY\nSUMMARY:Bombe")
    result = expand(
        body, "2026-01-01T00:00:00+00:00", "2026-07-01T00:00:00+00:00", max_occurrences=5000
    )
    assert result.record_count == 5000
    assert result.stats["truncated_series"] == 1
    assert any("too densely" in issue for issue in result.issues)


def test_occurrence_cap_across_series_is_stated():
    """Many daily series over a long window stop at max_occurrences, and say so."""
    events = [
        f"UID:e{i}\nDTSTART:20260101T{10 + i % 10:02d}0000Z\nRRULE:FREQ=DAILY\nSUMMARY:E{i}"
        for i in range(20)
    ]
    result = expand(
        calendar(*events),
        "2026-01-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
        max_occurrences=1000,
    )
    assert result.record_count == 1000
    assert result.stats["occurrences_cap_hit"] is True


def test_event_cap_is_stated():
    """Past max_events, further VEVENTs are not expanded and the status says so."""
    events = [f"UID:e{i}\nDTSTART:20260101T100000Z\nSUMMARY:E{i}" for i in range(30)]
    result = expand(calendar(*events), max_events=10)
    assert result.record_count == 10
    assert result.stats["events_cap_hit"] is True
    assert any("event cap" in issue for issue in result.issues)


def test_window_bounds_the_expansion():
    """A daily series with no end only yields the days inside the window."""
    body = calendar("UID:d\nDTSTART;TZID=Europe/Paris:20200101T090000\nRRULE:FREQ=DAILY\nSUMMARY:D")
    result = expand(body, "2026-01-01T00:00:00+01:00", "2026-01-08T00:00:00+01:00")
    assert result.record_count == 7


def test_categories_and_source_defaults():
    """CATEGORIES (with an escaped comma) follow the source's default categories."""
    body = calendar("UID:k\nDTSTART:20260101T100000Z\nSUMMARY:K\nCATEGORIES:Musique,Rock\\, pop")
    result = expand(body, default_categories=("culture",))
    assert result.data[0]["categories"] == ["culture", "Musique", "Rock, pop"]


async def test_connector_fetches_and_expands_around_the_pinned_clock(upstream):
    """The ics type fetches over HTTP and expands around context.clock.now()."""
    body = calendar("UID:d\nDTSTART;TZID=Europe/Paris:20200101T090000\nRRULE:FREQ=DAILY\nSUMMARY:D")
    from upstream_server import Reply

    upstream.route("/cal.ics", Reply(body=body, content_type="text/calendar"))
    config = IcsConfig.model_validate(
        {
            "id": "mairie",
            "type": "ics",
            "url": upstream.url("/cal.ics"),
            "channel": "agenda",
            "window_past": "1d",
            "window_future": "7d",
        }
    )
    connector = IcsConnector(config, context("2026-03-01T12:00:00+01:00"))
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        fetched = await connector.fetch(fetcher, None)
    result = connector.parse(fetched.body)
    assert result.record_count == 8  # 1 to 8 March, 09:00 each day
    assert {r["channel"] for r in result.data} == {"agenda"}
    assert result.data[0]["id"] == "mairie:d:20260301T080000Z"
    assert result.data[0]["start"] == "2026-03-01T09:00:00+01:00"

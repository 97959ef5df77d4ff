"""Calendars: calendar.txt and calendar_dates.txt, together or alone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from feeds import PARIS, simple_feed

from connectors.gtfs import compile_feed

PARIS_TZ = ZoneInfo(PARIS)


def _count(tt, day: date) -> int:
    at = datetime(day.year, day.month, day.day, 6, 0, tzinfo=PARIS_TZ)
    return len(tt.departures("A", at, 6 * 3600).departures)


def _weekday_feed():
    feed = simple_feed()
    feed.calendar = None
    feed.weekly("S", "20260401", "20260630", days="1111100")
    return feed.trip("T", [("A", "08:00:00"), ("B", "08:10:00")])


def test_calendar_dates_only_feed():
    """A feed without calendar.txt runs exactly on its calendar_dates additions."""
    feed = simple_feed()
    feed.calendar = None
    feed.exception("S", "20260505", added=True).exception("S", "20260507", added=True)
    tt = compile_feed(feed.trip("T", [("A", "08:00:00"), ("B", "08:10:00")]).to_zip())
    assert [_count(tt, date(2026, 5, d)) for d in (4, 5, 6, 7, 8)] == [0, 1, 0, 1, 0]
    assert (tt.feed_start_date, tt.feed_end_date) == (date(2026, 5, 5), date(2026, 5, 7))
    assert tt.service_dates(tt.trip_index["T"]) == [date(2026, 5, 5), date(2026, 5, 7)]


def test_removed_holiday_has_no_service():
    """A calendar_dates removal (1 May, a Friday) cancels the weekday service that day."""
    feed = _weekday_feed().exception("S", "20260501", added=False)
    tt = compile_feed(feed.to_zip())
    assert _count(tt, date(2026, 4, 30)) == 1
    assert _count(tt, date(2026, 5, 1)) == 0
    board = tt.departures("A", datetime(2026, 5, 1, 6, 0, tzinfo=PARIS_TZ), 6 * 3600)
    assert board.explanation == "no_service_that_day"


def test_added_date_runs_outside_the_weekly_pattern():
    """A calendar_dates addition (a Saturday) runs although the weekly pattern excludes it."""
    feed = _weekday_feed().exception("S", "20260502", added=True)
    tt = compile_feed(feed.to_zip())
    assert _count(tt, date(2026, 5, 2)) == 1
    assert _count(tt, date(2026, 5, 9)) == 0


def test_weekly_pattern_respects_start_and_end_dates():
    """calendar.txt runs on its weekdays between start_date and end_date inclusive."""
    tt = compile_feed(_weekday_feed().to_zip())
    assert _count(tt, date(2026, 3, 31)) == 0
    assert _count(tt, date(2026, 4, 1)) == 1
    assert _count(tt, date(2026, 6, 30)) == 1
    assert _count(tt, date(2026, 7, 1)) == 0

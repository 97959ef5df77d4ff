"""Service-day semantics: times after midnight, DST days, one zone per agency."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from feeds import NEW_YORK, PARIS, FeedBuilder, simple_feed

from connectors.gtfs import compile_feed

PARIS_TZ = ZoneInfo(PARIS)


def _times(board) -> list[str]:
    return [d.departure.isoformat() for d in board.departures]


def test_after_midnight_departure_belongs_to_previous_service_day():
    """A 25:10 departure of Tuesday's service is found by a query at 01:00 on Wednesday."""
    feed = simple_feed()
    feed.calendar = None
    feed.exception("S", "20260310", added=True)  # Tuesday only
    feed.trip("T", [("A", "24:50:00"), ("B", "25:10:00"), ("C", "25:30:00")])
    tt = compile_feed(feed.to_zip())
    board = tt.departures("B", datetime(2026, 3, 11, 1, 0, tzinfo=PARIS_TZ), 3600)
    assert _times(board) == ["2026-03-11T01:10:00+01:00"]
    assert board.departures[0].service_date == date(2026, 3, 10)
    # The same clock time one day earlier belongs to Monday's service, which does not run.
    earlier = tt.departures("B", datetime(2026, 3, 10, 1, 0, tzinfo=PARIS_TZ), 3600)
    assert earlier.departures == []


def test_times_beyond_48_hours_are_reached_from_the_query_day():
    """A 49:00 call (a feed can go past 48:00) is found two days after its service date."""
    feed = simple_feed()
    feed.calendar = None
    feed.exception("S", "20260310", added=True)
    feed.trip("T", [("A", "48:30:00"), ("B", "49:00:00"), ("C", "49:30:00")])
    tt = compile_feed(feed.to_zip())
    board = tt.departures("B", datetime(2026, 3, 12, 0, 45, tzinfo=PARIS_TZ), 1800)
    assert _times(board) == ["2026-03-12T01:00:00+01:00"]
    assert board.departures[0].service_date == date(2026, 3, 10)


def _dst_feed(day: str) -> FeedBuilder:
    feed = simple_feed()
    feed.calendar = None
    feed.exception("S", day, added=True)
    for hhmm in ("01:30", "02:30", "03:30", "12:00"):
        feed.trip(f"T{hhmm}", [("A", f"{hhmm}:00"), ("B", f"{hhmm[:3]}50:00")])
    return feed


def test_dst_spring_forward_day_uses_noon_minus_twelve_hours():
    """On 2026-03-29 in Paris, GTFS times count from 23:00 the evening before (noon − 12 h)."""
    tt = compile_feed(_dst_feed("20260329").to_zip())
    board = tt.departures("A", datetime(2026, 3, 28, 22, 0, tzinfo=UTC), 86400)
    assert _times(board) == [
        "2026-03-29T00:30:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T12:00:00+02:00",
    ]
    utc = [d.departure.astimezone(UTC).strftime("%H:%M") for d in board.departures]
    assert utc == ["23:30", "00:30", "01:30", "10:00"]
    assert {d.service_date for d in board.departures} == {date(2026, 3, 29)}


def test_dst_fall_back_day_uses_noon_minus_twelve_hours():
    """On 2026-10-25 in Paris, GTFS times count from 01:00 CEST (noon − 12 h)."""
    tt = compile_feed(_dst_feed("20261025").to_zip())
    board = tt.departures("A", datetime(2026, 10, 24, 22, 0, tzinfo=UTC), 86400)
    assert _times(board) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:30:00+01:00",
        "2026-10-25T12:00:00+01:00",
    ]
    utc = [d.departure.astimezone(UTC).strftime("%H:%M") for d in board.departures]
    assert utc == ["00:30", "01:30", "02:30", "11:00"]


def test_each_agency_uses_its_own_time_zone():
    """Two agencies' 08:00 departures at one shared stop land at 08:00 in their own zones."""
    feed = (
        FeedBuilder()
        .agency("P", PARIS)
        .agency("N", NEW_YORK)
        .stop("X", "Shared")
        .stop("Y", "Other")
        .route("RP", "P")
        .route("RN", "N")
        .weekly("S", "20260101", "20261231")
        .trip("TP", [("X", "08:00:00"), ("Y", "08:30:00")], route="RP")
        .trip("TN", [("X", "08:00:00"), ("Y", "08:30:00")], route="RN")
    )
    tt = compile_feed(feed.to_zip())
    board = tt.departures("X", datetime(2026, 6, 10, 0, 0, tzinfo=UTC), 86400)
    got = {d.route_id: d.departure.isoformat() for d in board.departures}
    assert got == {"RP": "2026-06-10T08:00:00+02:00", "RN": "2026-06-10T08:00:00-04:00"}
    by_route = {d.route_id: d for d in board.departures}
    assert by_route["RN"].timezone == NEW_YORK
    gap = by_route["RN"].departure - by_route["RP"].departure
    assert gap == timedelta(hours=6)


def test_query_time_in_any_zone_gives_the_same_answer():
    """The query instant matters, not the zone it is written in."""
    feed = simple_feed().trip("T", [("A", "09:00:00"), ("B", "09:10:00")])
    tt = compile_feed(feed.to_zip())
    paris = tt.departures("A", datetime(2026, 6, 10, 8, 30, tzinfo=PARIS_TZ), 3600)
    tokyo = tt.departures(
        "A", datetime(2026, 6, 10, 8, 30, tzinfo=PARIS_TZ).astimezone(ZoneInfo("Asia/Tokyo")), 3600
    )
    assert _times(paris) == _times(tokyo) == ["2026-06-10T09:00:00+02:00"]

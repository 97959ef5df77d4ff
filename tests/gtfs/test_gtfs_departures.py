"""The departures board: stations, boarding rules, explanations, filters, helpers."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from feeds import PARIS, FeedBuilder, simple_feed

from connectors.gtfs import compile_feed
from connectors.gtfs.departures import board_rows
from connectors.gtfs.views import (
    feed_views,
    scheduled_departures_json,
    scheduled_departures_serialized,
)

PARIS_TZ = ZoneInfo(PARIS)
MORNING = datetime(2026, 6, 10, 7, 0, tzinfo=PARIS_TZ)


def _station_feed() -> FeedBuilder:
    return (
        FeedBuilder()
        .agency()
        .stop("ST", "Gare Lille-Flandres", location_type=1, wheelchair=1)
        .stop("P1", "Gare Lille-Flandres", parent="ST", platform="1")
        .stop("P2", "Gare Lille-Flandres", parent="ST", platform="2", wheelchair=2)
        .stop("Z", "Roubaix")
        .route("R")
        .weekly("S", "20260101", "20261231")
        .trip("T1", [("P1", "08:00:00"), ("Z", "08:20:00")], headsign="Roubaix", direction=0)
        .trip("T2", [("P2", "08:05:00"), ("Z", "08:25:00")], headsign="Roubaix", direction=0)
        .trip("T3", [("Z", "08:30:00"), ("P1", "08:50:00")], headsign="Lille", direction=1)
    )


def test_station_gathers_its_platforms():
    """Asking for a station returns the departures of its child platforms, with platform codes."""
    tt = compile_feed(_station_feed().to_zip())
    board = tt.departures("ST", MORNING, 3 * 3600)
    assert [(d.trip_id, d.stop_id, d.platform_code) for d in board.departures] == [
        ("T1", "P1", "1"),
        ("T2", "P2", "2"),
    ]
    # A platform without wheelchair information inherits its station's; an explicit value wins.
    assert tt.stop_wheelchair[tt.stop("P1")] == 1
    assert tt.stop_wheelchair[tt.stop("P2")] == 2


def test_terminus_arrivals_are_not_departures():
    """A run's last stop is left out (riders cannot board), and flagged when asked for."""
    tt = compile_feed(_station_feed().to_zip())
    board = tt.departures("Z", datetime(2026, 6, 10, 8, 15, tzinfo=PARIS_TZ), 3600)
    assert [d.trip_id for d in board.departures] == ["T3"]
    everything = tt.departures(
        "Z", datetime(2026, 6, 10, 8, 15, tzinfo=PARIS_TZ), 3600, include_non_boarding=True
    )
    assert [(d.trip_id, d.is_last_stop) for d in everything.departures] == [
        ("T1", True),
        ("T2", True),
        ("T3", False),
    ]


def test_terminus_explanation():
    """A stop where every run ends explains its empty board as a terminus."""
    feed = simple_feed().trip("T", [("A", "08:00:00"), ("C", "08:30:00")])
    tt = compile_feed(feed.to_zip())
    board = tt.departures("C", MORNING, 4 * 3600)
    assert board.departures == []
    assert board.explanation == "terminus"


def test_no_service_explanation():
    """A stop whose services do not run that day says so."""
    feed = simple_feed()
    feed.calendar = None
    feed.weekly("S", "20260101", "20261231", days="1111100")
    tt = compile_feed(feed.trip("T", [("A", "08:00:00"), ("B", "08:30:00")]).to_zip())
    sunday = datetime(2026, 6, 14, 7, 0, tzinfo=PARIS_TZ)
    assert tt.departures("A", sunday, 4 * 3600).explanation == "no_service_that_day"


def test_outside_validity_explanation():
    """A date outside the calendar's range is reported as outside the feed's validity."""
    tt = compile_feed(simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:30:00")]).to_zip())
    board = tt.departures("A", datetime(2027, 2, 1, 7, 0, tzinfo=PARIS_TZ), 3600)
    assert board.explanation == "outside_feed_validity"
    assert (tt.feed_start_date, tt.feed_end_date) == (date(2026, 1, 1), date(2026, 12, 31))


def test_no_more_departures_in_window_explanation():
    """After the last departure of a running day, the window is simply empty."""
    tt = compile_feed(simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:30:00")]).to_zip())
    board = tt.departures("A", datetime(2026, 6, 10, 20, 0, tzinfo=PARIS_TZ), 3600)
    assert board.explanation == "no_more_departures_in_window"


def test_non_empty_board_has_no_explanation():
    """A board with departures carries no explanation."""
    tt = compile_feed(simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:30:00")]).to_zip())
    assert tt.departures("A", MORNING, 3 * 3600).explanation is None


def test_stop_headsign_overrides_trip_headsign():
    """stop_headsign, where given, replaces trip_headsign for that call."""
    feed = simple_feed().trip(
        "T",
        [("A", "08:00:00"), ("B", "08:10:00"), ("C", "08:20:00")],
        headsign="Charlie",
        stop_headsigns={1: "Bravo puis Charlie"},
    )
    tt = compile_feed(feed.to_zip())
    assert tt.departures("A", MORNING, 3 * 3600).departures[0].headsign == "Bravo puis Charlie"
    assert tt.departures("B", MORNING, 3 * 3600).departures[0].headsign == "Charlie"


def test_departure_carries_trip_and_route_details():
    """A departure names its trip, route, direction, sequence, accessibility and times."""
    feed = simple_feed().trip(
        "T", [("A", "08:00:00", "08:02:00"), ("B", "08:10:00")], direction=1, wheelchair=1
    )
    tt = compile_feed(feed.to_zip())
    (dep,) = tt.departures("A", MORNING, 3 * 3600).departures
    assert (dep.trip_id, dep.route_id, dep.stop_id, dep.stop_sequence) == ("T", "R", "A", 1)
    assert (dep.direction_id, dep.wheelchair_accessible) == (1, 1)
    assert (dep.pickup_type, dep.drop_off_type, dep.is_last_stop) == (0, 0, False)
    assert dep.arrival.isoformat() == "2026-06-10T08:00:00+02:00"
    assert dep.departure.isoformat() == "2026-06-10T08:02:00+02:00"
    assert dep.service_date == date(2026, 6, 10)


def test_window_limit_and_order():
    """Results are sorted by time, cut to the window and to the limit."""
    feed = simple_feed()
    for i in range(10):
        feed.trip(f"T{i}", [("A", f"{8 + i:02d}:00:00"), ("B", f"{8 + i:02d}:30:00")])
    tt = compile_feed(feed.to_zip())
    board = tt.departures("A", MORNING, 4 * 3600 + 1, limit=3)
    assert [d.trip_id for d in board.departures] == ["T0", "T1", "T2"]
    board = tt.departures("A", MORNING, 4 * 3600 + 1, limit=100)
    assert [d.trip_id for d in board.departures] == ["T0", "T1", "T2", "T3"]


def test_route_filter():
    """route_filter keeps only the named routes."""
    feed = simple_feed().route("R2")
    feed.trip("T1", [("A", "08:00:00"), ("B", "08:10:00")])
    feed.trip("T2", [("A", "08:05:00"), ("B", "08:15:00")], route="R2")
    tt = compile_feed(feed.to_zip())
    board = tt.departures("A", MORNING, 3 * 3600, route_filter={"R2"})
    assert [d.trip_id for d in board.departures] == ["T2"]


def test_next_by_route_direction():
    """The helper gives the next N departures per (route, direction)."""
    feed = simple_feed().route("R2")
    for i in range(4):
        feed.trip(f"R{i}", [("A", f"08:{i}0:00"), ("B", "09:00:00")], direction=0)
        feed.trip(f"Q{i}", [("A", f"08:{i}5:00"), ("C", "09:00:00")], route="R2")
    tt = compile_feed(feed.to_zip())
    groups = tt.next_by_route_direction("A", MORNING, per_group=2)
    assert {k: [d.trip_id for d in v] for k, v in groups.items()} == {
        ("R", 0): ["R0", "R1"],
        ("R2", None): ["Q0", "Q1"],
    }


def test_route_directions_give_the_most_common_pattern():
    """Per route and direction, the stop pattern most trips follow, in order."""
    feed = simple_feed()
    feed.trip("T1", [("A", "08:00:00"), ("B", "08:10:00"), ("C", "08:20:00")], direction=0)
    feed.trip("T2", [("A", "09:00:00"), ("B", "09:10:00"), ("C", "09:20:00")], direction=0)
    feed.trip("T3", [("A", "10:00:00"), ("C", "10:20:00")], direction=0, headsign="Express")
    feed.trip("T4", [("C", "11:00:00"), ("A", "11:20:00")], direction=1, headsign="Alpha")
    tt = compile_feed(feed.to_zip())
    (out, back) = tt.route_directions(tt.route_index["R"])
    assert (out.direction_id, out.stop_ids, out.pattern_trips, out.direction_trips) == (
        0,
        ["A", "B", "C"],
        2,
        3,
    )
    assert (back.direction_id, back.stop_ids, back.headsign) == (1, ["C", "A"], "Alpha")
    assert tt.routes_at_stop(tt.stop("B")) == [tt.route_index["R"]]


def test_naive_datetime_is_refused():
    """A naive datetime is ambiguous across zones, so it is refused."""
    tt = compile_feed(simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:30:00")]).to_zip())
    with pytest.raises(ValueError, match="timezone-aware"):
        tt.departures("A", datetime(2026, 6, 10, 7, 0), 3600)


def test_unknown_stop_raises_key_error():
    """An unknown stop id raises KeyError (the API turns it into a 404)."""
    tt = compile_feed(simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:30:00")]).to_zip())
    with pytest.raises(KeyError):
        tt.departures("NOPE", MORNING)


def _tied_feed() -> tuple[FeedBuilder, list[tuple[str, str, list[tuple[str, int]]]]]:
    """A station with two platforms where many departures share their second, on three
    lines, with after-midnight trips (so one board spans two service days and two slices),
    and the (trip, route, [(stop, seconds)]) it was made of, for a reference to read."""
    builder = (
        FeedBuilder()
        .agency()
        .stop("ST", "Gare", location_type=1)
        .stop("P1", "Gare", parent="ST", platform="1")
        .stop("P2", "Gare", parent="ST", platform="2")
        .stop("Z", "Roubaix")
        .route("R1")
        .route("R2")
        .route("R3")
        .weekly("S", "20260101", "20261231")
    )
    trips = []
    for k in range(40):
        # Every departure at 22:00, 22:10... or at 24:xx/25:xx (the next calendar day): three
        # lines leave each platform at the same second, in an order unrelated to their ids.
        seconds = 22 * 3600 + (k // 6) * 600
        route = f"R{3 - k % 3}"
        platform = "P1" if k % 2 else "P2"
        calls = [(platform, seconds), ("Z", seconds + 900)]
        if k % 7 == 0:
            calls = [("Z", seconds - 900), (platform, seconds)]  # ends here: not boardable
        trips.append((f"T{k:02}", route, calls))

    def hms(s: int) -> str:
        return f"{s // 3600:02}:{s // 60 % 60:02}:{s % 60:02}"

    for trip_id, route, calls in trips:
        builder.trip(trip_id, [(stop, hms(s)) for stop, s in calls], route=route)
    return builder, trips


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 50])
@pytest.mark.parametrize("stop", ["ST", "P1", "P2"])
def test_ties_at_the_cut_are_broken_like_the_whole_board(stop, limit):
    """Departures at the same second are ordered by line then stop_sequence whether the
    board is cut among them or not, on one platform (one sorted slice) and on a station
    (several slices and service days merged): the same as a plain sort of every call."""
    builder, trips = _tied_feed()
    tt = compile_feed(builder.to_zip())
    platforms = {"ST": {"P1", "P2"}, "P1": {"P1"}, "P2": {"P2"}}[stop]
    route_order = {route: tt.route_index[route] for route in ("R1", "R2", "R3")}
    for at in (
        datetime(2026, 6, 10, 21, 55, tzinfo=PARIS_TZ),
        datetime(2026, 6, 10, 22, 10, tzinfo=PARIS_TZ),
        datetime(2026, 6, 11, 0, 5, tzinfo=PARIS_TZ),
    ):
        expected = []
        for day in (date(2026, 6, 9), date(2026, 6, 10), date(2026, 6, 11)):
            origin = datetime(day.year, day.month, day.day, 12, tzinfo=PARIS_TZ).timestamp()
            for trip_id, route, calls in trips:
                for seq, (call_stop, seconds) in enumerate(calls, start=1):
                    when = origin - 43200 + seconds
                    boardable = seq < len(calls)
                    if call_stop in platforms and boardable and 0 <= when - at.timestamp() < 7200:
                        expected.append((when, route_order[route], seq, trip_id, day))
        expected.sort(key=lambda call: call[:3])
        board = tt.departures(stop, at, 7200, limit=limit).departures
        got = [(d.departure.timestamp(), d.route_index, d.stop_sequence) for d in board]
        assert got == [call[:3] for call in expected[:limit]], (at, stop, limit)
        assert len(board) == min(limit, len(expected))


def test_serialised_calls_are_the_bytes_of_the_calls(monkeypatch):
    """The fragments a board sends are byte for byte the JSON of its call dicts, also when
    the memo of fragments starts over while a board is being built."""
    builder, _ = _tied_feed()
    tt = compile_feed(builder.to_zip())
    at = datetime(2026, 6, 10, 21, 55, tzinfo=PARIS_TZ)
    rows, days, _ = board_rows(tt, "ST", at, 7200, limit=30)
    views = feed_views("f", tt)
    monkeypatch.setattr(views, "MAX_CALLS", 25)  # the second board overflows the memo
    for _ in range(2):
        fragments = scheduled_departures_serialized("f", tt, rows, days)
        calls = scheduled_departures_json("f", tt, rows, days)
        assert len(fragments) == len(calls) == 30
        assert orjson.dumps(fragments) == orjson.dumps(calls)
        rows, days = rows[::-1], days[::-1]

"""Real feeds: scheduled departures equal what gtfs-kit computes independently, to the second.

For each feed, a few stops (the busiest, one with times past 24:00, a quiet one) on a
weekday, a Sunday and a calendar_dates exception day are compared. gtfs-kit lists the
stop_times of trips active on a date; we ask the engine for everything of that service day
and check the instants against "noon minus 12 h" computed here, independently.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.gtfs import Timetable, compile_feed

gk = pytest.importorskip("gtfs_kit", reason="gtfs-kit is the independent reference")

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "gtfs-static"
FEEDS = {
    "caltrain": "caltrain-2017-2019/caltrain.zip",
    "bart-2023": "bart-2023/bart-new.zip",
    "cairns": "cairns-translink-2014/cairns_gtfs.zip",
    "stq-quebec": "stq-quebec-ferries-2026/stq-qc-ca.gtfs.zip",
}

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared GTFS feeds not found at {DATA}")


def _secs(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


@pytest.fixture(scope="module", params=sorted(FEEDS))
def feeds(request):
    path = DATA / FEEDS[request.param]
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return request.param, compile_feed(path), gk.read_feed(path, dist_units="km")


def _pick_dates(ref) -> dict[str, str]:
    dates = sorted(ref.get_dates())
    middle = [d for d in dates if d >= dates[len(dates) // 4]]
    picked = {
        "weekday": next(d for d in middle if date.fromisoformat(d).weekday() == 2),
        "sunday": next(d for d in middle if date.fromisoformat(d).weekday() == 6),
    }
    if ref.calendar_dates is not None and len(ref.calendar_dates):
        picked["exception"] = sorted(ref.calendar_dates["date"])[0]
    return picked


def _pick_stops(ref) -> list[str]:
    st = ref.stop_times
    counts = st["stop_id"].value_counts()
    timed = st.dropna(subset=["departure_time"])
    late = timed.loc[timed["departure_time"].map(_secs) >= 86400]
    picks = [*counts.index[:2], counts.index[len(counts) // 2]]
    if len(late):
        picks.append(late["stop_id"].value_counts().index[0])
    return list(dict.fromkeys(picks))


def _expected(
    ref, stop_id: str, day: str, zone: ZoneInfo
) -> dict[tuple[str, int], datetime | None]:
    """gtfs-kit's calls at the stop that day; None where the feed leaves the time empty."""
    table = gk.build_stop_timetable(ref, stop_id, [day])
    d = date.fromisoformat(day)
    origin = datetime(d.year, d.month, d.day, 12, tzinfo=zone) - timedelta(hours=12)
    return {
        (row.trip_id, int(row.stop_sequence)): (
            None
            if isinstance(row.departure_time, float)
            or row.departure_time is None
            or row.departure_time != row.departure_time
            else origin + timedelta(seconds=_secs(row.departure_time))
        )
        for row in table.itertuples()
    }


def _ours(tt: Timetable, stop_id: str, day: str, zone: ZoneInfo) -> dict[tuple[str, int], datetime]:
    d = date.fromisoformat(day)
    origin = datetime(d.year, d.month, d.day, 12, tzinfo=zone) - timedelta(hours=12)
    board = tt.departures(stop_id, origin, tt.time_max + 1, limit=10**6, include_non_boarding=True)
    return {
        (dep.trip_id, dep.stop_sequence): dep.departure
        for dep in board.departures
        if dep.service_date == d
    }


def test_departures_match_gtfs_kit(feeds):
    """Every (trip, stop_sequence, instant) of several stops and dates equals gtfs-kit's."""
    name, tt, ref = feeds
    zone = ZoneInfo(ref.agency["agency_timezone"].iloc[0])
    compared = 0
    for label, day in _pick_dates(ref).items():
        for stop_id in _pick_stops(ref):
            expected = _expected(ref, stop_id, day, zone)
            ours = _ours(tt, stop_id, day, zone)
            where = f"{name} stop {stop_id} on {day} ({label})"
            assert ours.keys() == expected.keys(), where
            # Untimed calls are interpolated by the engine; gtfs-kit leaves them empty.
            timed = {k: v for k, v in expected.items() if v is not None}
            assert {k: ours[k] for k in timed} == timed, where
            compared += len(timed)
    assert compared > 50, f"{name}: only {compared} calls compared"


@pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")
def test_past_midnight_calls_are_found_on_the_next_calendar_day(feeds):
    """A call at 24:00 or later is returned by a query made after midnight, on the right date."""
    name, tt, ref = feeds
    zone = ZoneInfo(ref.agency["agency_timezone"].iloc[0])
    st = ref.stop_times.dropna(subset=["departure_time"])
    late_rows = st.loc[st["departure_time"].map(_secs) >= 86400]
    if not len(late_rows):
        pytest.skip(f"{name}: no call past midnight in the feed")
    # The first date on which some trip with a call past midnight runs, per gtfs-kit.
    # Three weeks cover every weekday pattern.
    dates = sorted(ref.get_dates())[:21]
    activity = gk.compute_trip_activity(ref, dates).set_index("trip_id")
    trip_id, stop_id = next(
        (row.trip_id, row.stop_id)
        for row in late_rows.itertuples()
        if activity.loc[row.trip_id].any()
    )
    day = next(d for d in dates if activity.loc[trip_id, d])
    d = date.fromisoformat(day)
    expected = _expected(ref, stop_id, day, zone)
    late = {k: v for k, v in expected.items() if v is not None and v.date() > d}
    assert late
    first = min(late.values())
    board = tt.departures(stop_id, first - timedelta(minutes=1), 120, include_non_boarding=True)
    hits = [dep for dep in board.departures if (dep.trip_id, dep.stop_sequence) in late]
    assert hits and all(dep.service_date == d for dep in hits)

"""frequencies.txt: expanded into runs, headway-based (exact_times=0) ones flagged."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from feeds import PARIS, simple_feed

from connectors.gtfs import Frequency, compile_feed

PARIS_TZ = ZoneInfo(PARIS)


def _feed(exact: int) -> bytes:
    feed = simple_feed().trip("F", [("A", "00:00:00"), ("B", "00:07:00"), ("C", "00:12:00")])
    feed.frequency("F", "08:00:00", "09:00:00", 600, exact)
    return feed.to_zip()


def test_frequencies_headway_based_expand_and_are_flagged():
    """exact_times=0: six nominal runs 08:00..08:50, each flagged "every 10 min"."""
    tt = compile_feed(_feed(0))
    board = tt.departures("B", datetime(2026, 6, 10, 7, 0, tzinfo=PARIS_TZ), 3 * 3600)
    times = [d.departure.strftime("%H:%M") for d in board.departures]
    assert times == ["08:07", "08:17", "08:27", "08:37", "08:47", "08:57"]
    assert {d.frequency for d in board.departures} == {Frequency(600, exact_times=False)}
    assert len(tt.runs_of_trip(tt.trip_index["F"])) == 6
    assert {d.trip_id for d in board.departures} == {"F"}


def test_frequencies_exact_times_expand_to_scheduled_runs():
    """exact_times=1: the same six runs, marked as exact schedules."""
    tt = compile_feed(_feed(1))
    board = tt.departures("A", datetime(2026, 6, 10, 7, 0, tzinfo=PARIS_TZ), 3 * 3600)
    times = [d.departure.strftime("%H:%M") for d in board.departures]
    assert times == ["08:00", "08:10", "08:20", "08:30", "08:40", "08:50"]
    assert {d.frequency for d in board.departures} == {Frequency(600, exact_times=True)}
    run = board.departures[1].run_index
    assert tt.run_stop_times(run) == [
        (1, "A", 29400, 29400),
        (2, "B", 29820, 29820),
        (3, "C", 30120, 30120),
    ]


def test_plain_trips_carry_no_frequency():
    """A trip absent from frequencies.txt runs once at its own times, with no frequency info."""
    tt = compile_feed(simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:10:00")]).to_zip())
    board = tt.departures("A", datetime(2026, 6, 10, 7, 0, tzinfo=PARIS_TZ), 3 * 3600)
    assert [d.frequency for d in board.departures] == [None]


def test_runs_of_each_trip_with_frequencies_and_a_trip_without_stop_times():
    """Runs by trip, in order: six for the frequency trip, one for a plain trip, none for a
    trip without stop times (and only the plain trip has an "only run")."""
    feed = simple_feed().trip("F", [("A", "00:00:00"), ("B", "00:07:00")])
    feed.frequency("F", "08:00:00", "09:00:00", 600, 1)
    feed.trip("T", [("A", "10:00:00"), ("B", "10:10:00")])
    feed.trip("EMPTY", [])
    tt = compile_feed(feed.to_zip())
    f, t, empty = (tt.trip_index[trip] for trip in ("F", "T", "EMPTY"))
    runs = tt.runs_of_trip(f)
    assert len(runs) == 6 and runs == sorted(runs)
    assert [tt.run_stop_times(run)[0][2] for run in runs] == [8 * 3600 + 600 * k for k in range(6)]
    (only,) = tt.runs_of_trip(t)
    assert tt.run_stop_times(only)[0][2] == 10 * 3600
    assert tt.runs_of_trip(empty) == []
    assert tt.runs_of_trip(len(tt.trip_ids)) == []
    single = tt.only_run_of_trips()
    assert (single[f], single[t], single[empty]) == (-1, only, -1)

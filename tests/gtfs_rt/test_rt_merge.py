"""Boards with realtime merged in: status, order, widened window, added trips, staleness."""

from __future__ import annotations

from rtfeeds import STU, TD, alert, local, message, stu, trip_update, ts, vehicle

from connectors.gtfs_rt import merge_board, realtime_departures, state_from_messages


def _board(tt, *entities, at=(8, 0), now=None, feed_at=None, stop="A", **kwargs):
    feed_ts = ts(*at) if feed_at is None else ts(*feed_at)
    state = state_from_messages(tt, [message(*entities, timestamp=feed_ts)])
    now_dt = local(*(now or at))
    return realtime_departures(tt, state, stop, local(*at), now_dt, **kwargs)


def _rows(board):
    return [
        (d.trip_id, d.expected.strftime("%H:%M") if d.expected else None, d.status)
        for d in board.departures
    ]


def test_late_trip_scheduled_before_the_board_start_still_appears(tt):
    """T1 left A at 08:00 on paper, 10 min late: the 08:05 board shows it at 08:10."""
    board = _board(tt, trip_update("T1", stu(1, "A", dep_delay=600)), at=(8, 5))
    assert (
        _rows(board)
        == [
            ("Q", "08:05", "scheduled"),
            ("T1", "08:10", "delayed"),
            ("T2", "08:30", "scheduled"),
            ("LOOP", "09:00", "scheduled"),
            ("LOOP", "09:20", "scheduled"),
            ("F", "10:00", "scheduled"),
            ("F", "10:10", "scheduled"),
        ][: len(board.departures)]
    )
    assert board.departures[1].delay_s == 600 and board.departures[1].realtime
    assert board.realtime and not board.stale


def test_board_is_sorted_by_expected_time(tt):
    """T1 40 min late at A leaves after T2 and is listed after it."""
    board = _board(tt, trip_update("T1", stu(1, "A", dep_delay=2400)), duration_s=7200)
    assert [d.trip_id for d in board.departures][:4] == ["Q", "T2", "T1", "LOOP"]


def test_on_time_threshold_is_a_parameter(tt):
    """45 s late is on time with the default 60 s threshold, delayed with 30 s."""
    entity = trip_update("T1", stu(1, "A", dep_delay=45))
    assert _board(tt, entity).departures[0].status == "on_time"
    strict = _board(tt, entity, on_time_threshold_s=30)
    assert strict.departures[0].status == "delayed"


def test_early_departure_status(tt):
    """Two minutes ahead of schedule is "early" with a negative delay."""
    board = _board(tt, trip_update("T2", stu(1, "A", dep=ts(8, 28))))
    t2 = next(d for d in board.departures if d.trip_id == "T2")
    assert (t2.status, t2.delay_s) == ("early", -120)


def test_cancelled_trips_shown_or_dropped_on_request(tt):
    """A CANCELED trip stays in its slot as cancelled, unless include_cancelled=False."""
    entity = trip_update("T2", rel=TD.CANCELED)
    shown = _board(tt, entity)
    t2 = next(d for d in shown.departures if d.trip_id == "T2")
    assert (t2.status, t2.expected, t2.realtime) == ("cancelled", None, True)
    hidden = _board(tt, entity, include_cancelled=False)
    assert "T2" not in {d.trip_id for d in hidden.departures}


def test_deleted_trips_are_hidden(tt):
    """A DELETED trip disappears from the board."""
    board = _board(tt, trip_update("T2", rel=TD.DELETED))
    assert "T2" not in {d.trip_id for d in board.departures}


def test_skipped_and_no_data_calls_on_the_board(tt):
    """At B: T1 skips it (skipped, no time); T2 has NO_DATA (its schedule, not realtime)."""
    board = _board(
        tt,
        trip_update("T1", stu(2, "B", rel=STU.SKIPPED)),
        trip_update("T2", stu(2, "B", rel=STU.NO_DATA)),
        stop="B",
    )
    rows = {d.trip_id: (d.status, d.expected, d.realtime) for d in board.departures}
    assert rows["T1"] == ("skipped", None, True)
    assert rows["T2"] == ("no_data", local(8, 40), False)


def test_added_trip_is_inserted_at_its_stops(tt):
    """An ADDED trip shows at A with status added and its route; not at its last stop C."""
    entity = trip_update(
        "EXTRA-1",
        stu(1, "A", dep=ts(8, 7)),
        stu(2, "C", arr=ts(8, 25)),
        rel=TD.ADDED,
        route_id="R",
    )
    board = _board(tt, entity)
    extra = next(d for d in board.departures if d.trip_id == "EXTRA-1")
    assert (extra.status, extra.route_id, extra.expected, extra.scheduled, extra.static) == (
        "added",
        "R",
        local(8, 7),
        None,
        None,
    )
    assert "EXTRA-1" not in {d.trip_id for d in _board(tt, entity, stop="C").departures}
    assert "EXTRA-1" not in {d.trip_id for d in _board(tt, entity, route_filter={"Q"}).departures}


def test_duplicated_trip_is_inserted_as_added(tt):
    """A DUPLICATED copy of T1 at 08:45 shows at A as "added", next to the original."""
    entity = trip_update(
        "T1",
        rel=TD.DUPLICATED,
        properties={"trip_id": "T1-bis", "start_time": "08:45:00", "start_date": "20260610"},
    )
    rows = _rows(_board(tt, entity))
    assert ("T1", "08:00", "scheduled") in rows
    assert ("T1-bis", "08:45", "added") in rows


def test_stale_feed_falls_back_to_the_schedule(tt):
    """A feed 10 min old at query time: plain schedule, realtime false, stale true."""
    board = _board(tt, trip_update("T1", stu(1, "A", dep_delay=600)), at=(8, 0), feed_at=(7, 50))
    first = board.departures[0]
    assert (first.trip_id, first.expected, first.status, first.realtime) == (
        "T1",
        local(8, 0),
        "scheduled",
        False,
    )
    assert board.stale and not board.realtime
    assert board.staleness.trip_updates_age_s == 600


def test_vehicle_and_alert_ids_are_attached(tt):
    """A vehicle position on T1 gives its id; alerts on route R and stop A are listed."""
    board = _board(
        tt,
        trip_update("T1", stu(1, "A", dep_delay=60)),
        vehicle("bus-7", trip_id="T1", timestamp=ts(7, 59)),
        alert("on-R", header=[("fr", "Ligne R déviée")], route_id="R"),
        alert("on-B", header=[("fr", "Arrêt B fermé")], stop_id="B"),
        alert("on-A", header=[("fr", "Arrêt A déplacé")], stop_id="A"),
        alert("later", header=[("fr", "Demain")], route_id="R", periods=[(ts(20, 0), None)]),
    )
    t1 = next(d for d in board.departures if d.trip_id == "T1")
    q = next(d for d in board.departures if d.trip_id == "Q")
    assert (t1.vehicle_id, t1.alert_ids) == ("bus-7", ("on-R", "on-A"))
    assert (q.vehicle_id, q.alert_ids) == (None, ("on-A",))


def test_merge_board_accepts_any_static_board(tt):
    """merge_board works on a board the caller queried itself."""
    state = state_from_messages(tt, [message(trip_update("T1", stu(1, "A", dep_delay=120)))])
    board = tt.departures("A", local(7, 0), 7200)
    merged = merge_board(board, state, tt, local(8, 0))
    assert [(d.trip_id, d.delay_s) for d in merged] == [("T1", 120), ("Q", None), ("T2", None)]
    assert [d.sort_time for d in merged] == [local(8, 2), local(8, 5), local(8, 30)]

"""Trip updates applied to the schedule: one test per matching / propagation rule (DESIGN §4)."""

from __future__ import annotations

import datetime as dt

from rtfeeds import DAY, STU, TD, message, stu, trip_update, ts

from connectors.gtfs_rt import RealtimeState, TripRealtime, state_from_messages


def _state(tt, *entities, timestamp=None) -> RealtimeState:
    return state_from_messages(tt, [message(*entities, timestamp=timestamp)])


def _trip(state: RealtimeState, trip_id: str, day: dt.date = DAY) -> TripRealtime:
    found = [
        t
        for t in (*state.trips.values(), *state.extra_trips)
        if t.trip_id == trip_id and t.service_date == day
    ]
    assert len(found) == 1, found
    return found[0]


def _delays(trip: TripRealtime) -> list[tuple[str, str, int | None]]:
    return [(c.stop_id, c.status, c.departure_delay) for c in trip.calls]


def test_start_date_selects_the_service_day(tt):
    """trip_id + start_date: the update applies to that service day's run only."""
    state = _state(
        tt, trip_update("T1", stu(1, "A", dep_delay=120), start_date="20260611"), timestamp=None
    )
    trip = _trip(state, "T1", DAY + dt.timedelta(days=1))
    assert trip.calls[0].expected_departure == ts(8, 2, day=DAY + dt.timedelta(days=1))
    assert not [t for t in state.trips.values() if t.service_date == DAY]


def test_after_midnight_trip_matches_yesterdays_service_day(tt):
    """A 24:50 trip with start_date = yesterday is the run leaving at 00:50 today."""
    yesterday = DAY - dt.timedelta(days=1)
    state = _state(
        tt,
        trip_update("NIGHT", stu(1, "A", dep=ts(0, 53)), start_date="20260609"),
        timestamp=ts(0, 45),
    )
    trip = _trip(state, "NIGHT", yesterday)
    assert trip.calls[0].scheduled_departure == ts(0, 50)
    assert trip.calls[0].departure_delay == 180


def test_missing_start_date_infers_yesterday_for_after_midnight_trip(tt):
    """No start_date at 00:45: the running NIGHT run is yesterday's service, not today's."""
    state = _state(
        tt, trip_update("NIGHT", stu(2, "B", dep_delay=60), start_date=None), timestamp=ts(0, 45)
    )
    trip = _trip(state, "NIGHT", DAY - dt.timedelta(days=1))
    assert trip.calls[1].expected_departure == ts(1, 1)


def test_missing_start_date_infers_today_from_the_feed_time(tt):
    """No start_date at 07:55: T1 is today's run (the closest in time)."""
    state = _state(tt, trip_update("T1", stu(1, "A", dep_delay=60), start_date=None))
    assert _trip(state, "T1").calls[0].expected_departure == ts(8, 1)


def test_trip_not_running_on_start_date_is_unmatched(tt):
    """A start_date outside the calendar is an unmatched trip, with its id as an example."""
    state = _state(tt, trip_update("T1", stu(1, "A", dep_delay=60), start_date="20270101"))
    c = state.counters
    assert (c.matched, c.unmatched, c.unmatched_trip_ids) == (0, 1, ["T1"])
    assert not state.trips


def test_unknown_trip_ids_are_counted_with_examples(tt):
    """Trip ids absent from the static feed are unmatched; at most 10 examples are kept."""
    entities = [trip_update(f"X{i}", stu(1, "A", dep_delay=60)) for i in range(12)]
    state = _state(tt, trip_update("T1", stu(1, "A", dep_delay=60)), *entities)
    c = state.counters
    assert (c.trip_updates, c.matched, c.unmatched) == (13, 1, 12)
    assert c.unmatched_trip_ids == [f"X{i}" for i in range(10)]
    assert c.match_ratio == 1 / 13


def test_frequency_trip_matched_by_start_time(tt):
    """A frequency trip's update is applied to the run named by start_time only."""
    state = _state(tt, trip_update("F", stu(2, "B", dep_delay=120), start_time="10:20:00"))
    trip = _trip(state, "F")
    assert trip.calls[1].scheduled_departure == ts(10, 27)
    assert trip.calls[1].expected_departure == ts(10, 29)
    assert len(state.trips) == 1


def test_stop_sequence_picks_the_right_visit_of_a_repeated_stop(tt):
    """LOOP calls at A twice: stop_sequence 3 updates the second visit, not the first."""
    state = _state(tt, trip_update("LOOP", stu(3, "A", dep_delay=300)))
    assert _delays(_trip(state, "LOOP")) == [
        ("A", "scheduled", None),
        ("B", "scheduled", None),
        ("A", "updated", 300),
        ("C", "updated", 300),
    ]


def test_stop_id_fallback_searches_forward_from_the_previous_update(tt):
    """Without stop_sequence, the second update at A goes to the visit after B."""
    state = _state(
        tt, trip_update("LOOP", stu(stop="B", dep_delay=60), stu(stop="A", dep_delay=240))
    )
    assert [c.departure_delay for c in _trip(state, "LOOP").calls] == [None, 60, 240, 240]


def test_stop_id_wins_when_the_sequence_disagrees(tt):
    """Sequence 1 with stop_id C (sequence 4's stop): the stop_id is believed."""
    state = _state(tt, trip_update("T1", stu(1, "C", dep_delay=60)))
    assert [c.departure_delay for c in _trip(state, "T1").calls] == [None, None, 60, 60]


def test_time_wins_over_delay(tt):
    """An event with both time and delay uses the time (the delay is recomputed from it)."""
    state = _state(tt, trip_update("T1", stu(2, "B", dep=ts(8, 13), dep_delay=60)))
    call = _trip(state, "T1").calls[1]
    assert (call.expected_departure, call.departure_delay) == (ts(8, 13), 180)


def test_delay_propagates_until_the_next_update(tt):
    """B +2 min carries to C; D's own update (+5 min) replaces it; A before stays scheduled."""
    state = _state(tt, trip_update("T1", stu(2, "B", dep_delay=120), stu(4, "D", arr_delay=300)))
    assert _delays(_trip(state, "T1")) == [
        ("A", "scheduled", None),
        ("B", "updated", 120),
        ("C", "updated", 120),
        ("D", "updated", 300),
    ]
    assert [c.explicit for c in _trip(state, "T1").calls] == [False, True, False, True]


def test_arrival_delay_carries_to_the_departure_at_the_same_stop(tt):
    """Only an arrival time at B: B's departure gets the same delay."""
    state = _state(tt, trip_update("T1", stu(2, "B", arr=ts(8, 14))))
    call = _trip(state, "T1").calls[1]
    assert (call.arrival_delay, call.departure_delay) == (240, 240)
    assert call.expected_departure == ts(8, 14)


def test_trip_level_delay_applies_to_every_stop(tt):
    """TripUpdate.delay with no stop updates delays the whole trip."""
    state = _state(tt, trip_update("T1", delay=90))
    assert {c.departure_delay for c in _trip(state, "T1").calls} == {90}


def test_zero_time_and_empty_stop_id_are_absent(tt):
    """time: 0 / delay: 0 / stop_id "" (Turin GTT) carry nothing: no 1970 times, no delay 0."""
    bogus = stu(2, "", dep=0, dep_delay=0)
    bogus.departure.time = 0
    state = _state(tt, trip_update("T1", stu(1, "A", dep_delay=60), bogus))
    calls = _trip(state, "T1").calls
    assert [c.departure_delay for c in calls] == [60, 60, 60, 60]
    assert all(c.expected_departure and c.expected_departure > ts(0, 0) for c in calls)


def test_explicit_zero_delay_means_on_time(tt):
    """delay: 0 without a time is the spec's "exactly on time": it stops the propagation."""
    state = _state(tt, trip_update("T1", stu(1, "A", dep_delay=300), stu(3, "C", dep_delay=0)))
    assert [c.departure_delay for c in _trip(state, "T1").calls] == [300, 300, 0, 0]


def test_canceled_trip_cancels_every_stop(tt):
    """CANCELED: every call is cancelled, with no expected time."""
    state = _state(tt, trip_update("T1", rel=TD.CANCELED))
    trip = _trip(state, "T1")
    assert trip.relationship == "cancelled"
    assert {(c.status, c.expected_departure) for c in trip.calls} == {("cancelled", None)}
    assert state.counters.cancelled == 1


def test_deleted_trip_is_recorded_as_deleted(tt):
    """DELETED: kept as "deleted" (boards hide it), counted apart from cancellations."""
    state = _state(tt, trip_update("T1", rel=TD.DELETED))
    assert _trip(state, "T1").relationship == "deleted"
    assert (state.counters.deleted, state.counters.cancelled) == (1, 0)


def test_skipped_stop_is_skipped_and_propagation_continues(tt):
    """SKIPPED at B: B is skipped, the delay given at A still reaches C."""
    state = _state(tt, trip_update("T1", stu(1, "A", dep_delay=120), stu(2, "B", rel=STU.SKIPPED)))
    assert _delays(_trip(state, "T1")) == [
        ("A", "updated", 120),
        ("B", "skipped", None),
        ("C", "updated", 120),
        ("D", "updated", 120),
    ]
    assert state.counters.skipped_stops == 1


def test_no_data_shows_schedule_not_realtime(tt):
    """NO_DATA at C ends propagation: C and D are schedule, flagged as not realtime."""
    state = _state(tt, trip_update("T1", stu(2, "B", dep_delay=120), stu(3, "C", rel=STU.NO_DATA)))
    calls = _trip(state, "T1").calls
    assert [(c.status, c.realtime) for c in calls] == [
        ("scheduled", False),
        ("updated", True),
        ("no_data", False),
        ("no_data", False),
    ]
    assert calls[3].expected_departure is None


def test_added_trip_uses_route_and_times_from_the_update(tt):
    """An ADDED trip unknown to the static feed is placed at its stops with its own times."""
    state = _state(
        tt,
        trip_update(
            "EXTRA-1",
            stu(1, "A", dep=ts(8, 7)),
            stu(2, "C", arr=ts(8, 25)),
            rel=TD.ADDED,
            route_id="R",
            start_date=None,
            properties={"trip_headsign": "Charlie"},
        ),
    )
    trip = _trip(state, "EXTRA-1")
    assert (trip.relationship, trip.route_id, trip.headsign, trip.run) == (
        "added",
        "R",
        "Charlie",
        None,
    )
    assert [(c.stop_id, c.expected_departure) for c in trip.calls] == [
        ("A", ts(8, 7)),
        ("C", ts(8, 25)),
    ]
    assert state.counters.added == 1
    assert [t.trip_id for t, _ in state.extra_by_stop[tt.stop_index["A"]]] == ["EXTRA-1"]


def test_duplicated_trip_copies_the_schedule_at_a_new_start(tt):
    """DUPLICATED T1 at 11:00 under id T1-bis: the copy runs 3 h later, the original untouched."""
    state = _state(
        tt,
        trip_update(
            "T1",
            stu(2, "B", dep_delay=60),
            rel=TD.DUPLICATED,
            properties={"trip_id": "T1-bis", "start_date": "20260610", "start_time": "11:00:00"},
        ),
    )
    copy = _trip(state, "T1-bis")
    assert copy.relationship == "duplicated"
    assert [c.scheduled_departure for c in copy.calls] == [
        ts(11, 0),
        ts(11, 10),
        ts(11, 20),
        ts(11, 30),
    ]
    assert copy.calls[2].expected_departure == ts(11, 21)
    assert not state.trips  # the original T1 run is not modified
    assert state.counters.duplicated == 1


def test_uncertainty_is_passed_on(tt):
    """StopTimeEvent.uncertainty reaches the call untouched."""
    state = _state(tt, trip_update("T1", stu(2, "B", dep_delay=60, uncertainty=30)))
    assert _trip(state, "T1").calls[1].uncertainty == 30


def test_bad_entities_are_skipped_and_counted(tt):
    """Garbage start_date and an added trip at unknown stops are skipped; T1 still applies."""
    state = _state(
        tt,
        trip_update("T2", stu(1, "A", dep_delay=60), start_date="2026-06-10"),
        trip_update("NEW", stu(1, "NOWHERE", dep=ts(8, 0)), rel=TD.ADDED),
        trip_update("T1", stu(1, "A", dep_delay=60)),
    )
    c = state.counters
    assert c.bad_entities == 2
    assert c.bad_examples[0] == "T2: bad start_date '2026-06-10'"
    assert c.bad_examples[1].startswith("NEW: added trip has no known stop")
    assert _trip(state, "T1").calls[0].departure_delay == 60


def test_stop_update_at_a_stop_the_trip_does_not_serve_is_ignored(tt):
    """An update for a stop outside the trip is counted and dropped, the others applied."""
    state = _state(tt, trip_update("Q", stu(stop="D", dep_delay=60), stu(1, "A", dep_delay=30)))
    assert state.counters.unmatched_stop_updates == 1
    assert _trip(state, "Q").calls[0].departure_delay == 30

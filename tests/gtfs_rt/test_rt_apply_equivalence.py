"""The vectorised apply (CallBlockBuilder) against the per-call reference implementation.

Random trip updates over the rule-test timetable, with everything producers get wrong:
updates out of order or repeated, stop_sequence and stop_id disagreeing, unknown stops,
SKIPPED/NO_DATA anywhere, time 0, delay 0, millisecond times, departure before arrival,
uncertainty on either event, a trip-level delay. Every call must be identical.
"""

from __future__ import annotations

import random

import pytest
from google.transit import gtfs_realtime_pb2 as pb
from reference_apply import apply_updates as reference_apply
from rtfeeds import DAY, static_timetable

from connectors.gtfs_rt.callblock import CallBlockBuilder
from connectors.gtfs_rt.counters import FeedCounters
from connectors.gtfs_rt.matching import resolve_run
from connectors.gtfs_rt.trips import scheduled_calls

STU = pb.TripUpdate.StopTimeUpdate
TRIPS = ("T1", "T2", "LOOP", "NIGHT", "Q")


@pytest.fixture(scope="module")
def tt():
    return static_timetable()


def _event(rng: random.Random, ev: pb.TripUpdate.StopTimeEvent, sched: int) -> None:
    roll = rng.random()
    if roll < 0.3:
        return  # absent
    if roll < 0.55:
        ev.time = sched + rng.randint(-300, 900)
    elif roll < 0.6:
        ev.time = (sched + rng.randint(-60, 600)) * 1000  # milliseconds
    elif roll < 0.65:
        ev.time = 0
        if rng.random() < 0.5:
            ev.delay = 0
    if rng.random() < 0.4:
        ev.delay = rng.choice([0, 0, rng.randint(-120, 900)])
    if rng.random() < 0.3:
        ev.uncertainty = rng.choice([0, 30, 60])


def _random_update(rng: random.Random, tt, trip_id: str) -> tuple[pb.TripUpdate, int, float]:
    trip = tt.trip_index[trip_id]
    match = resolve_run(tt, trip, DAY.toordinal(), None, None)
    schedule = scheduled_calls(tt, match.run, match.origin)
    tu = pb.TripUpdate()
    tu.trip.trip_id = trip_id
    if rng.random() < 0.2:
        tu.delay = rng.randint(-60, 600)
    for _ in range(rng.randint(0, len(schedule) + 2)):
        seq, stop, arr, dep = rng.choice(schedule)
        u = tu.stop_time_update.add()
        roll = rng.random()
        if roll < 0.6:
            u.stop_sequence = seq
            if rng.random() < 0.7:
                u.stop_id = tt.stop_ids[stop]
        elif roll < 0.75:
            u.stop_id = tt.stop_ids[stop]
        elif roll < 0.85:
            u.stop_sequence = seq
            u.stop_id = rng.choice(["A", "B", "C", "D", "nowhere"])  # may disagree
        else:
            u.stop_sequence = rng.choice([0, 99, seq])
        roll = rng.random()
        if roll < 0.1:
            u.schedule_relationship = STU.SKIPPED
        elif roll < 0.17:
            u.schedule_relationship = STU.NO_DATA
        _event(rng, u.arrival, arr)
        _event(rng, u.departure, dep)
    return tu, match.run, match.origin


@pytest.mark.parametrize("seed", range(40))
def test_block_apply_matches_the_reference(tt, seed: int) -> None:
    rng = random.Random(seed)
    builder = CallBlockBuilder(tt)
    cases = []
    for _ in range(12):
        tu, run, origin = _random_update(rng, tt, rng.choice(TRIPS))
        mine = FeedCounters()
        view = builder.add(run, int(origin), tu, mine)
        theirs = FeedCounters()
        expected = reference_apply(tt, scheduled_calls(tt, run, origin), tu, theirs)
        cases.append((tu, view, expected, mine, theirs))
    builder.finish()
    for tu, view, expected, mine, theirs in cases:
        # One row at a time (what boards do), then the whole trip.
        assert [view.find(c.stop_sequence) for c in expected] == list(expected), tu
        assert tuple(view) == expected, tu
        assert (mine.skipped_stops, mine.unmatched_stop_updates) == (
            theirs.skipped_stops,
            theirs.unmatched_stop_updates,
        )

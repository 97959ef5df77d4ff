"""The fast lane (connectors/gtfs_rt/lane.py) gives the state of the per-entity path.

Each feed is ingested twice: as bytes (bulk decode, lane for the trip updates that qualify,
per-entity path for the rest) and as a parsed message (accessors only, never the lane).
"""

from __future__ import annotations

import random

import pytest
from google.transit import gtfs_realtime_pb2 as pb
from rtfeeds import message, stu, trip_update, ts, vehicle
from test_rt_wire import ingest_both, random_feed, states_equal

from connectors.gtfs_rt import decode_feed
from connectors.gtfs_rt.lane import candidates
from connectors.gtfs_rt.trips import resolve_in_bulk
from connectors.gtfs_rt.wire import decode_updates

_TD = pb.TripDescriptor


def lane_candidates(tt, data: bytes) -> list[bool]:
    n = len(decode_feed(data).entity)
    wire = decode_updates(data, n)
    assert wire is not None
    refs = [(wire, i) for i in range(n)]
    return candidates(tt, refs, resolve_in_bulk(tt, refs))


@pytest.mark.parametrize("seed", range(30))
def test_random_feeds_give_the_same_state_through_the_lane(tt, seed: int) -> None:
    data = random_feed(random.Random(5000 + seed), tt, hostile=seed % 3 == 0, entities=25)
    states_equal(*ingest_both(tt, data))


def test_random_feeds_do_take_the_lane(tt) -> None:
    """Most plain trip updates with a start date qualify (else the tests above prove little)."""
    taken = [
        sum(lane_candidates(tt, random_feed(random.Random(seed), tt, hostile=False)))
        for seed in range(20)
    ]
    assert sum(taken) > 20 * 12 // 3, taken


@pytest.mark.parametrize("lane_first", [True, False])
def test_a_later_entity_for_the_same_run_wins_whichever_path_built_each(tt, lane_first) -> None:
    """Two trip updates of one run and day, one through the lane (start date given) and one
    not (no start date: resolved against the clock): the later entity is the one kept."""
    dated = trip_update("T1", stu(1, "A", dep_delay=60), entity_id="dated")
    undated = trip_update("T1", stu(1, "A", dep_delay=300), entity_id="undated", start_date=None)
    entities = (dated, undated) if lane_first else (undated, dated)
    data = message(*entities).SerializeToString()
    assert lane_candidates(tt, data) == ([True, False] if lane_first else [False, True])
    by_bytes, by_message = ingest_both(tt, data)
    states_equal(by_bytes, by_message)
    (trip,) = by_bytes.trips.values()
    assert trip.entity_id == entities[-1].id
    assert by_bytes.counters.matched == 2


def test_what_the_lane_leaves_to_the_per_entity_path(tt) -> None:
    """Mixed entities, cancelled and deleted trips, a trip-level delay, a bad start_time, an
    added trip: each gives the per-entity path's state, and only the plain ones take the lane."""
    mixed = trip_update("T2", stu(1, "A", dep_delay=30), entity_id="mixed")
    mixed.vehicle.CopyFrom(vehicle("bus-1", trip_id="T2", start_date="20260610").vehicle)
    entities = [
        trip_update("T1", stu(2, "B", dep_delay=120), entity_id="plain", delay=45),
        mixed,
        trip_update("LOOP", entity_id="cancelled", rel=_TD.CANCELED),
        trip_update("NIGHT", entity_id="deleted", rel=_TD.DELETED),
        trip_update("Q", stu(1, "A", dep_delay=10), entity_id="bad-time", start_time="8h"),
        trip_update("NEW1", stu(1, "A", dep=ts(9, 0)), entity_id="added", rel=_TD.ADDED),
    ]
    data = message(*entities).SerializeToString()
    assert lane_candidates(tt, data) == [True, True, True, True, False, False]
    by_bytes, by_message = ingest_both(tt, data)
    states_equal(by_bytes, by_message)
    counters = by_bytes.counters
    assert (counters.cancelled, counters.deleted, counters.bad_entities) == (1, 1, 1)
    assert "bad-time" in counters.bad_examples[0]

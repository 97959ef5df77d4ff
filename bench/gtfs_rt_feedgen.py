"""A synthetic GTFS-realtime TripUpdates FeedMessage over a compiled static timetable.

Used by ``bench/gtfs_rt_apply.py``. The message is shaped like a big operator's feed at the
morning peak: trips of the service day that are under way, each with updates for its
remaining stops (from the next stop to the end), delays that drift along the trip, and the
mix real producers send:

- most events carry both ``time`` and ``delay`` (like OTP-based producers), some only a
  ``delay`` (delay-only feeds, e.g. STIB), some only a ``time`` (e.g. Caltrain);
- a few trips have updates only every other stop (the engine propagates in between);
- ~2 % of trips CANCELED (no stop updates), ~1 % of stop updates SKIPPED, ~0.5 % of trips
  end with a NO_DATA update, ~5 % of updates carry a stop_id and no stop_sequence;
- ~10 % of trip descriptors lack start_date (the engine infers the service day).

Deterministic for a given timetable, day and seed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from google.transit import gtfs_realtime_pb2 as pb

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

_STU = pb.TripUpdate.StopTimeUpdate
_TD = pb.TripDescriptor


@dataclass(frozen=True)
class FeedShape:
    """What was generated, for the report."""

    trips: int
    stop_time_updates: int
    cancelled: int
    skipped: int
    no_data: int
    size_bytes: int


def eligible_runs(tt: Timetable, day: dt.date) -> np.ndarray:
    """Runs of plain (non-frequency) trips active on ``day``: one run per trip_id."""
    n_runs = len(tt.st_ptr) - 1
    runs = []
    for run in range(n_runs):
        if int(tt.run_headway[run]) > 0:
            continue  # frequency runs share their trip_id: a start_time would be needed
        trip = int(tt.run_trip[run])
        if tt.is_active(int(tt.trip_service[trip]), day):
            runs.append(run)
    return np.asarray(runs, dtype=np.int64)


def make_trip_updates(
    tt: Timetable,
    day: dt.date,
    *,
    trips: int = 5000,
    stop_time_updates: int = 100_000,
    seed: int = 2026,
    timestamp: int | None = None,
) -> tuple[bytes, FeedShape]:
    """A serialized FULL_DATASET FeedMessage of ``trips`` trip updates totalling
    ``stop_time_updates`` StopTimeUpdates (as near as the trips' lengths allow)."""
    rng = np.random.default_rng(seed)
    runs = eligible_runs(tt, day)
    if len(runs) < trips:
        raise SystemExit(f"the static feed runs only {len(runs)} plain trips on {day}")
    runs = np.sort(rng.choice(runs, trips, replace=False))
    agency = int(tt.run_agency[int(runs[0])])
    origin = int(tt.service_day_origin(agency, day.toordinal()))
    lengths = (tt.st_ptr[runs + 1] - tt.st_ptr[runs]).astype(np.int64)
    cancelled = rng.random(trips) < 0.02
    # Share the stop updates out among the running trips, capped by each trip's length.
    per_trip = np.zeros(trips, dtype=np.int64)
    live = ~cancelled
    want = stop_time_updates / max(1, int(live.sum()))
    per_trip[live] = np.minimum(lengths[live], np.maximum(1, rng.poisson(want, int(live.sum()))))
    # Top up trips that still have room until the total is reached (short ones were capped).
    missing = stop_time_updates - int(per_trip.sum())
    room = np.where(live, lengths - per_trip, 0)
    while missing > 0 and room.sum() > 0:
        idx = np.flatnonzero(room > 0)
        take = idx[:missing] if len(idx) > missing else idx
        per_trip[take] += 1
        room[take] -= 1
        missing -= len(take)

    msg = pb.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.incrementality = pb.FeedHeader.FULL_DATASET
    msg.header.timestamp = timestamp if timestamp is not None else origin + 12 * 3600 - 4 * 3600
    date_text = day.strftime("%Y%m%d")
    n_skipped = n_no_data = 0
    for i, run in enumerate(runs.tolist()):
        trip = int(tt.run_trip[run])
        entity = msg.entity.add()
        entity.id = f"tu-{i}"
        tu = entity.trip_update
        tu.trip.trip_id = tt.trip_ids[trip]
        if rng.random() >= 0.1:
            tu.trip.start_date = date_text
        tu.vehicle.id = f"veh-{i}"
        tu.timestamp = msg.header.timestamp - int(rng.integers(0, 60))
        if cancelled[i]:
            tu.trip.schedule_relationship = _TD.CANCELED
            continue
        a, b = int(tt.st_ptr[run]), int(tt.st_ptr[run + 1])
        n = int(per_trip[i])
        # Sparse trips (updates every other stop) cover twice the calls, when they have them.
        sparse = rng.random() < 0.05 and 2 * n - 1 <= b - a
        first = b - a - (2 * n - 1 if sparse else n)  # the remaining stops: trip under way
        kind = rng.random()  # per trip: producers are consistent within a feed
        no_data_tail = rng.random() < 0.005
        delay = int(rng.normal(90, 150))
        for k in range(first, b - a):
            if sparse and (k - first) % 2 == 1 and k != b - a - 1:
                continue
            row = a + k
            u = tu.stop_time_update.add()
            if rng.random() < 0.05:
                u.stop_id = tt.stop_ids[int(tt.st_stop[row])]
            else:
                u.stop_sequence = int(tt.st_seq[row])
                u.stop_id = tt.stop_ids[int(tt.st_stop[row])]
            if no_data_tail and k == b - a - 1:
                u.schedule_relationship = _STU.NO_DATA
                n_no_data += 1
                continue
            if rng.random() < 0.01:
                u.schedule_relationship = _STU.SKIPPED
                n_skipped += 1
                continue
            delay += int(rng.normal(0, 20))
            arr, dep = origin + int(tt.st_arr[row]) + delay, origin + int(tt.st_dep[row]) + delay
            if kind < 0.7:
                u.arrival.time, u.arrival.delay = arr, delay
                u.departure.time, u.departure.delay = dep, delay
                u.departure.uncertainty = 30
            elif kind < 0.85:
                u.arrival.delay = delay
                u.departure.delay = delay
            else:
                u.arrival.time = arr
                u.departure.time = dep
    data = msg.SerializeToString()
    shape = FeedShape(
        trips=trips,
        stop_time_updates=sum(len(e.trip_update.stop_time_update) for e in msg.entity),
        cancelled=int(cancelled.sum()),
        skipped=n_skipped,
        no_data=n_no_data,
        size_bytes=len(data),
    )
    return data, shape

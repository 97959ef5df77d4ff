"""Trips the static feed does not run: ADDED/NEW (times from the feed) and DUPLICATED.

ADDED/NEW trips have no schedule, so only absolute ``time`` values place them; ``delay`` has
nothing to be relative to and is ignored. Their stops must exist in the static feed (a stop we
cannot place on a board is counted and dropped).

DUPLICATED (spec, 2023): a copy of the static trip ``trip.trip_id`` running on
``trip_properties.start_date`` from ``trip_properties.start_time``, under the new id
``trip_properties.trip_id``; the original trip is untouched. The copy's schedule is the
original's shifted by the start-time difference, and its stop_time_updates apply on top.
Without ``trip_properties.start_time`` the copy's schedule is unknown: it is shown by its
updates' times alone, with no scheduled time and no delay (counted as
``duplicated_schedule_unknown``).
Frequency trips with exact_times=0 cannot be duplicated (the spec forbids it).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from google.transit import gtfs_realtime_pb2 as pb

from .callblock import CallBlockBuilder
from .matching import RunMatch, parse_start_date, parse_start_time
from .model import RealtimeCall, TripRealtime
from .trips import BadEntity, read_event, reference_time
from .trips import trip_record as _trip_record
from .wire import WireRef
from .wireheads import head_of

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

    from .counters import FeedCounters

_STU = pb.TripUpdate.StopTimeUpdate


def build_added(
    tt: Timetable,
    entity_id: str,
    tu: pb.TripUpdate,
    start_date: int | None,
    ts: int | None,
    source: str,
    counters: FeedCounters,
) -> TripRealtime:
    """An ADDED/NEW trip placed at its stops by the times the feed gives."""
    td = tu.trip
    props = tu.trip_properties
    trip_id = td.trip_id or props.trip_id or entity_id
    route = tt.route_index.get(td.route_id) if td.route_id else None
    agency = int(tt.route_agency[route]) if route is not None else 0
    calls = timed_calls(tt, tu, counters)
    if not calls:
        raise BadEntity("added trip has no known stop with a time")
    if start_date is None:
        first = next(c.expected_departure for c in calls if c.expected_departure is not None)
        start_date = dt.datetime.fromtimestamp(first, tt.zones[agency]).date().toordinal()
    counters.added += 1
    return TripRealtime(
        entity_id=entity_id,
        trip_id=trip_id,
        relationship="added",
        run=None,
        trip_index=None,
        service_date=dt.date.fromordinal(start_date),
        route_id=td.route_id or None,
        route_index=route,
        direction_id=td.direction_id if td.HasField("direction_id") else None,
        start_time=td.start_time or None,
        headsign=props.trip_headsign or None,
        vehicle_id=tu.vehicle.id or None,
        vehicle_label=tu.vehicle.label or None,
        timestamp=ts,
        source=source,
        calls=tuple(calls),
    )


def timed_calls(
    tt: Timetable,
    tu: pb.TripUpdate,
    counters: FeedCounters,
    stop_of_sequence: dict[int, int] | None = None,
) -> list[RealtimeCall]:
    """Calls placed by the absolute times of the updates alone (no schedule to add to).

    ``stop_of_sequence``: where updates may name their stop by stop_sequence only (the copy
    of a static run), that run's stops by sequence.
    """
    calls: list[RealtimeCall] = []
    for i, u in enumerate(tu.stop_time_update):
        stop = tt.stop_index.get(u.stop_id) if u.stop_id else None
        if stop is None and stop_of_sequence is not None and u.HasField("stop_sequence"):
            stop = stop_of_sequence.get(u.stop_sequence)
        if stop is None:
            counters.unmatched_stop_updates += 1
            continue
        seq = u.stop_sequence if u.HasField("stop_sequence") else i + 1
        if u.schedule_relationship == _STU.SKIPPED:
            counters.skipped_stops += 1
            calls.append(
                RealtimeCall(
                    seq, tt.stop_ids[stop], stop, None, None, None, None, None, None, "skipped"
                )
            )
            continue
        arr, dep = read_event(u, "arrival"), read_event(u, "departure")
        arr_t = arr.time if arr else None
        dep_t = dep.time if dep else None
        if arr_t is None and dep_t is None:
            counters.unmatched_stop_updates += 1
            continue
        uncertainty = (dep.uncertainty if dep else None) or (arr.uncertainty if arr else None)
        calls.append(
            RealtimeCall(
                seq,
                tt.stop_ids[stop],
                stop,
                None,
                None,
                arr_t if arr_t is not None else dep_t,
                dep_t if dep_t is not None else arr_t,
                None,
                None,
                "updated",
                uncertainty,
                explicit=True,
            )
        )
    calls.sort(key=lambda c: c.stop_sequence)
    return calls


def build_duplicated(
    tt: Timetable,
    entity_id: str,
    tu: pb.TripUpdate,
    trip: int,
    ts: int | None,
    source: str,
    counters: FeedCounters,
    builder: CallBlockBuilder,
    wire: WireRef | None = None,
) -> TripRealtime:
    """A copy of static trip index ``trip`` at the date/time in ``trip_properties``.

    Its calls are queued in ``builder`` (readable after ``builder.finish()``).
    """
    td, props = tu.trip, tu.trip_properties
    try:
        original_start = parse_start_time(td.start_time)
        new_date = parse_start_date(props.start_date) or parse_start_date(td.start_date)
        new_start = parse_start_time(props.start_time)
    except ValueError as exc:
        raise BadEntity(str(exc)) from exc
    runs = tt.runs_of_trip(trip)
    if not runs:
        raise BadEntity("duplicated trip has no stop times")
    run = runs[0]
    if len(runs) > 1 and original_start is not None:
        run = next((r for r in runs if int(tt.run_start[r]) == original_start), run)
    if int(tt.run_headway[run]) > 0 and int(tt.run_exact[run]) == 0:
        raise BadEntity("frequency trips with exact_times=0 cannot be duplicated")
    agency = int(tt.run_agency[run])
    if new_start is None:
        return _unscheduled_copy(tt, entity_id, tu, trip, run, new_date, ts, source, counters)
    if new_date is None:
        reference = reference_time(tu, ts, wire)
        if reference is None:
            raise BadEntity("duplicated trip without start_date nor timestamp")
        new_date = dt.datetime.fromtimestamp(reference, tt.zones[agency]).date().toordinal()
    shift = new_start - int(tt.run_start[run]) if new_start is not None else 0
    origin = tt.service_day_origin(agency, new_date)
    match = RunMatch(run, trip, new_date, origin)
    calls = builder.add(run, int(origin) + shift, tu, counters, wire=wire)
    counters.duplicated += 1
    new_id = props.trip_id or f"{td.trip_id}@{dt.date.fromordinal(new_date):%Y%m%d}+{shift}"
    head = wire[0].head(wire[1]) if wire is not None else None
    return _trip_record(
        tt, entity_id, head or head_of(tu), match, "duplicated", calls, ts, source, new_id
    )


def _unscheduled_copy(
    tt: Timetable,
    entity_id: str,
    tu: pb.TripUpdate,
    trip: int,
    run: int,
    new_date: int | None,
    ts: int | None,
    source: str,
    counters: FeedCounters,
) -> TripRealtime:
    """A DUPLICATED trip without ``trip_properties.start_time``: when the copy runs is unknown.

    Reporting its delay against the original's schedule would be wrong (the copy does not
    leave when the original does), so it is shown like an ADDED trip: placed by the absolute
    times of its updates, with no scheduled time and no delay, still labelled ``duplicated``
    and carrying the original's line, direction and headsign.
    """
    a, b = int(tt.st_ptr[run]), int(tt.st_ptr[run + 1])
    stops = dict(zip(tt.st_seq[a:b].tolist(), tt.st_stop[a:b].tolist(), strict=True))
    calls = timed_calls(tt, tu, counters, stops)
    if not calls:
        raise BadEntity("duplicated trip without start_time has no stop with a time")
    route = int(tt.trip_route[trip])
    if new_date is None:
        first = next(c.expected_departure for c in calls if c.expected_departure is not None)
        zone = tt.zones[int(tt.run_agency[run])]
        new_date = dt.datetime.fromtimestamp(first, zone).date().toordinal()
    counters.duplicated += 1
    counters.duplicated_schedule_unknown += 1
    td, props = tu.trip, tu.trip_properties
    direction = int(tt.trip_direction[trip])
    return TripRealtime(
        entity_id=entity_id,
        trip_id=props.trip_id or f"{td.trip_id}@{dt.date.fromordinal(new_date):%Y%m%d}",
        relationship="duplicated",
        run=None,
        trip_index=trip,
        service_date=dt.date.fromordinal(new_date),
        route_id=tt.route_ids[route],
        route_index=route,
        direction_id=direction if direction >= 0 else None,
        start_time=None,
        headsign=props.trip_headsign or tt.trip_headsigns[trip] or None,
        vehicle_id=tu.vehicle.id or None,
        vehicle_label=tu.vehicle.label or None,
        timestamp=ts,
        source=source,
        calls=tuple(calls),
    )

"""Apply one TripUpdate to the static schedule of its run → :class:`TripRealtime`.

Rules (DESIGN §4, with the issue threads they come from):

- StopTimeUpdates are matched to calls by stop_sequence when its stop_id agrees (or is
  absent), else by stop_id searching forward from the previous match, so a stop visited twice
  gets the right visit (maglev#1414); a sequence whose stop_id appears nowhere in the trip is
  still trusted (platform changes, gtfs-realtime-validator#51).
- ``time`` wins over ``delay`` (OTP, OBA). ``time: 0`` and an empty ``stop_id`` are absent
  (vingerha/gtfs2#119); an event with neither usable time nor delay is absent. An explicit
  ``delay: 0`` with no time is kept: the spec defines it as "exactly on time".
- A delay propagates to later calls until the next update (google/transit#144), also from
  arrival to departure at the same stop; SKIPPED does not stop propagation (MobilityData
  transit PR#6); NO_DATA ends it: later calls without updates are NO_DATA too (spec).
- Calls before the first update keep their schedule and are not marked realtime.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.transit import gtfs_realtime_pb2 as pb

from .decode import posix
from .matching import MatchError, RunMatch, parse_start_date, parse_start_time, resolve_run
from .model import RealtimeCall, TripRealtime, TripRelationship

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

    from .counters import FeedCounters

_STU = pb.TripUpdate.StopTimeUpdate
_TD = pb.TripDescriptor
#: A scheduled call: (stop_sequence, stop index, arrival POSIX, departure POSIX).
Scheduled = tuple[int, int, int, int]


class BadEntity(ValueError):
    """The entity cannot be understood; it is skipped and counted (never fatal)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A StopTimeEvent with absent values as None."""

    time: int | None
    delay: int | None
    uncertainty: int | None


def read_event(update: pb.TripUpdate.StopTimeUpdate, name: str) -> Event | None:
    """The arrival/departure event, or None when it carries nothing usable."""
    if not update.HasField(name):
        return None
    ev = getattr(update, name)
    time = posix(ev.time) if ev.HasField("time") else None
    delay = ev.delay if ev.HasField("delay") else None
    if time is None and (delay is None or (delay == 0 and ev.HasField("time"))):
        # time: 0 with delay: 0 is a producer filling defaults (Turin GTT), not "on time".
        return None
    uncertainty = ev.uncertainty if ev.HasField("uncertainty") and ev.uncertainty > 0 else None
    return Event(time, delay, uncertainty)


def reference_time(tu: pb.TripUpdate, header_ts: int | None) -> int | None:
    """The instant a trip update is about: its first predicted time, else its timestamp."""
    for u in tu.stop_time_update:
        for name in ("departure", "arrival"):
            ev = read_event(u, name)
            if ev is not None and ev.time is not None:
                return ev.time
    entity_ts = posix(tu.timestamp) if tu.HasField("timestamp") else None
    return entity_ts or header_ts


def scheduled_calls(tt: Timetable, run: int, origin: float, shift: int = 0) -> list[Scheduled]:
    """The run's calls in POSIX seconds (``shift`` moves a duplicated copy in time)."""
    a, b = int(tt.st_ptr[run]), int(tt.st_ptr[run + 1])
    base = int(origin) + shift
    return [
        (seq, stop, base + arr, base + dep)
        for seq, stop, arr, dep in zip(
            tt.st_seq[a:b].tolist(),
            tt.st_stop[a:b].tolist(),
            tt.st_arr[a:b].tolist(),
            tt.st_dep[a:b].tolist(),
            strict=True,
        )
    ]


def _locate(
    tt: Timetable, schedule: list[Scheduled], updates: list[_STU], counters: FeedCounters
) -> dict[int, _STU]:
    """Call position → its StopTimeUpdate (sequence first, stop_id as fallback)."""
    by_seq = {seq: i for i, (seq, *_rest) in enumerate(schedule)}
    found: dict[int, _STU] = {}
    cursor = 0
    for u in updates:
        stop = tt.stop_index.get(u.stop_id) if u.stop_id else None
        pos = by_seq.get(u.stop_sequence) if u.HasField("stop_sequence") else None
        if pos is not None and stop is not None and schedule[pos][1] != stop:
            # Sequence and stop disagree: believe the stop if the trip calls there.
            by_stop = _find_stop(schedule, stop, cursor)
            pos = by_stop if by_stop is not None else pos
        elif pos is None and stop is not None:
            pos = _find_stop(schedule, stop, cursor)
        if pos is None:
            counters.unmatched_stop_updates += 1
            continue
        found[pos] = u
        cursor = pos + 1
    return found


def _find_stop(schedule: list[Scheduled], stop: int, cursor: int) -> int | None:
    """First call at ``stop`` from ``cursor`` on, else anywhere in the trip."""
    for start in (cursor, 0):
        for i in range(start, len(schedule)):
            if schedule[i][1] == stop:
                return i
    return None


def apply_updates(
    tt: Timetable,
    schedule: list[Scheduled],
    tu: pb.TripUpdate,
    counters: FeedCounters,
) -> tuple[RealtimeCall, ...]:
    """The calls of a scheduled (or duplicated) trip with the updates applied."""
    located = _locate(tt, schedule, list(tu.stop_time_update), counters)
    # The (experimental) trip-level delay applies wherever no stop says otherwise.
    delay: int | None = tu.delay if tu.HasField("delay") else None
    no_data = False
    calls: list[RealtimeCall] = []
    for pos, (seq, stop, sched_arr, sched_dep) in enumerate(schedule):
        stop_id = tt.stop_ids[stop]
        u = located.get(pos)
        if u is not None and u.schedule_relationship == _STU.SKIPPED:
            counters.skipped_stops += 1
            calls.append(
                RealtimeCall(
                    seq,
                    stop_id,
                    stop,
                    sched_arr,
                    sched_dep,
                    None,
                    None,
                    None,
                    None,
                    "skipped",
                    explicit=True,
                )
            )
            continue
        if u is not None and u.schedule_relationship == _STU.NO_DATA:
            delay, no_data = None, True
            calls.append(_plain(seq, stop_id, stop, sched_arr, sched_dep, "no_data"))
            continue
        arr = read_event(u, "arrival") if u is not None else None
        dep = read_event(u, "departure") if u is not None else None
        if arr is None and dep is None:
            if no_data:
                calls.append(_plain(seq, stop_id, stop, sched_arr, sched_dep, "no_data"))
            elif delay is None:
                calls.append(_plain(seq, stop_id, stop, sched_arr, sched_dep, "scheduled"))
            else:
                calls.append(
                    RealtimeCall(
                        seq,
                        stop_id,
                        stop,
                        sched_arr,
                        sched_dep,
                        sched_arr + delay,
                        sched_dep + delay,
                        delay,
                        delay,
                        "updated",
                    )
                )
            continue
        no_data = False
        arr_delay = _delay(arr, sched_arr)
        dep_delay = _delay(dep, sched_dep)
        if dep_delay is None:
            assert arr_delay is not None
            dep_delay = arr_delay  # arriving late means leaving late
        expected_dep = sched_dep + dep_delay
        if arr_delay is None:
            # The vehicle cannot arrive after it leaves: an older propagated delay is capped.
            carried = delay if delay is not None else dep_delay
            expected_arr = min(sched_arr + carried, expected_dep)
            arr_delay = expected_arr - sched_arr
        else:
            expected_arr = sched_arr + arr_delay
        if expected_dep < expected_arr:
            # Inconsistent explicit times: the departure cannot precede the arrival.
            expected_dep = expected_arr
            dep_delay = expected_dep - sched_dep
        uncertainty = (dep.uncertainty if dep else None) or (arr.uncertainty if arr else None)
        calls.append(
            RealtimeCall(
                seq,
                stop_id,
                stop,
                sched_arr,
                sched_dep,
                expected_arr,
                expected_dep,
                arr_delay,
                dep_delay,
                "updated",
                uncertainty,
                explicit=True,
            )
        )
        delay = dep_delay
    return tuple(calls)


def _delay(event: Event | None, scheduled: int) -> int | None:
    if event is None:
        return None
    return event.time - scheduled if event.time is not None else event.delay


def _plain(seq: int, stop_id: str, stop: int, arr: int, dep: int, status: str) -> RealtimeCall:
    return RealtimeCall(seq, stop_id, stop, arr, dep, None, None, None, None, status)  # type: ignore[arg-type]


def _descriptor_dates(td: pb.TripDescriptor) -> tuple[int | None, int | None]:
    try:
        return parse_start_date(td.start_date), parse_start_time(td.start_time)
    except ValueError as exc:
        raise BadEntity(str(exc)) from exc


def build_trip(
    tt: Timetable,
    entity_id: str,
    tu: pb.TripUpdate,
    header_ts: int | None,
    source: str,
    counters: FeedCounters,
) -> TripRealtime | None:
    """Resolve and apply one TripUpdate; None when unmatched or unsupported (counted).

    Raises :class:`BadEntity` for malformed content (the caller counts it).
    """
    td = tu.trip
    rel = td.schedule_relationship
    start_date, start_time = _descriptor_dates(td)
    ts = _newest(posix(tu.timestamp) if tu.HasField("timestamp") else None, header_ts)
    if rel in (_TD.ADDED, _TD.NEW):
        from .added import build_added

        return build_added(tt, entity_id, tu, start_date, ts, source, counters)
    if rel in (_TD.UNSCHEDULED, _TD.REPLACEMENT):
        counters.unsupported += 1
        return None
    if not td.trip_id:
        raise BadEntity("trip update without trip_id (fuzzy matching is not supported)")
    trip = tt.trip_index.get(td.trip_id)
    if trip is None:
        counters.unmatched_trip(td.trip_id)
        return None
    if rel == _TD.DUPLICATED:
        from .added import build_duplicated

        return build_duplicated(tt, entity_id, tu, trip, ts, source, counters)
    try:
        match = resolve_run(tt, trip, start_date, start_time, reference_time(tu, header_ts))
    except MatchError:
        counters.unmatched_trip(td.trip_id)
        return None
    counters.matched += 1
    schedule = scheduled_calls(tt, match.run, match.origin)
    relationship: TripRelationship
    if rel in (_TD.CANCELED, _TD.DELETED):
        relationship = "canceled" if rel == _TD.CANCELED else "deleted"
        if rel == _TD.CANCELED:
            counters.cancelled += 1
        else:
            counters.deleted += 1
        calls = tuple(
            RealtimeCall(seq, tt.stop_ids[s], s, a, d, None, None, None, None, "cancelled")
            for seq, s, a, d in schedule
        )
    else:
        relationship = "scheduled"
        calls = apply_updates(tt, schedule, tu, counters)
    return trip_record(tt, entity_id, tu, match, relationship, calls, ts, source)


def trip_record(
    tt: Timetable,
    entity_id: str,
    tu: pb.TripUpdate,
    match: RunMatch,
    relationship: TripRelationship,
    calls: tuple[RealtimeCall, ...],
    ts: int | None,
    source: str,
    trip_id: str | None = None,
) -> TripRealtime:
    """A TripRealtime for a static run (or a copy of one)."""
    trip = match.trip
    route = int(tt.trip_route[trip])
    direction = int(tt.trip_direction[trip])
    headsign = tu.trip_properties.trip_headsign if tu.HasField("trip_properties") else ""
    return TripRealtime(
        entity_id=entity_id,
        trip_id=trip_id or tt.trip_ids[trip],
        relationship=relationship,
        run=match.run if relationship != "duplicated" else None,
        trip_index=trip,
        service_date=dt.date.fromordinal(match.ordinal),
        route_id=tt.route_ids[route],
        route_index=route,
        direction_id=direction if direction >= 0 else None,
        start_time=tu.trip.start_time or None,
        headsign=headsign or tt.trip_headsigns[trip] or None,
        vehicle_id=tu.vehicle.id or None,
        vehicle_label=tu.vehicle.label or None,
        timestamp=ts,
        source=source,
        calls=calls,
    )


def _newest(a: int | None, b: int | None) -> int | None:
    return max(a, b) if a is not None and b is not None else (a if a is not None else b)

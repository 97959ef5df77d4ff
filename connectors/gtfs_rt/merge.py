"""Merge realtime into a static departure board.

Each scheduled departure gets its expected time, delay, status, vehicle and alert ids; ADDED
and DUPLICATED trips calling at the stops are inserted; the result is sorted by expected time.

The window must be widened: a trip scheduled 10 min *before* the board's start but running
15 min late leaves inside the window, and a static query for ``[at, at + duration)`` would
never return it. :func:`realtime_departures` therefore queries ``[at - max lateness,
at + duration + max earliness)`` and filters on expected time afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from connectors.gtfs import Departure, DepartureBoard, Explanation
from connectors.gtfs.departures import boarding_stop_indices

from .alerts import entity_matches
from .model import AlertRealtime, RealtimeCall, TripRealtime
from .state import RealtimeState, Staleness

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

Status = Literal[
    "scheduled", "on_time", "delayed", "early", "cancelled", "skipped", "added", "no_data"
]
DEFAULT_ON_TIME_S = 60
#: Never look forward more than this for early trips: hours early is a data error.
MAX_WIDEN_S = 3 * 3600
#: Late trips are looked for as far back as the largest delay in the realtime state (a train
#: 7 hours late after a breakdown is real and still leaves), but never more than a day: past
#: that a "delay" is a producer's error, and the widened static query must stay bounded.
MAX_LOOKBACK_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class RealtimeDeparture:
    """One call on a board, schedule and realtime together."""

    trip_id: str
    route_id: str | None
    route_index: int | None
    direction_id: int | None
    stop_id: str
    stop_index: int
    stop_sequence: int
    service_date: dt.date
    headsign: str | None
    #: Scheduled departure; None for ADDED trips (they have no schedule).
    scheduled: dt.datetime | None
    #: Expected departure; the scheduled one when there is no realtime; None when cancelled
    #: or skipped.
    expected: dt.datetime | None
    #: Seconds late (negative: early); None without realtime.
    delay_s: int | None
    status: Status
    #: True when the feed says something about this call (not for scheduled or NO_DATA).
    realtime: bool
    uncertainty_s: int | None
    vehicle_id: str | None
    alert_ids: tuple[str, ...]
    #: ``scheduled``, ``cancelled``, ``added`` or ``duplicated``.
    trip_relationship: str
    #: The static departure (headsign, platform, accessibility...); None for ADDED trips.
    static: Departure | None

    @property
    def sort_time(self) -> dt.datetime:
        """Expected time, else scheduled (cancelled calls keep their slot)."""
        when = self.expected or self.scheduled
        assert when is not None
        return when


@dataclass(frozen=True, slots=True)
class RealtimeBoard:
    """A merged board and how much realtime is in it."""

    departures: list[RealtimeDeparture]
    explanation: Explanation | None
    #: At least one departure carries realtime data.
    realtime: bool
    #: Trip updates exist but are too old: the board is the schedule (DESIGN §4).
    stale: bool
    staleness: Staleness


def _status(call: RealtimeCall | None, on_time_s: int) -> tuple[Status, int | None]:
    if call is None or call.status == "scheduled":
        return "scheduled", None
    if call.status in ("skipped", "no_data", "cancelled"):
        return call.status, None  # type: ignore[return-value]
    delay = call.departure_delay
    if delay is None:
        return "scheduled", None
    if abs(delay) < on_time_s:
        return "on_time", delay
    return ("delayed" if delay > 0 else "early"), delay


def _alert_ids(
    tt: Timetable,
    alerts: list[AlertRealtime],
    route: int | None,
    direction: int | None,
    trip_id: str,
    stop: int,
) -> tuple[str, ...]:
    if not alerts:
        return ()
    stop_ids = [tt.stop_ids[stop]]
    parent = int(tt.stop_parent[stop])
    if parent >= 0:
        stop_ids.append(tt.stop_ids[parent])  # an alert on the station concerns its platforms
    kwargs = {
        "agency_id": tt.agency_ids[int(tt.route_agency[route])] if route is not None else None,
        "route_id": tt.route_ids[route] if route is not None else None,
        "route_type": int(tt.route_type[route]) if route is not None else None,
        "direction_id": direction,
        "trip_id": trip_id,
        "stop_ids": stop_ids,
    }
    return tuple(a.alert_id for a in alerts if any(entity_matches(e, **kwargs) for e in a.informed))


def _from_static(
    tt: Timetable,
    d: Departure,
    trip: TripRealtime | None,
    vehicle_id: str | None,
    alerts: list[AlertRealtime],
    on_time_s: int,
) -> RealtimeDeparture | None:
    call = None
    relationship = "scheduled"
    if trip is not None:
        if trip.relationship == "deleted":
            return None  # DELETED: gone from the rider's view, unlike CANCELED
        relationship = trip.relationship
        call = trip.call(d.stop_sequence)
        vehicle_id = trip.vehicle_id or vehicle_id
    status, delay = _status(call, on_time_s)
    expected: dt.datetime | None = d.departure
    if status in ("cancelled", "skipped"):
        expected = None
    elif delay is not None and call is not None and call.expected_departure is not None:
        expected = dt.datetime.fromtimestamp(call.expected_departure, d.departure.tzinfo)
    return RealtimeDeparture(
        trip_id=d.trip_id,
        route_id=d.route_id,
        route_index=d.route_index,
        direction_id=d.direction_id,
        stop_id=d.stop_id,
        stop_index=d.stop_index,
        stop_sequence=d.stop_sequence,
        service_date=d.service_date,
        headsign=d.headsign,
        scheduled=d.departure,
        expected=expected,
        delay_s=delay,
        status=status,
        realtime=call is not None and call.realtime,
        uncertainty_s=call.uncertainty if call is not None else None,
        vehicle_id=vehicle_id,
        alert_ids=_alert_ids(tt, alerts, d.route_index, d.direction_id, d.trip_id, d.stop_index),
        trip_relationship=relationship,
        static=d,
    )


def _extra(
    tt: Timetable,
    trip: TripRealtime,
    call: RealtimeCall,
    alerts: list[AlertRealtime],
    on_time_s: int,
) -> RealtimeDeparture | None:
    """A call of an ADDED or DUPLICATED trip, or None when it cannot be shown."""
    # A duplicated trip's calls without updates keep the copied schedule.
    when = call.expected_departure
    if when is None and call.status != "skipped":
        when = call.scheduled_departure
    if when is None or call is trip.calls[-1]:
        return None  # skipped, or the trip's last stop: nobody can board there
    route = trip.route_index
    agency = int(tt.route_agency[route]) if route is not None else 0
    zone = tt.zones[agency]
    scheduled = (
        dt.datetime.fromtimestamp(call.scheduled_departure, zone)
        if call.scheduled_departure is not None
        else None
    )
    status, delay = ("added", None)
    if trip.relationship == "duplicated":
        # A duplicated trip has a (copied) schedule, so its delay is meaningful; still "added".
        delay = call.departure_delay
    return RealtimeDeparture(
        trip_id=trip.trip_id,
        route_id=trip.route_id,
        route_index=route,
        direction_id=trip.direction_id,
        stop_id=call.stop_id,
        stop_index=call.stop_index,
        stop_sequence=call.stop_sequence,
        service_date=trip.service_date,
        headsign=trip.headsign,
        scheduled=scheduled,
        expected=dt.datetime.fromtimestamp(when, zone),
        delay_s=delay,
        status=status,  # type: ignore[arg-type]
        realtime=True,
        uncertainty_s=call.uncertainty,
        vehicle_id=trip.vehicle_id,
        alert_ids=_alert_ids(tt, alerts, route, trip.direction_id, trip.trip_id, call.stop_index),
        trip_relationship=trip.relationship,
        static=None,
    )


def merge_board(
    board: DepartureBoard,
    state: RealtimeState,
    tt: Timetable,
    now: dt.datetime,
    *,
    on_time_threshold_s: int = DEFAULT_ON_TIME_S,
    include_cancelled: bool = True,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    added_at_stops: Iterable[int] = (),
    route_filter: set[str] | None = None,
) -> list[RealtimeDeparture]:
    """The board's departures with realtime applied, sorted by expected time.

    ``window`` keeps calls whose expected (else scheduled) time lies in ``[start, end)``;
    ``added_at_stops`` (stop indices) brings in ADDED/DUPLICATED trips calling there.
    Stale sources are ignored, so a stale feed gives the plain schedule.
    """
    ts = now.timestamp()
    alerts = state.active_alerts(ts)
    out: list[RealtimeDeparture] = []
    for d in board.departures:
        ordinal = d.service_date.toordinal()
        vehicle = state.vehicle_of(d.run_index, ordinal, ts)
        merged = _from_static(
            tt,
            d,
            state.trip(d.run_index, ordinal, ts),
            vehicle.vehicle_id if vehicle else None,
            alerts,
            on_time_threshold_s,
        )
        if merged is not None:
            out.append(merged)
    for stop in dict.fromkeys(added_at_stops):
        for trip, call in state.extra_by_stop.get(stop, ()):
            if not state.source_fresh(trip.source, ts):
                continue
            if route_filter is not None and trip.route_id not in route_filter:
                continue
            extra = _extra(tt, trip, call, alerts, on_time_threshold_s)
            if extra is not None:
                out.append(extra)
    if not include_cancelled:
        out = [r for r in out if r.status != "cancelled"]
    if window is not None:
        start, end = window
        out = [r for r in out if start <= r.sort_time < end]
    out.sort(key=lambda r: (r.sort_time, r.scheduled or r.sort_time, r.route_id or ""))
    return out


def realtime_departures(
    tt: Timetable,
    state: RealtimeState,
    stop_ids: str | list[str],
    at: dt.datetime,
    now: dt.datetime,
    *,
    duration_s: int = 3600,
    limit: int = 20,
    route_filter: set[str] | None = None,
    include_cancelled: bool = True,
    on_time_threshold_s: int = DEFAULT_ON_TIME_S,
) -> RealtimeBoard:
    """The static query, widened for late/early trips, merged and cut to ``[at, at + dur)``."""
    staleness = state.staleness(now.timestamp())
    back = min(state.max_late_s, MAX_LOOKBACK_S)
    ahead = min(state.max_early_s, MAX_WIDEN_S)
    # The margin absorbs reordering: a later-scheduled early trip may overtake the limit-th.
    main = tt.departures(stop_ids, at, duration_s + ahead, limit + 20, route_filter)
    departures = list(main.departures)
    if back > 0:
        # Everything scheduled in the look-back slice: only realtime can tell which still leave.
        earlier = tt.departures(
            stop_ids, at - dt.timedelta(seconds=back), back, 100_000, route_filter
        )
        departures = earlier.departures + departures
    stops = boarding_stop_indices(tt, stop_ids)
    merged = merge_board(
        DepartureBoard(departures, main.explanation),
        state,
        tt,
        now,
        on_time_threshold_s=on_time_threshold_s,
        include_cancelled=include_cancelled,
        window=(at, at + dt.timedelta(seconds=duration_s)),
        added_at_stops=stops,
        route_filter=route_filter,
    )[:limit]
    explanation = main.explanation
    if not merged and explanation is None:
        explanation = "no_more_departures_in_window"
    return RealtimeBoard(
        merged,
        explanation if not merged else None,
        any(r.realtime for r in merged),
        staleness.trip_updates_stale,
        staleness,
    )

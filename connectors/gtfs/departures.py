"""The departures query: binary search in per-stop sorted arrays, over every service day
that can reach the requested window.

A GTFS time belongs to a *service day*, not a calendar day: a 25:10:00 departure of
service day D leaves at 01:10 on D + 1, so a query at 01:00 must also look at yesterday
(and further back if the feed has 48:00+ times). For each agency zone and each candidate
service day D we turn the query window into seconds after D's origin ("noon minus 12 h"),
``np.searchsorted`` each stop's slice for it, keep rows whose service runs on D, then merge.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from .timetable import Timetable

Explanation = Literal[
    "no_service_that_day", "terminus", "outside_feed_validity", "no_more_departures_in_window"
]
RouteDirectionKey = tuple[str, int | None]


@dataclass(frozen=True, slots=True)
class Frequency:
    """How a frequency-based run was generated (frequencies.txt)."""

    headway_s: int
    #: False for exact_times=0: the time is nominal, phones should say "every N min".
    exact_times: bool


@dataclass(frozen=True, slots=True)
class Departure:
    """One scheduled call at a stop, with everything a departure board shows."""

    stop_id: str
    stop_index: int
    stop_sequence: int
    trip_id: str
    trip_index: int
    run_index: int
    route_id: str
    route_index: int
    headsign: str | None
    direction_id: int | None
    service_date: dt.date
    #: Scheduled departure (aware, in the agency's zone).
    departure: dt.datetime
    #: Scheduled arrival (aware, in the agency's zone).
    arrival: dt.datetime
    timezone: str
    platform_code: str | None
    #: trips.txt wheelchair_accessible: 0 unknown, 1 yes, 2 no.
    wheelchair_accessible: int
    pickup_type: int
    drop_off_type: int
    #: The run ends here: riders cannot board (only returned with include_non_boarding).
    is_last_stop: bool
    frequency: Frequency | None


@dataclass(frozen=True, slots=True)
class DepartureBoard:
    """The answer: departures by time, and why it is empty when it is."""

    departures: list[Departure]
    explanation: Explanation | None


def _stop_indices(tt: Timetable, stop_ids: str | list[str]) -> list[int]:
    """Indices of the requested stops, stations expanded to their platforms."""
    ids = [stop_ids] if isinstance(stop_ids, str) else stop_ids
    found: list[int] = []
    for stop_id in ids:
        for s in tt.boarding_stops(tt.stop(stop_id)):
            if s not in found:
                found.append(s)
    return found


def _candidate_days(tt: Timetable, agency: int, start: float, end: float) -> list[int]:
    """Service-day ordinals whose times [time_min, time_max] can overlap [start, end)."""
    zone = tt.zones[agency]
    first = dt.datetime.fromtimestamp(start, zone).date().toordinal()
    last = dt.datetime.fromtimestamp(end, zone).date().toordinal()
    # A service day reaches back from its date by at most ceil(time_max / 1 day) days.
    back = math.ceil(tt.time_max / 86400) + 1
    days = []
    for ordinal in range(first - back, last + 2):
        origin = tt.service_day_origin(agency, ordinal)
        if origin + tt.time_max >= start and origin + tt.time_min < end:
            days.append(ordinal)
    return days


def _route_mask(tt: Timetable, route_filter: set[str] | None) -> np.ndarray | None:
    if route_filter is None:
        return None
    mask = np.zeros(len(tt.route_ids), bool)
    for route_id in route_filter:
        index = tt.route_index.get(route_id)
        if index is not None:
            mask[index] = True
    return mask


def find_rows(
    tt: Timetable,
    stops: list[int],
    start: float,
    end: float,
    route_mask: np.ndarray | None,
    include_non_boarding: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, service-day ordinals, POSIX departure times) of matching calls, unsorted."""
    rows_out: list[np.ndarray] = []
    days_out: list[np.ndarray] = []
    when_out: list[np.ndarray] = []
    n_days = tt.service_active.shape[1]
    several_zones = len(tt.zone_agency) > 1
    for zone, agency in enumerate(tt.zone_agency):
        for ordinal in _candidate_days(tt, agency, start, end):
            day = ordinal - tt.day0
            if not 0 <= day < n_days:
                continue
            running = tt.service_active[:, day]
            if not running.any():
                continue
            origin = tt.service_day_origin(agency, ordinal)
            lo, hi = math.ceil(start - origin), math.ceil(end - origin)
            for s in stops:
                a, b = int(tt.sd_ptr[s]), int(tt.sd_ptr[s + 1])
                times = tt.sd_time[a:b]
                i, j = np.searchsorted(times, (lo, hi), side="left")
                if i == j:
                    continue
                rows = tt.sd_row[a + i : a + j]
                runs = tt.st_run[rows]
                keep = running[tt.run_service[runs]]
                if several_zones:
                    keep &= tt.run_zone[runs] == zone
                if route_mask is not None:
                    keep &= route_mask[tt.trip_route[tt.run_trip[runs]]]
                if not include_non_boarding:
                    keep &= ~tt.st_is_last[rows] & (tt.st_pickup[rows] != 1)
                rows = rows[keep]
                if len(rows):
                    rows_out.append(rows)
                    days_out.append(np.full(len(rows), ordinal, np.int64))
                    when_out.append(origin + tt.st_dep[rows].astype(np.float64))
    if not rows_out:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty.astype(np.float64)
    return np.concatenate(rows_out), np.concatenate(days_out), np.concatenate(when_out)


def departures(
    tt: Timetable,
    stop_ids: str | list[str],
    at: dt.datetime,
    duration_s: int = 3600,
    limit: int = 20,
    route_filter: set[str] | None = None,
    include_non_boarding: bool = False,
) -> DepartureBoard:
    """Departures at the stops in ``[at, at + duration_s)``, earliest first, at most ``limit``.

    ``at`` must be timezone-aware. Unknown stop ids raise ``KeyError``. By default a run's
    last stop (terminus) and calls with pickup_type=1 are left out: riders cannot board.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("`at` must be a timezone-aware datetime")
    stops = _stop_indices(tt, stop_ids)
    start = at.timestamp()
    end = start + duration_s
    route_mask = _route_mask(tt, route_filter)
    rows, days, when = find_rows(tt, stops, start, end, route_mask, include_non_boarding)
    if not len(rows):
        return DepartureBoard([], explain(tt, stops, at, route_mask))
    order = _time_order(tt, rows, when)[:limit]
    return DepartureBoard(
        [_departure(tt, int(rows[k]), int(days[k])) for k in order.tolist()], None
    )


def _time_order(tt: Timetable, rows: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Order by time; ties broken by route then stop_sequence so results are stable."""
    return np.lexsort((tt.st_seq[rows], tt.trip_route[tt.run_trip[tt.st_run[rows]]], when))


def _departure(tt: Timetable, row: int, ordinal: int) -> Departure:
    run = int(tt.st_run[row])
    trip = int(tt.run_trip[run])
    route = int(tt.trip_route[trip])
    agency = int(tt.route_agency[route])
    stop = int(tt.st_stop[row])
    zone = tt.zones[agency]
    origin = tt.service_day_origin(agency, ordinal)
    headsign_code = int(tt.st_headsign[row])
    headsign = tt.headsigns[headsign_code] if headsign_code >= 0 else tt.trip_headsigns[trip]
    direction = int(tt.trip_direction[trip])
    headway = int(tt.run_headway[run])
    return Departure(
        stop_id=tt.stop_ids[stop],
        stop_index=stop,
        stop_sequence=int(tt.st_seq[row]),
        trip_id=tt.trip_ids[trip],
        trip_index=trip,
        run_index=run,
        route_id=tt.route_ids[route],
        route_index=route,
        headsign=headsign or None,
        direction_id=direction if direction >= 0 else None,
        service_date=dt.date.fromordinal(ordinal),
        departure=dt.datetime.fromtimestamp(origin + int(tt.st_dep[row]), zone),
        arrival=dt.datetime.fromtimestamp(origin + int(tt.st_arr[row]), zone),
        timezone=tt.agency_timezones[agency],
        platform_code=tt.stop_platform_codes[stop] or None,
        wheelchair_accessible=int(tt.trip_wheelchair[trip]),
        pickup_type=int(tt.st_pickup[row]),
        drop_off_type=int(tt.st_dropoff[row]),
        is_last_stop=bool(tt.st_is_last[row]),
        frequency=Frequency(headway, bool(tt.run_exact[run] == 1)) if headway > 0 else None,
    )


def explain(
    tt: Timetable, stops: list[int], at: dt.datetime, route_mask: np.ndarray | None
) -> Explanation:
    """Why a board is empty, judged on the service day of ``at`` in the feed's zone.

    Checked in order: date outside the feed, no run at these stops that day, only runs
    that end here (terminus) or do not pick up, else nothing left in the window.
    """
    rows = np.concatenate(
        [tt.sd_row[tt.sd_ptr[s] : tt.sd_ptr[s + 1]] for s in stops] or [np.zeros(0, np.int32)]
    )
    runs = tt.st_run[rows]
    # Judge the day in the zone of the agency serving these stops (the first one's).
    agency = int(tt.run_agency[runs[0]]) if len(runs) else 0
    ordinal = at.astimezone(tt.zones[agency]).date().toordinal()
    first, last = tt.first_service_day, tt.last_service_day
    if first is None or last is None or not first <= ordinal <= last:
        return "outside_feed_validity"
    running = tt.service_active[:, ordinal - tt.day0]
    today = running[tt.run_service[runs]]
    if route_mask is not None:
        today &= route_mask[tt.trip_route[tt.run_trip[runs]]]
    if not today.any():
        return "no_service_that_day"
    boarding = today & ~tt.st_is_last[rows] & (tt.st_pickup[rows] != 1)
    if not boarding.any():
        return "terminus"
    return "no_more_departures_in_window"


def next_by_route_direction(
    tt: Timetable,
    stop_ids: str | list[str],
    at: dt.datetime,
    per_group: int = 2,
    duration_s: int = 3 * 3600,
) -> dict[RouteDirectionKey, list[Departure]]:
    """The next ``per_group`` departures of each (route_id, direction_id), in time order."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("`at` must be a timezone-aware datetime")
    start = at.timestamp()
    rows, days, when = find_rows(
        tt, _stop_indices(tt, stop_ids), start, start + duration_s, None, False
    )
    order = _time_order(tt, rows, when)
    rows, days = rows[order], days[order]
    # Pick the first per_group rows of each (route, direction) before building any object.
    trips = tt.run_trip[tt.st_run[rows]]
    key = tt.trip_route[trips].astype(np.int64) * 4 + (tt.trip_direction[trips] + 1)
    groups: dict[RouteDirectionKey, list[Departure]] = {}
    taken: dict[int, int] = {}
    for k, group_key in enumerate(key.tolist()):
        if taken.get(group_key, 0) >= per_group:
            continue
        taken[group_key] = taken.get(group_key, 0) + 1
        dep = _departure(tt, int(rows[k]), int(days[k]))
        groups.setdefault((dep.route_id, dep.direction_id), []).append(dep)
    return groups

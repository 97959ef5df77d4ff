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
from bisect import bisect_left
from collections.abc import Sequence
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


def boarding_stop_indices(tt: Timetable, stop_ids: str | list[str]) -> tuple[int, ...]:
    """Indices of the requested stops, stations expanded to their platforms."""
    if isinstance(stop_ids, str):
        # A board asks for one stop: remembered per timetable (at most one entry per stop).
        known: dict[str, tuple[int, ...]] = tt.query_caches.setdefault("boarding_stops", {})
        found = known.get(stop_ids)
        if found is None:
            found = known[stop_ids] = boarding_stop_indices(tt, [stop_ids])
        return found
    indices: list[int] = []
    for stop_id in stop_ids:
        for s in tt.boarding_stops(tt.stop(stop_id)):
            if s not in indices:
                indices.append(s)
    return tuple(indices)


def _route_mask(tt: Timetable, route_filter: set[str] | None) -> np.ndarray | None:
    if route_filter is None:
        return None
    mask = np.zeros(len(tt.route_ids), bool)
    for route_id in route_filter:
        index = tt.route_index.get(route_id)
        if index is not None:
            mask[index] = True
    return mask


@dataclass(frozen=True, slots=True)
class SearchIndex:
    """Per-row facts of the departure index (``sd_*`` order) that every query filters on,
    gathered once per timetable so a query slices them instead of gathering row by row."""

    #: Service index of each row's run.
    service: np.ndarray
    #: The same, except rows where riders cannot board (a run's last stop, pickup_type=1)
    #: point at a service that never runs: one gather then filters both at once.
    service_boarding: np.ndarray
    #: Zone (of ``Timetable.zone_agency``) of each row's run; None with one zone.
    zone: np.ndarray | None
    #: ``running[day]`` is the services running that day (``service_active`` transposed, and
    #: one more column, always False, for the never-running service above).
    running: np.ndarray
    #: Whether any service runs on each day.
    any_running: list[bool]
    #: Per zone (``Timetable.zone_agency``), the origin (POSIX, "noon minus 12 h") of each
    #: day of the feed: increasing, so the days that can reach a window are bisected for.
    origins: list[list[float]]
    #: ``sd_ptr`` as Python ints.
    ptr: list[int]
    #: Each stop's earliest and latest departure seconds (0, -1 for a stop without any).
    first: list[int]
    last: list[int]


def search_index(tt: Timetable) -> SearchIndex:
    """The timetable's :class:`SearchIndex` (built on first use or by the warm-up)."""
    index: SearchIndex | None = tt.query_caches.get("search")
    if index is None:
        runs = tt.st_run[tt.sd_row]
        n_services, n_days = tt.service_active.shape
        dtype = np.int16 if n_services < 2**15 - 1 else np.int32
        service = tt.run_service[runs].astype(dtype)
        boardable = ~tt.st_is_last[tt.sd_row] & (tt.st_pickup[tt.sd_row] != 1)
        running = np.zeros((n_days, n_services + 1), dtype=bool)
        running[:, :n_services] = tt.service_active.T
        empty = tt.sd_ptr[1:] == tt.sd_ptr[:-1]
        times = tt.sd_time if len(tt.sd_time) else np.zeros(1, np.int32)
        top = len(times) - 1
        index = tt.query_caches["search"] = SearchIndex(
            service=service,
            service_boarding=np.where(boardable, service, n_services).astype(dtype),
            zone=tt.run_zone[runs] if len(tt.zone_agency) > 1 else None,
            running=running,
            any_running=tt.service_active.any(axis=0).tolist(),
            origins=[
                [tt.service_day_origin(agency, tt.day0 + day) for day in range(n_days)]
                for agency in tt.zone_agency
            ],
            ptr=tt.sd_ptr.tolist(),
            first=np.where(empty, 0, times[np.minimum(tt.sd_ptr[:-1], top)]).tolist(),
            last=np.where(empty, -1, times[np.clip(tt.sd_ptr[1:] - 1, 0, top)]).tolist(),
        )
    return index


def find_rows(
    tt: Timetable,
    stops: Sequence[int],
    start: float,
    end: float,
    route_mask: np.ndarray | None,
    include_non_boarding: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, service-day ordinals, POSIX departure times) of matching calls, unsorted."""
    return _find_rows(tt, stops, start, end, route_mask, include_non_boarding)[:3]


def _find_rows(
    tt: Timetable,
    stops: Sequence[int],
    start: float,
    end: float,
    route_mask: np.ndarray | None,
    include_non_boarding: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """:func:`find_rows`, and whether the calls come from one slice (so are by time)."""
    rows_out: list[np.ndarray] = []
    days_out: list[int] = []
    when_out: list[np.ndarray] = []
    index = search_index(tt)
    ptr, sd_time, sd_row = index.ptr, tt.sd_time, tt.sd_row
    services = index.service if include_non_boarding else index.service_boarding
    # The service days whose times [time_min, time_max] can overlap [start, end).
    earliest, latest = start - tt.time_max, end - tt.time_min
    for zone, origins in enumerate(index.origins):
        for day in range(bisect_left(origins, earliest), bisect_left(origins, latest)):
            if not index.any_running[day]:
                continue
            running = index.running[day]
            origin = origins[day]
            lo, hi = math.ceil(start - origin), math.ceil(end - origin)
            for s in stops:
                if hi <= index.first[s] or lo > index.last[s]:
                    continue
                a, b = ptr[s], ptr[s + 1]
                times = sd_time[a:b]
                i, j = int(times.searchsorted(lo)), int(times.searchsorted(hi))
                if i == j:
                    continue
                span = slice(a + i, a + j)
                keep = running[services[span]]
                if index.zone is not None:
                    keep &= index.zone[span] == zone
                if route_mask is not None:
                    keep &= route_mask[tt.trip_route[tt.run_trip[tt.st_run[sd_row[span]]]]]
                rows = sd_row[span][keep]
                if len(rows):
                    rows_out.append(rows)
                    days_out.append(tt.day0 + day)
                    when_out.append(origin + times[i:j][keep].astype(np.float64))
    if not rows_out:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty.astype(np.float64), True
    days = [np.full(len(r), day, np.int64) for r, day in zip(rows_out, days_out, strict=True)]
    if len(rows_out) == 1:
        return rows_out[0], days[0], when_out[0], True
    return np.concatenate(rows_out), np.concatenate(days), np.concatenate(when_out), False


def board_rows(
    tt: Timetable,
    stop_ids: str | list[str],
    at: dt.datetime,
    duration_s: int = 3600,
    limit: int = 20,
    route_filter: set[str] | None = None,
    include_non_boarding: bool = False,
) -> tuple[np.ndarray, np.ndarray, Explanation | None]:
    """What :func:`departures` answers, as (stop time rows, service-day ordinals) in board
    order, and the explanation when there are none: the JSON views build from these directly."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("`at` must be a timezone-aware datetime")
    stops = boarding_stop_indices(tt, stop_ids)
    start = at.timestamp()
    end = start + duration_s
    route_mask = _route_mask(tt, route_filter)
    rows, days, when, single = _find_rows(tt, stops, start, end, route_mask, include_non_boarding)
    if not len(rows):
        return rows, days, explain(tt, stops, at, route_mask)
    if single:
        # One stop on one service day: already by time. Ties (same second) are broken by
        # route then stop_sequence, and only calls up to the last one tied with the
        # limit-th can reach the board: order those alone.
        cut = len(rows)
        if cut > limit:
            cut = int(when.searchsorted(when[limit - 1], side="right"))
            rows, days, when = rows[:cut], days[:cut], when[:cut]
        if cut < 2:
            return rows, days, None
    elif len(rows) > 4 * limit:
        # Many calls (a big station): only those no later than the limit-th can be shown.
        kth = np.partition(when, limit - 1)[limit - 1]
        near = np.flatnonzero(when <= kth)
        rows, days, when = rows[near], days[near], when[near]
    order = _time_order(tt, rows, when)[:limit]
    return rows[order], days[order], None


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
    rows, days, explanation = board_rows(
        tt, stop_ids, at, duration_s, limit, route_filter, include_non_boarding
    )
    return DepartureBoard(build_departures(tt, rows, days), explanation)


def _time_order(tt: Timetable, rows: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Order by time; ties broken by route then stop_sequence so results are stable."""
    return np.lexsort((tt.st_seq[rows], tt.trip_route[tt.run_trip[tt.st_run[rows]]], when))


class LocalClock:
    """Local times of a timetable's instants, memoised: a board asks for the same few thousand
    instants over and over (each is ``datetime.fromtimestamp(posix, zone)``, and its ISO text).

    Keyed on (agency, POSIX second), never on a datetime (two wall times of the autumn DST
    hour compare equal). Cleared when it grows past ``MAX_ENTRIES``.
    """

    MAX_ENTRIES = 50_000

    def __init__(self, zones: list[dt.tzinfo]) -> None:
        self.zones = zones
        self._times: dict[tuple[int, float], dt.datetime] = {}
        self._iso: dict[tuple[int, float], str] = {}
        self._dates: dict[int, dt.date] = {}
        self._date_iso: dict[int, str] = {}

    def time(self, agency: int, posix: float) -> dt.datetime:
        key = (agency, posix)
        found = self._times.get(key)
        if found is None:
            if len(self._times) >= self.MAX_ENTRIES:
                self._times.clear()
            found = self._times[key] = dt.datetime.fromtimestamp(posix, self.zones[agency])
        return found

    def iso(self, agency: int, posix: float) -> str:
        key = (agency, posix)
        found = self._iso.get(key)
        if found is None:
            if len(self._iso) >= self.MAX_ENTRIES:
                self._iso.clear()
            found = self._iso[key] = self.time(agency, posix).isoformat()
        return found

    def date(self, ordinal: int) -> dt.date:
        found = self._dates.get(ordinal)
        if found is None:
            if len(self._dates) >= 10_000:
                self._dates.clear()
            found = self._dates[ordinal] = dt.date.fromordinal(ordinal)
        return found

    def date_iso(self, ordinal: int) -> str:
        found = self._date_iso.get(ordinal)
        if found is None:
            if len(self._date_iso) >= 10_000:
                self._date_iso.clear()
            found = self._date_iso[ordinal] = self.date(ordinal).isoformat()
        return found


def local_clock(tt: Timetable) -> LocalClock:
    """The timetable's :class:`LocalClock` (made on first use, lives as long as it)."""
    clock: LocalClock | None = tt.query_caches.get("clock")
    if clock is None:
        clock = tt.query_caches["clock"] = LocalClock(tt.zones)
    return clock


def gather(tt: Timetable, rows: np.ndarray, days: np.ndarray) -> dict[str, list]:
    """Per-row attributes of the calls ``rows`` (one numpy gather each, as Python lists)."""
    runs = tt.st_run[rows]
    trips = tt.run_trip[runs]
    routes = tt.trip_route[trips]
    return {
        "ordinal": days.tolist(),
        "run": runs.tolist(),
        "trip": trips.tolist(),
        "route": routes.tolist(),
        "agency": tt.route_agency[routes].tolist(),
        "stop": tt.st_stop[rows].tolist(),
        "headsign": tt.st_headsign[rows].tolist(),
        "direction": tt.trip_direction[trips].tolist(),
        "headway": tt.run_headway[runs].tolist(),
        "exact": tt.run_exact[runs].tolist(),
        "seq": tt.st_seq[rows].tolist(),
        "dep": tt.st_dep[rows].tolist(),
        "arr": tt.st_arr[rows].tolist(),
        "wheelchair": tt.trip_wheelchair[trips].tolist(),
        "pickup": tt.st_pickup[rows].tolist(),
        "dropoff": tt.st_dropoff[rows].tolist(),
        "last": tt.st_is_last[rows].tolist(),
    }


def build_departures(tt: Timetable, rows: np.ndarray, days: np.ndarray) -> list[Departure]:
    """The :class:`Departure` of each (row, service-day ordinal), in order."""
    if not len(rows):
        return []
    g = gather(tt, rows, days)
    clock = local_clock(tt)
    origin_of = tt.service_day_origin
    out = []
    for k, ordinal in enumerate(g["ordinal"]):
        run, trip, route = g["run"][k], g["trip"][k], g["route"][k]
        agency, stop, code = g["agency"][k], g["stop"][k], g["headsign"][k]
        direction, headway = g["direction"][k], g["headway"][k]
        origin = origin_of(agency, ordinal)
        headsign = tt.headsigns[code] if code >= 0 else tt.trip_headsigns[trip]
        out.append(
            Departure(
                stop_id=tt.stop_ids[stop],
                stop_index=stop,
                stop_sequence=g["seq"][k],
                trip_id=tt.trip_ids[trip],
                trip_index=trip,
                run_index=run,
                route_id=tt.route_ids[route],
                route_index=route,
                headsign=headsign or None,
                direction_id=direction if direction >= 0 else None,
                service_date=clock.date(ordinal),
                departure=clock.time(agency, origin + g["dep"][k]),
                arrival=clock.time(agency, origin + g["arr"][k]),
                timezone=tt.agency_timezones[agency],
                platform_code=tt.stop_platform_codes[stop] or None,
                wheelchair_accessible=g["wheelchair"][k],
                pickup_type=g["pickup"][k],
                drop_off_type=g["dropoff"][k],
                is_last_stop=g["last"][k],
                frequency=Frequency(headway, g["exact"][k] == 1) if headway > 0 else None,
            )
        )
    return out


def _departure(tt: Timetable, row: int, ordinal: int) -> Departure:
    """One call's :class:`Departure` (see :func:`build_departures` for many)."""
    return build_departures(tt, np.array([row]), np.array([ordinal]))[0]


def explain(
    tt: Timetable, stops: Sequence[int], at: dt.datetime, route_mask: np.ndarray | None
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
        tt, boarding_stop_indices(tt, stop_ids), start, start + duration_s, None, False
    )
    order = _time_order(tt, rows, when)
    rows, days = rows[order], days[order]
    # Pick the first per_group rows of each (route, direction) before building any object.
    trips = tt.run_trip[tt.st_run[rows]]
    key = tt.trip_route[trips].astype(np.int64) * 4 + (tt.trip_direction[trips] + 1)
    groups: dict[RouteDirectionKey, list[Departure]] = {}
    taken: dict[int, int] = {}
    picked: list[int] = []
    for k, group_key in enumerate(key.tolist()):
        if taken.get(group_key, 0) >= per_group:
            continue
        taken[group_key] = taken.get(group_key, 0) + 1
        picked.append(k)
    for dep in build_departures(tt, rows[picked], days[picked]):
        groups.setdefault((dep.route_id, dep.direction_id), []).append(dep)
    return groups

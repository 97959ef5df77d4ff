"""The compiled timetable: columnar numpy arrays plus a few string tables.

Vocabulary (ids are native GTFS ids; the wiring layer namespaces them):

- *trip*: a row of trips.txt (``trip_*`` arrays, indexed by trip index).
- *run*: one vehicle journey on a service day. A plain trip is one run; a trip in
  frequencies.txt expands to one run per start time (``run_*`` arrays). A GTFS-RT
  frequency trip is matched by trip_id plus start time, hence the distinction.
- *stop time rows* (``st_*``): grouped by run, in stop_sequence order;
  ``st_ptr[r]:st_ptr[r + 1]`` are the rows of run ``r``.
- *departure index* (``sd_*``): the same rows grouped by stop, sorted by departure
  seconds within each stop; ``sd_ptr[s]:sd_ptr[s + 1]`` is stop ``s``'s slice. It is what the
  departures query binary-searches.
- *shapes* (``shape_*``, optional shapes.txt): the points of shape ``k`` are
  ``shape_lat/lon[shape_ptr[k]:shape_ptr[k + 1]]`` in shape_pt_sequence order;
  ``trip_shape`` gives each trip's shape (-1: none), see :mod:`.shapes`.
- Times are seconds after "noon minus 12 h" of the service date in the agency's zone
  (they can exceed 24 h). Services are rows of ``service_active[service, day]`` where day
  0 is the ordinal ``day0``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from .errors import LoadIssue
from .modes import mode_name

if TYPE_CHECKING:
    from .departures import Departure, DepartureBoard, RouteDirectionKey
    from .patterns import RouteDirection
    from .search import GeoIndex, NameIndex

#: Bumped whenever the saved layout changes, so a stale cache is recompiled.
FORMAT_VERSION = 2

#: Arrays saved by :meth:`Timetable.save`, with their dtypes.
ARRAY_FIELDS: dict[str, type] = {
    "stop_lat": np.float64,
    "stop_lon": np.float64,
    "stop_location_type": np.int8,
    "stop_parent": np.int32,
    "stop_wheelchair": np.int8,
    "route_type": np.int32,
    "route_agency": np.int32,
    "route_sort_order": np.int32,
    "trip_route": np.int32,
    "trip_service": np.int32,
    "trip_direction": np.int8,
    "trip_wheelchair": np.int8,
    "trip_bikes": np.int8,
    "trip_shape": np.int32,
    "shape_ptr": np.int64,
    "shape_lat": np.float32,
    "shape_lon": np.float32,
    "run_trip": np.int32,
    "run_start": np.int32,
    "run_headway": np.int32,
    "run_exact": np.int8,
    "st_ptr": np.int64,
    "st_stop": np.int32,
    "st_seq": np.int32,
    "st_arr": np.int32,
    "st_dep": np.int32,
    "st_pickup": np.int8,
    "st_dropoff": np.int8,
    "st_headsign": np.int32,
    "sd_ptr": np.int64,
    "sd_time": np.int32,
    "sd_row": np.int32,
    "service_active": np.bool_,
}

#: String tables saved as JSON lists.
STRING_FIELDS = (
    "agency_ids",
    "agency_names",
    "agency_timezones",
    "agency_urls",
    "agency_langs",
    "stop_ids",
    "stop_codes",
    "stop_names",
    "stop_platform_codes",
    "stop_timezones",
    "route_ids",
    "route_short_names",
    "route_long_names",
    "route_colors",
    "route_text_colors",
    "trip_ids",
    "trip_headsigns",
    "trip_short_names",
    "trip_block_ids",
    "trip_shape_ids",
    "service_ids",
    "headsigns",
    "shape_ids",
)


@dataclass(eq=False)
class Timetable:
    """A compiled GTFS feed. Build with :func:`connectors.gtfs.compile_feed` or :meth:`load`."""

    # --- string tables (index-aligned with the arrays of the same prefix). Stored as tuples
    # whatever sequence they are given: the cyclic collector stops tracking a tuple of
    # strings the first time it sees one, while a list stays tracked and every full
    # collection reads all its items (a 10M feed's lists made each one last ~100 ms).
    agency_ids: tuple[str, ...]
    agency_names: tuple[str, ...]
    agency_timezones: tuple[str, ...]
    agency_urls: tuple[str, ...]
    agency_langs: tuple[str, ...]
    stop_ids: tuple[str, ...]
    stop_codes: tuple[str, ...]
    stop_names: tuple[str, ...]
    stop_platform_codes: tuple[str, ...]
    stop_timezones: tuple[str, ...]
    route_ids: tuple[str, ...]
    route_short_names: tuple[str, ...]
    route_long_names: tuple[str, ...]
    route_colors: tuple[str, ...]
    route_text_colors: tuple[str, ...]
    trip_ids: tuple[str, ...]
    trip_headsigns: tuple[str, ...]
    trip_short_names: tuple[str, ...]
    trip_block_ids: tuple[str, ...]
    trip_shape_ids: tuple[str, ...]
    service_ids: tuple[str, ...]
    headsigns: tuple[str, ...]
    #: Shapes some trip uses (shapes.txt, optional; see :mod:`.shapes`).
    shape_ids: tuple[str, ...]
    # --- arrays
    stop_lat: np.ndarray
    stop_lon: np.ndarray
    stop_location_type: np.ndarray
    stop_parent: np.ndarray
    stop_wheelchair: np.ndarray
    route_type: np.ndarray
    route_agency: np.ndarray
    route_sort_order: np.ndarray
    trip_route: np.ndarray
    trip_service: np.ndarray
    trip_direction: np.ndarray
    trip_wheelchair: np.ndarray
    trip_bikes: np.ndarray
    #: Index into ``shape_ids`` of each trip's shape; -1 when it has none (drawn from stops).
    trip_shape: np.ndarray
    #: Shape ``k``'s points are ``shape_lat/lon[shape_ptr[k]:shape_ptr[k + 1]]``, in order.
    shape_ptr: np.ndarray
    shape_lat: np.ndarray
    shape_lon: np.ndarray
    run_trip: np.ndarray
    run_start: np.ndarray
    run_headway: np.ndarray
    run_exact: np.ndarray
    st_ptr: np.ndarray
    st_stop: np.ndarray
    st_seq: np.ndarray
    st_arr: np.ndarray
    st_dep: np.ndarray
    st_pickup: np.ndarray
    st_dropoff: np.ndarray
    st_headsign: np.ndarray
    sd_ptr: np.ndarray
    sd_time: np.ndarray
    sd_row: np.ndarray
    service_active: np.ndarray
    day0: int
    # --- provenance
    source_hash: str | None = None
    feed_info: dict[str, str] = field(default_factory=dict)
    issues: list[LoadIssue] = field(default_factory=list)
    issue_counts: dict[str, int] = field(default_factory=dict)
    #: Extra trips.txt columns kept as text (the gtfs source's ``keep_trip_columns``), by
    #: name, index-aligned with the trips: what realtime trip-id conventions may refer to.
    trip_extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in STRING_FIELDS:
            setattr(self, name, tuple(getattr(self, name)))
        self.trip_extra = {name: tuple(values) for name, values in self.trip_extra.items()}
        self._build_derived()

    # ------------------------------------------------------------------ derived
    def _build_derived(self) -> None:
        """Lookups rebuilt after compile and after load (cheap, so never saved)."""
        self.stop_index: dict[str, int] = {s: i for i, s in enumerate(self.stop_ids)}
        self.route_index: dict[str, int] = {r: i for i, r in enumerate(self.route_ids)}
        self.trip_index: dict[str, int] = {t: i for i, t in enumerate(self.trip_ids)}
        self.agency_index: dict[str, int] = {a: i for i, a in enumerate(self.agency_ids)}
        n_runs = len(self.run_trip)
        # Row → run, for the few rows a query touches.
        self.st_run = np.repeat(np.arange(n_runs, dtype=np.int32), np.diff(self.st_ptr))
        last = np.zeros(len(self.st_stop), dtype=bool)
        nonempty = self.st_ptr[1:] > self.st_ptr[:-1]
        last[self.st_ptr[1:][nonempty] - 1] = True
        self.st_is_last = last
        self.zones: list[ZoneInfo] = [ZoneInfo(name) for name in self.agency_timezones]
        self.run_agency = self.route_agency[self.trip_route[self.run_trip]].astype(np.int32)
        self.run_service = self.trip_service[self.run_trip]
        # Queries loop over the distinct zones of agencies that run something (usually one),
        # using one agency of each zone to compute service-day origins.
        zone_names = sorted({self.agency_timezones[a] for a in np.unique(self.run_agency).tolist()})
        zone_of_name = {name: z for z, name in enumerate(zone_names)}
        agency_zone = np.array(
            [zone_of_name.get(name, 0) for name in self.agency_timezones], dtype=np.int32
        )
        self.run_zone = agency_zone[self.run_agency] if len(self.run_agency) else self.run_agency
        self.zone_agency: list[int] = [
            self.agency_timezones.index(name) for name in zone_names
        ] or [0]
        self.time_min = int(self.st_dep.min()) if len(self.st_dep) else 0
        self.time_max = int(self.st_dep.max()) if len(self.st_dep) else 0
        order = np.argsort(self.stop_parent, kind="stable")
        parents = self.stop_parent[order]
        # Children of station s are child_order[child_ptr[s]:child_ptr[s + 1]].
        has_parent = parents >= 0
        self._child_order = order[has_parent].astype(np.int32)
        counts = np.bincount(parents[has_parent], minlength=len(self.stop_ids))
        self._child_ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        # Runs of trip t are trip_run_order[trip_run_ptr[t]:trip_run_ptr[t + 1]], in run order
        # (arrays, not a dict of lists: no Python object per trip for the collector to walk).
        self._trip_run_order = np.argsort(self.run_trip, kind="stable").astype(np.int32)
        self._trip_run_ptr = np.concatenate(
            ([0], np.cumsum(np.bincount(self.run_trip, minlength=len(self.trip_ids))))
        ).astype(np.int64)
        active_days = np.flatnonzero(self.service_active.any(axis=0))
        self.first_service_day: int | None = (
            int(active_days[0]) + self.day0 if len(active_days) else None
        )
        self.last_service_day: int | None = (
            int(active_days[-1]) + self.day0 if len(active_days) else None
        )
        # Per instance, not functools.lru_cache: a class-level cache would keep old feeds alive.
        self._origins: dict[tuple[int, int], float] = {}
        #: Memos of the query and view layers (local times, JSON pieces), dropped with the feed.
        self.query_caches: dict[Any, Any] = {}
        self._name_index: NameIndex | None = None
        self._geo_index: GeoIndex | None = None
        self._directions: dict[int, list[RouteDirection]] | None = None

    # ------------------------------------------------------------------ summary
    @property
    def feed_start_date(self) -> dt.date | None:
        """First date on which any service runs."""
        day = self.first_service_day
        return dt.date.fromordinal(day) if day is not None else None

    @property
    def feed_end_date(self) -> dt.date | None:
        """Last date on which any service runs."""
        day = self.last_service_day
        return dt.date.fromordinal(day) if day is not None else None

    @property
    def counts(self) -> dict[str, int]:
        """How many of each thing the timetable holds."""
        return {
            "agencies": len(self.agency_ids),
            "stops": len(self.stop_ids),
            "routes": len(self.route_ids),
            "trips": len(self.trip_ids),
            "runs": len(self.run_trip),
            "services": len(self.service_ids),
            "stop_times": len(self.st_stop),
            "issues": sum(self.issue_counts.values()),
        }

    def route_mode(self, route: int) -> str:
        """The mode name (``"bus"``, ``"tram"``...) of route index ``route``."""
        return mode_name(int(self.route_type[route]))

    def agency_zone(self, agency: int) -> ZoneInfo:
        """The time zone of agency index ``agency``."""
        return self.zones[agency]

    # ------------------------------------------------------------------ stops
    def stop(self, stop_id: str) -> int:
        """Index of ``stop_id``; raises ``KeyError`` if unknown."""
        return self.stop_index[stop_id]

    def children(self, stop: int) -> np.ndarray:
        """Indices of the stops whose parent_station is ``stop``."""
        return self._child_order[self._child_ptr[stop] : self._child_ptr[stop + 1]]

    def boarding_stops(self, stop: int) -> list[int]:
        """The stop itself plus, for a station, its platforms (and their boarding areas)."""
        found = [stop]
        frontier = [stop]
        # Stations hold platforms, platforms may hold boarding areas: walk two levels.
        for _ in range(2):
            frontier = [int(c) for s in frontier for c in self.children(s)]
            found.extend(frontier)
        return found

    def routes_at_stop(self, stop: int) -> list[int]:
        """Route indices serving ``stop`` (its own stop times, not its children's)."""
        rows = self.sd_row[self.sd_ptr[stop] : self.sd_ptr[stop + 1]]
        routes = np.unique(self.trip_route[self.run_trip[self.st_run[rows]]])
        return routes.tolist()

    # ------------------------------------------------------------------ trips and runs
    def runs_of_trip(self, trip: int) -> list[int]:
        """Run indices of trip index ``trip`` (several for a frequency-based trip)."""
        if not 0 <= trip < len(self.trip_ids):
            return []
        lo, hi = self._trip_run_ptr[trip], self._trip_run_ptr[trip + 1]
        return self._trip_run_order[lo:hi].tolist()

    def only_run_of_trips(self) -> np.ndarray:
        """Per trip index, its run when it has exactly one, else -1 (none, or one per start of
        a frequency-based trip)."""
        single = np.full(len(self.trip_ids), -1, dtype=np.int64)
        one = np.flatnonzero(np.diff(self._trip_run_ptr) == 1)
        single[one] = self._trip_run_order[self._trip_run_ptr[one]]
        return single

    def run_stop_times(self, run: int) -> list[tuple[int, str, int, int]]:
        """Ordered ``(stop_sequence, stop_id, arrival_s, departure_s)`` of one run."""
        a, b = int(self.st_ptr[run]), int(self.st_ptr[run + 1])
        return [
            (seq, self.stop_ids[stop], arr, dep)
            for seq, stop, arr, dep in zip(
                self.st_seq[a:b].tolist(),
                self.st_stop[a:b].tolist(),
                self.st_arr[a:b].tolist(),
                self.st_dep[a:b].tolist(),
                strict=True,
            )
        ]

    def service_dates(self, trip: int) -> list[dt.date]:
        """Dates on which trip index ``trip`` runs."""
        days = np.flatnonzero(self.service_active[self.trip_service[trip]])
        return [dt.date.fromordinal(int(d) + self.day0) for d in days]

    def is_active(self, service: int, date: dt.date) -> bool:
        """Whether service index ``service`` runs on ``date``."""
        day = date.toordinal() - self.day0
        return 0 <= day < self.service_active.shape[1] and bool(self.service_active[service, day])

    # ------------------------------------------------------------------ service-day clock
    def service_day_origin(self, agency: int, ordinal: int) -> float:
        """POSIX time of "noon minus 12 h" on service date ``ordinal`` in ``agency``'s zone.

        Noon is never inside a DST transition, so on the two change days the origin is
        23:00 or 01:00 local and every GTFS time lands on the right instant (google/transit#325).
        """
        key = (agency, ordinal)
        origin = self._origins.get(key)
        if origin is None:
            date = dt.date.fromordinal(ordinal)
            noon = dt.datetime(date.year, date.month, date.day, 12, tzinfo=self.zones[agency])
            origin = self._origins[key] = noon.timestamp() - 43200
        return origin

    # ------------------------------------------------------------------ queries
    def departures(
        self,
        stop_ids: str | list[str],
        at: dt.datetime,
        duration_s: int = 3600,
        limit: int = 20,
        route_filter: set[str] | None = None,
        include_non_boarding: bool = False,
    ) -> DepartureBoard:
        """Departures from the stops (stations gather their platforms); see :mod:`.departures`."""
        from .departures import departures

        return departures(self, stop_ids, at, duration_s, limit, route_filter, include_non_boarding)

    def next_by_route_direction(
        self,
        stop_ids: str | list[str],
        at: dt.datetime,
        per_group: int = 2,
        duration_s: int = 3 * 3600,
    ) -> dict[RouteDirectionKey, list[Departure]]:
        """The next ``per_group`` departures of each (route_id, direction_id) at the stops."""
        from .departures import next_by_route_direction

        return next_by_route_direction(self, stop_ids, at, per_group, duration_s)

    def search_stops(self, query: str, limit: int = 10) -> list[tuple[int, float]]:
        """Stops whose name matches ``query`` (accents, case, word prefixes), best first."""
        if self._name_index is None:
            from .search import NameIndex

            self._name_index = NameIndex(self.stop_names, self.stop_location_type, self.stop_parent)
        return self._name_index.search(query, limit)

    def nearest_stops(
        self,
        lat: float,
        lon: float,
        radius_m: float = 500.0,
        limit: int = 20,
        location_types: tuple[int, ...] | None = (0, 1),
    ) -> list[tuple[int, float]]:
        """``(stop index, distance in metres)`` within ``radius_m``, nearest first.

        By default only stops/platforms and stations; ``location_types=None`` keeps all.
        """
        if self._geo_index is None:
            from .search import GeoIndex

            self._geo_index = GeoIndex(self.stop_lat, self.stop_lon)
        allowed = None
        if location_types is not None:
            allowed = np.isin(self.stop_location_type, location_types)
        return self._geo_index.nearest(lat, lon, radius_m, limit, allowed)

    def route_directions(self, route: int) -> list[RouteDirection]:
        """Per direction, the most common stop pattern of route index ``route``."""
        from .patterns import route_directions

        return route_directions(self, route)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the timetable to ``path`` (one uncompressed ``.npz``, replaced atomically)."""
        from .store import save

        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Timetable:
        """Read a timetable written by :meth:`save`."""
        from .store import load

        return load(path)

    def issue_summary(self) -> Counter[str]:
        """Issue counts by code."""
        return Counter(self.issue_counts)

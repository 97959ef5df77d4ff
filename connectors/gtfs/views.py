"""Timetables as phones see them: namespaced ids, and the JSON shapes of stops, lines and
departures. Shared by the transit endpoints (and, later, by the realtime merge)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
import orjson

from aggregator.api.messages import EXPLANATIONS, coded
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter, NotFound
from aggregator.model import Snapshot
from aggregator.runtime import Runtime

from .departures import Departure, gather, local_clock, search_index
from .timetable import Timetable

#: The widest radius a nearby search takes (stops, departures).
MAX_RADIUS_M = 5000.0

T = TypeVar("T")
LOCATION_TYPES = {0: "stop", 1: "station", 2: "entrance", 3: "generic_node", 4: "boarding_area"}
WHEELCHAIR = {0: None, 1: True, 2: False}


def warm_indexes(snapshot: Snapshot) -> bool:
    """Build a new timetable's search indexes before the first request needs them."""
    timetable: Timetable = snapshot.data
    search_index(timetable)
    timetable.search_stops("warm", limit=1)
    timetable.nearest_stops(0.0, 0.0, radius_m=1.0, limit=1)
    for route in range(len(timetable.route_ids)):
        timetable.route_directions(route)
    return True


def timetables(runtime: Runtime) -> dict[str, Timetable]:
    """Every loaded GTFS timetable, by feed (source) id."""
    return {
        source_id: snapshot.data
        for source_id, snapshot in runtime.live.snapshots().items()
        if snapshot.source_type == "gtfs"
    }


@dataclass(frozen=True)
class Located:
    """A namespaced id resolved to its feed, timetable and index."""

    feed: str
    timetable: Timetable
    index: int


def split_id(value: str, what: str) -> tuple[str, str]:
    feed, sep, native = value.partition(":")
    if not sep or not feed or not native:
        raise NotFound("not_a_namespaced_id", value=repr(value))
    return feed, native


def timetable_of(runtime: Runtime, feed: str) -> Timetable | None:
    """The loaded timetable of GTFS source ``feed`` (``timetables(runtime).get(feed)``)."""
    snapshot = runtime.live.snapshot(feed)
    return snapshot.data if snapshot is not None and snapshot.source_type == "gtfs" else None


def locate_stop(runtime: Runtime, stop_id: str) -> Located:
    feed, native = split_id(stop_id, "stop")
    timetable = timetable_of(runtime, feed)
    index = timetable.stop_index.get(native) if timetable is not None else None
    if timetable is None or index is None:
        raise NotFound("no_stop", value=repr(stop_id))
    return Located(feed, timetable, index)


def locate_line(runtime: Runtime, line_id: str) -> Located:
    feed, native = split_id(line_id, "line")
    timetable = timetable_of(runtime, feed)
    index = timetable.route_index.get(native) if timetable is not None else None
    if timetable is None or index is None:
        raise NotFound("no_line", value=repr(line_id))
    return Located(feed, timetable, index)


def _text(value: str) -> str | None:
    return value or None


def _color(value: str) -> str | None:
    return f"#{value.upper()}" if value else None


def _line_summary(feed: str, tt: Timetable, route: int) -> dict[str, Any]:
    return {
        "id": f"{feed}:{tt.route_ids[route]}",
        "short_name": _text(tt.route_short_names[route]),
        "long_name": _text(tt.route_long_names[route]),
        "mode": tt.route_mode(route),
        "color": _color(tt.route_colors[route]),
        "text_color": _color(tt.route_text_colors[route]),
    }


class FeedViews:
    """JSON pieces of one feed's timetable that many answers repeat, built once each.

    The dicts are shared between answers: read them, never change them.
    """

    #: Scheduled calls kept (about 1 KB each); the memo starts over when full.
    MAX_CALLS = 20_000

    def __init__(self, feed: str, tt: Timetable) -> None:
        self.feed = feed
        # Weakly: the views live in tt.query_caches, and a strong reference back would make
        # a cycle, so a replaced timetable would wait for a full collection to be freed (and
        # frozen heaps see none until a sweep, see aggregator.live.freeze_heap).
        self._tt = weakref.ref(tt)
        self.clock = local_clock(tt)
        self._lines: dict[int, dict[str, Any]] = {}
        self._stops: dict[int, dict[str, Any]] = {}
        #: A scheduled call's JSON by (stop time row, service-day ordinal).
        self.calls: dict[tuple[int, int], dict[str, Any]] = {}
        #: The same, serialised (for answers that only send them on).
        self.call_bytes: dict[tuple[int, int], orjson.Fragment] = {}

    @property
    def tt(self) -> Timetable:
        tt = self._tt()
        if tt is None:  # only reachable through a timetable, so it cannot be gone
            raise ReferenceError("the timetable of these views was freed")
        return tt

    def line(self, route: int) -> dict[str, Any]:
        found = self._lines.get(route)
        if found is None:
            found = self._lines[route] = _line_summary(self.feed, self.tt, route)
        return found

    def stop_ref(self, stop: int) -> dict[str, Any]:
        found = self._stops.get(stop)
        if found is None:
            found = self._stops[stop] = {
                "id": f"{self.feed}:{self.tt.stop_ids[stop]}",
                "name": self.tt.stop_names[stop],
            }
        return found


def feed_views(feed: str, tt: Timetable) -> FeedViews:
    """The :class:`FeedViews` of ``feed``'s timetable ``tt`` (lives as long as ``tt``)."""
    key = ("views", feed)
    views: FeedViews | None = tt.query_caches.get(key)
    if views is None:
        views = tt.query_caches[key] = FeedViews(feed, tt)
    return views


def line_summary(feed: str, tt: Timetable, route: int) -> dict[str, Any]:
    return dict(feed_views(feed, tt).line(route))


def line_json(feed: str, tt: Timetable, route: int) -> dict[str, Any]:
    agency = int(tt.route_agency[route])
    return {
        **line_summary(feed, tt, route),
        "agency": {
            "id": f"{feed}:{tt.agency_ids[agency]}",
            "name": tt.agency_names[agency],
            "url": _text(tt.agency_urls[agency]),
            "timezone": tt.agency_timezones[agency],
        },
    }


def stop_json(feed: str, tt: Timetable, stop: int, *, lines: bool = True) -> dict[str, Any]:
    parent = int(tt.stop_parent[stop])
    out: dict[str, Any] = {
        "id": f"{feed}:{tt.stop_ids[stop]}",
        "name": tt.stop_names[stop],
        "code": _text(tt.stop_codes[stop]),
        "lat": float(tt.stop_lat[stop]),
        "lon": float(tt.stop_lon[stop]),
        "location_type": LOCATION_TYPES.get(int(tt.stop_location_type[stop]), "stop"),
        "parent_station": f"{feed}:{tt.stop_ids[parent]}" if parent >= 0 else None,
        "platform_code": _text(tt.stop_platform_codes[stop]),
        "wheelchair_boarding": WHEELCHAIR.get(int(tt.stop_wheelchair[stop])),
    }
    if lines:
        routes = sorted({r for s in tt.boarding_stops(stop) for r in tt.routes_at_stop(s)})
        out["lines"] = [line_summary(feed, tt, r) for r in _sorted_routes(tt, routes)]
    return out


def _sorted_routes(tt: Timetable, routes: list[int]) -> list[int]:
    """Lines in the order riders expect: route_sort_order, then natural name order."""

    def key(route: int) -> tuple[int, int, str]:
        name = tt.route_short_names[route] or tt.route_long_names[route]
        digits = "".join(ch for ch in name if ch.isdigit())
        return (int(tt.route_sort_order[route]), int(digits) if digits else 1 << 30, name)

    return sorted(routes, key=key)


#: What a realtime feed adds to a departure, absent: the same keys either way (null or []), so a
#: board without realtime has the shape of one with it.
NO_REALTIME: dict[str, Any] = {"uncertainty_s": None, "vehicle_id": None, "alert_ids": ()}


def departure_json(feed: str, tt: Timetable, departure: Departure) -> dict[str, Any]:
    frequency = departure.frequency
    views = feed_views(feed, tt)
    when = departure.departure.isoformat()
    return {
        "stop": dict(views.stop_ref(departure.stop_index)),
        "line": dict(views.line(departure.route_index)),
        "trip_id": f"{feed}:{departure.trip_id}",
        "headsign": departure.headsign,
        "direction_id": departure.direction_id,
        "service_date": departure.service_date.isoformat(),
        "scheduled_time": when,
        "expected_time": when,
        "delay_s": None,
        "realtime": False,
        "status": "scheduled",
        **NO_REALTIME,
        "timezone": departure.timezone,
        "platform": departure.platform_code,
        "wheelchair_accessible": WHEELCHAIR.get(departure.wheelchair_accessible),
        "frequency": (
            {"headway_s": frequency.headway_s, "exact_times": frequency.exact_times}
            if frequency is not None
            else None
        ),
    }


def scheduled_departures_json(
    feed: str, tt: Timetable, rows: np.ndarray, days: np.ndarray
) -> list[dict[str, Any]]:
    """What ``departure_json`` gives for each call of a board (rows and service-day ordinals
    from :func:`board_rows`), built straight from the arrays, without ``Departure`` objects.

    A call's JSON depends only on the timetable, its row and its service day, so it is made
    once and shared (``FeedViews.calls``): read these dicts, never change them.
    """
    views = feed_views(feed, tt)
    return _memoised(views.calls, views.MAX_CALLS, rows, days, partial(_calls_json, views))


def scheduled_departures_serialized(
    feed: str, tt: Timetable, rows: np.ndarray, days: np.ndarray
) -> list[orjson.Fragment]:
    """:func:`scheduled_departures_json`, each already serialised: the JSON encoder copies
    the bytes of a ``Fragment`` as they are, ten times faster than encoding the dict again
    (a board's calls come back every few seconds, its answer is rendered each time)."""
    views = feed_views(feed, tt)

    def serialised(rows: np.ndarray, days: np.ndarray) -> list[orjson.Fragment]:
        calls = scheduled_departures_json(feed, tt, rows, days)
        return [orjson.Fragment(orjson.dumps(call)) for call in calls]

    return _memoised(views.call_bytes, views.MAX_CALLS, rows, days, serialised)


def _memoised(
    memo: dict[tuple[int, int], T],
    max_entries: int,
    rows: np.ndarray,
    days: np.ndarray,
    build: Callable[[np.ndarray, np.ndarray], list[T]],
) -> list[T]:
    """Each (row, day)'s value from ``memo``, the missing ones built together; the memo
    starts over when it would grow past ``max_entries``."""
    keys = list(zip(rows.tolist(), days.tolist(), strict=True))
    out = [memo.get(key) for key in keys]
    missing = [k for k, found in enumerate(out) if found is None]
    if missing:
        if len(memo) + len(missing) > max_entries:
            memo.clear()
        for k, built in zip(missing, build(rows[missing], days[missing]), strict=True):
            out[k] = memo[keys[k]] = built
    return out  # type: ignore[return-value]


def _calls_json(views: FeedViews, rows: np.ndarray, days: np.ndarray) -> list[dict[str, Any]]:
    tt, feed, clock = views.tt, views.feed, views.clock
    g = gather(tt, rows, days)
    origin_of = tt.service_day_origin
    stop_ref, line = views.stop_ref, views.line
    headsigns, trip_headsigns, trip_ids = tt.headsigns, tt.trip_headsigns, tt.trip_ids
    timezones, platforms = tt.agency_timezones, tt.stop_platform_codes
    out = []
    for k, ordinal in enumerate(g["ordinal"]):
        trip, agency, stop = g["trip"][k], g["agency"][k], g["stop"][k]
        code, direction, headway = g["headsign"][k], g["direction"][k], g["headway"][k]
        when = clock.iso(agency, origin_of(agency, ordinal) + g["dep"][k])
        headsign = headsigns[code] if code >= 0 else trip_headsigns[trip]
        out.append(
            {
                "stop": stop_ref(stop),
                "line": line(g["route"][k]),
                "trip_id": f"{feed}:{trip_ids[trip]}",
                "headsign": headsign or None,
                "direction_id": direction if direction >= 0 else None,
                "service_date": clock.date_iso(ordinal),
                "scheduled_time": when,
                "expected_time": when,
                "delay_s": None,
                "realtime": False,
                "status": "scheduled",
                **NO_REALTIME,
                "timezone": timezones[agency],
                "platform": platforms[stop] or None,
                "wheelchair_accessible": WHEELCHAIR.get(g["wheelchair"][k]),
                "frequency": (
                    {"headway_s": headway, "exact_times": g["exact"][k] == 1}
                    if headway > 0
                    else None
                ),
            }
        )
    return out


def explanation_json(code: str | None, language: str) -> dict[str, str] | None:
    """``{code, message}``: why a board is empty, the message in ``language``."""
    if code is None:
        return None
    return coded(EXPLANATIONS, code, language)


def checked_line_ids(values: list[str]) -> list[str]:
    """``lines=`` values, each a namespaced id (``feed:native_id``), else a 400 naming it:
    checked before any board is built, so a bad value is refused even where no stop is."""
    for value in values:
        _feed, sep, native = value.partition(":")
        if not sep or not native:
            raise BadParameter("lines", "not_a_namespaced_id", value=repr(value))
    return values


def line_filter(values: list[str], feed: str) -> set[str] | None:
    """Native route ids of ``feed`` among namespaced ``lines=`` values (None: no filter)."""
    if not values:
        return None
    return {
        native
        for line_feed, _sep, native in (v.partition(":") for v in checked_line_ids(values))
        if line_feed == feed
    }


def gtfs_sources(runtime: Runtime) -> list[str]:
    """Ids of the configured GTFS sources: what ``feed=`` accepts."""
    return [s for s, status in runtime.statuses.items() if status.source_type == "gtfs"]


def feeds_asked(runtime: Runtime, params: QueryParams) -> dict[str, Timetable]:
    """The loaded timetables ``feed=`` asks for (all of them without it)."""
    feed = params.member("feed", gtfs_sources(runtime), "a configured GTFS source")
    loaded = timetables(runtime)
    if feed is None:
        return loaded
    return {feed: loaded[feed]} if feed in loaded else {}

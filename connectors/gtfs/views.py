"""Timetables as phones see them: namespaced ids, and the JSON shapes of stops, lines and
departures. Shared by the transit endpoints (and, later, by the realtime merge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aggregator.api.problems import BadParameter, NotFound
from aggregator.model import Snapshot
from aggregator.runtime import Runtime

from .departures import Departure
from .timetable import Timetable

LOCATION_TYPES = {0: "stop", 1: "station", 2: "entrance", 3: "generic_node", 4: "boarding_area"}
WHEELCHAIR = {0: None, 1: True, 2: False}
EXPLANATIONS = {
    "outside_feed_validity": "The timetable has no service on that date: the feed does not "
    "cover it.",
    "no_service_that_day": "No line calls at this stop on that day.",
    "terminus": "Vehicles only arrive here: this stop is the end of every line that calls.",
    "no_more_departures_in_window": "No more departures in the requested window.",
}


def warm_indexes(snapshot: Snapshot) -> bool:
    """Build a new timetable's search indexes before the first request needs them."""
    timetable: Timetable = snapshot.data
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
        raise NotFound(f"{value!r} is not a {what} id (ids look like 'feed:native_id')")
    return feed, native


def locate_stop(runtime: Runtime, stop_id: str) -> Located:
    feed, native = split_id(stop_id, "stop")
    timetable = timetables(runtime).get(feed)
    index = timetable.stop_index.get(native) if timetable is not None else None
    if timetable is None or index is None:
        raise NotFound(f"no stop {stop_id!r}")
    return Located(feed, timetable, index)


def locate_line(runtime: Runtime, line_id: str) -> Located:
    feed, native = split_id(line_id, "line")
    timetable = timetables(runtime).get(feed)
    index = timetable.route_index.get(native) if timetable is not None else None
    if timetable is None or index is None:
        raise NotFound(f"no line {line_id!r}")
    return Located(feed, timetable, index)


def _text(value: str) -> str | None:
    return value or None


def _color(value: str) -> str | None:
    return f"#{value.upper()}" if value else None


def line_summary(feed: str, tt: Timetable, route: int) -> dict[str, Any]:
    return {
        "id": f"{feed}:{tt.route_ids[route]}",
        "short_name": _text(tt.route_short_names[route]),
        "long_name": _text(tt.route_long_names[route]),
        "mode": tt.route_mode(route),
        "color": _color(tt.route_colors[route]),
        "text_color": _color(tt.route_text_colors[route]),
    }


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


def departure_json(feed: str, tt: Timetable, departure: Departure) -> dict[str, Any]:
    frequency = departure.frequency
    return {
        "stop": {"id": f"{feed}:{departure.stop_id}", "name": tt.stop_names[departure.stop_index]},
        "line": line_summary(feed, tt, departure.route_index),
        "trip_id": f"{feed}:{departure.trip_id}",
        "headsign": departure.headsign,
        "direction_id": departure.direction_id,
        "service_date": departure.service_date.isoformat(),
        "scheduled_time": departure.departure.isoformat(),
        "expected_time": departure.departure.isoformat(),
        "delay_s": None,
        "realtime": False,
        "status": "scheduled",
        "timezone": departure.timezone,
        "platform": departure.platform_code,
        "wheelchair_accessible": WHEELCHAIR.get(departure.wheelchair_accessible),
        "frequency": (
            {"headway_s": frequency.headway_s, "exact_times": frequency.exact_times}
            if frequency is not None
            else None
        ),
    }


def explanation_json(code: str | None) -> dict[str, str] | None:
    if code is None:
        return None
    return {"code": code, "message": EXPLANATIONS.get(code, code)}


def line_filter(values: list[str], feed: str) -> set[str] | None:
    """Native route ids of ``feed`` among namespaced ``lines=`` values (None: no filter)."""
    if not values:
        return None
    natives = set()
    for value in values:
        line_feed, sep, native = value.partition(":")
        if not sep or not native:
            raise BadParameter("lines", f"{value!r} is not a line id (e.g. 'ilevia:M1')")
        if line_feed == feed:
            natives.add(native)
    return natives

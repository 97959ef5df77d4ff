"""The transit endpoints: stops (by name or near a point) and lines, and the registration of
every transit route (the boards are in :mod:`connectors.gtfs.board_routes`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.communes import COMMUNE_PARAM, add_commune_schema, wanted_commune
from aggregator.api.fields import FIELDS
from aggregator.api.pagination import MAX_LIMIT, page_of, query_scope
from aggregator.api.params import MAX_WINDOW_S, QueryParams
from aggregator.api.results import ApiResult
from aggregator.api.routing import CURSOR_PARAM, ApiRouter, Param, wants_geojson
from aggregator.communes import RecordCommunes
from aggregator.runtime import Runtime, runtime_of
from connectors.gtfs_rt.views import realtime_for, realtime_sources
from connectors.places.geo import distance_m, feature_collection

from . import schemas
from .board_routes import nearby_departures, stop_departures
from .geometry import line_geojson
from .references import INCLUDE
from .timetable import Timetable
from .trip_detail import get_trip
from .views import (
    MAX_RADIUS_M,
    feeds_asked,
    gtfs_sources,
    line_json,
    locate_line,
    locate_stop,
    stop_json,
)

#: Stops one feed contributes to a stop list at most (its pages go through these).
MAX_STOP_MATCHES = 1000


def stop_communes(runtime: Runtime, feed: str, tt: Timetable) -> RecordCommunes:
    """The commune of each stop of a timetable, by stop index (once per timetable)."""
    return runtime.communes.of(f"stops:{feed}", tt, lambda: ((), tt.stop_lon, tt.stop_lat))


async def list_stops(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    query = params.string("q")
    commune = wanted_commune(params, runtime)
    point = params.point(required=query is None and commune is None)
    radius = params.number("radius", 500.0, minimum=1.0, maximum=MAX_RADIUS_M) or 500.0
    limit = params.integer("limit", 20, minimum=1, maximum=MAX_LIMIT)
    geojson = wants_geojson(request)
    feeds = feeds_asked(runtime, params)
    cursor = params.string("cursor")
    # (rank, id, feed, timetable, stop index, distance): JSON is made for the page alone.
    found: list[tuple[tuple[float, float], str, str, Timetable, int, float | None]] = []
    truncated = False
    for feed, tt in feeds.items():
        inside = None if commune is None else stop_communes(runtime, feed, tt).mask(commune)
        if query is not None:
            hits = tt.search_stops(query, limit=MAX_STOP_MATCHES)
            truncated |= len(hits) >= MAX_STOP_MATCHES
            for stop, score in hits:
                if inside is not None and not inside[stop]:
                    continue
                rank, away = (-score, 0.0), None
                if point is not None:
                    away = distance_m(*point, float(tt.stop_lat[stop]), float(tt.stop_lon[stop]))
                    if away > radius:
                        continue
                    rank = (-score, away)
                found.append((rank, f"{feed}:{tt.stop_ids[stop]}", feed, tt, stop, away))
        elif point is not None:
            near = tt.nearest_stops(point[0], point[1], radius_m=radius, limit=MAX_STOP_MATCHES)
            truncated |= len(near) >= MAX_STOP_MATCHES
            for stop, away in near:
                if inside is not None and not inside[stop]:
                    continue
                found.append(((away, 0.0), f"{feed}:{tt.stop_ids[stop]}", feed, tt, stop, away))
        else:
            # A commune alone: its stops and stations (as near a point would list), by id.
            assert inside is not None
            wanted = inside & np.isin(tt.stop_location_type, (0, 1))
            for stop in np.flatnonzero(wanted)[:MAX_STOP_MATCHES].tolist():
                found.append(((0.0, 0.0), f"{feed}:{tt.stop_ids[stop]}", feed, tt, stop, None))
            truncated |= int(wanted.sum()) > MAX_STOP_MATCHES

    def rank(item: tuple[Any, ...]) -> tuple[float, float, str]:
        return item[0][0], item[0][1], item[1]

    page = page_of(
        sorted(found, key=rank),
        key=rank,
        limit=limit,
        cursor=cursor,
        codec=runtime.cursors,
        scope=query_scope("/v1/stops", request.query),
    )
    stops = []
    for _, _, feed, tt, stop, away in page.items:
        entry = stop_with_alerts(runtime, feed, tt, stop)
        if away is not None:
            entry["distance_m"] = round(away, 1)
        stops.append(entry)
    # A feed gives at most MAX_STOP_MATCHES stops: then total counts those, and says so.
    meta = {"total": page.total, "truncated": truncated}
    paging: dict[str, Any] = {"paginated": True, "next_cursor": page.next_cursor, "meta": meta}
    if geojson:
        return ApiResult(
            feature_collection(stops),
            sources=list(feeds),
            enveloped=False,
            media_type="application/geo+json",
            **paging,
        )
    return ApiResult(stops, sources=list(feeds), **paging)


def _alert_ids(
    runtime: Runtime,
    feed: str,
    tt: Timetable,
    *,
    route: int | None = None,
    stop: int | None = None,
) -> list[str]:
    """Ids of the alerts active now that name this line or stop (or one of its platforms)."""
    live = realtime_for(runtime, feed, tt)
    if live is None:
        return []
    now = runtime.clock.now().timestamp()
    state = live.data.state
    if route is not None:
        alerts = state.active_alerts(now, route_id=tt.route_ids[route])
    else:
        assert stop is not None
        alerts = [
            alert
            for s in tt.boarding_stops(stop)
            for alert in state.active_alerts(now, stop_id=tt.stop_ids[s])
        ]
    return sorted({f"{feed}:{alert.alert_id}" for alert in alerts})


def stop_with_alerts(runtime: Runtime, feed: str, tt: Timetable, stop: int) -> dict[str, Any]:
    """A stop as /v1 answers it: with its active alerts and its commune."""
    entry = stop_json(feed, tt, stop)
    entry["alert_ids"] = _alert_ids(runtime, feed, tt, stop=stop)
    entry["commune"] = stop_communes(runtime, feed, tt).at(stop)
    return entry


async def get_stop(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    found = locate_stop(runtime, request.match_info["stop_id"])
    tt, feed, stop = found.timetable, found.feed, found.index
    data = stop_with_alerts(runtime, feed, tt, stop)
    data["platforms"] = [stop_json(feed, tt, int(c), lines=False) for c in tt.children(stop)]
    return ApiResult(data, sources=[feed, *realtime_sources(runtime, feed)])


async def list_lines(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    feeds = feeds_asked(runtime, params)
    mode = params.string("mode")
    lines = [
        line_json(feed, tt, route) | {"alert_ids": _alert_ids(runtime, feed, tt, route=route)}
        for feed, tt in feeds.items()
        for route in range(len(tt.route_ids))
        if mode is None or tt.route_mode(route) == mode
    ]
    rt_sources = [s for feed in feeds for s in realtime_sources(runtime, feed)]
    return ApiResult(lines, sources=[*feeds, *rt_sources])


async def get_line(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    geojson = wants_geojson(request)
    found = locate_line(runtime, request.match_info["line_id"])
    tt, feed, route = found.timetable, found.feed, found.index
    if geojson:
        # Geometry comes from the timetable alone: realtime sources do not change it.
        return ApiResult(
            line_geojson(feed, tt, route),
            sources=[feed],
            enveloped=False,
            media_type="application/geo+json",
        )
    data = line_json(feed, tt, route)
    data["alert_ids"] = _alert_ids(runtime, feed, tt, route=route)
    data["directions"] = [
        {
            "direction_id": direction.direction_id,
            "headsign": direction.headsign,
            "trips": direction.direction_trips,
            "stops": [stop_json(feed, tt, s, lines=False) for s in direction.stop_indices],
        }
        for direction in tt.route_directions(route)
    ]
    return ApiResult(data, sources=[feed, *realtime_sources(runtime, feed)])


INCLUDE_CANCELLED = Param(
    "include_cancelled",
    "false hides departures the realtime feed cancelled (default true: shown, flagged).",
    {"type": "boolean"},
)


def register_transit_routes(router: ApiRouter) -> None:
    add_commune_schema(router)
    refs = {name: router.add_schema(name, schema) for name, schema in schemas.ALL.items()}
    feed = Param(
        "feed",
        "Only this GTFS source (a configured source id).",
        api_schemas.configured(gtfs_sources),
    )
    limit = Param(
        "limit", f"How many (1-{MAX_LIMIT}).", api_schemas.integer(1, MAX_LIMIT, default=20)
    )
    at = Param(
        "at",
        f"The instant to answer for ({api_schemas.INSTANT_RANGE}; default: now).",
        api_schemas.INSTANT,
    )
    duration = Param(
        "duration",
        "Window after `at`, between 1m and 24h (default 1h): seconds (5400) or amounts with "
        "units (90m, 2h, 1h30m); the server also reads any sum of amounts with units ms, s, "
        "m, h, d (1.5h, 1h30m15s).",
        api_schemas.window_duration(MAX_WINDOW_S),
    )
    lines = Param(
        "lines",
        "Only these lines: comma-separated line ids ('feed:native_id', at most 50).",
        api_schemas.csv("[^,:]*:[^,]*[^," + api_schemas.SPACE + "]"),
    )
    lat = Param("lat", "Latitude (WGS 84); goes with lon.", api_schemas.LATITUDE)
    lon = Param("lon", "Longitude (WGS 84); goes with lat.", api_schemas.LONGITUDE)
    radius_m = f"Metres (1-{MAX_RADIUS_M:.0f}"
    stop_id = Param(
        "stop_id", "A stop id, 'feed:native_id'.", api_schemas.NAMESPACED_ID, "path", required=True
    )

    router.get(
        "/v1/stops",
        list_stops,
        summary="Find stops by name (q) or near a point (lat, lon, radius)",
        tags=["transit"],
        params=[
            Param(
                "q",
                "Name search: case- and accent-insensitive, word prefixes. Without q, lat and "
                "lon are required, or commune.",
                api_schemas.TEXT,
            ),
            lat,
            lon,
            Param(
                "radius",
                radius_m + ", default 500).",
                api_schemas.number(1, MAX_RADIUS_M, default=500),
            ),
            limit,
            CURSOR_PARAM,
            FIELDS,
            feed,
            COMMUNE_PARAM,
        ],
        response={"type": "array", "items": refs["Stop"]},
        geojson=router.add_schema(
            "StopCollection", api_schemas.point_features(schemas.STOP, "StopCollection")
        ),
    )
    router.get(
        "/v1/stops/{stop_id}",
        get_stop,
        summary="One stop: its platforms or parent station, and the lines serving it",
        tags=["transit"],
        params=[stop_id],
        response=refs["StopDetail"],
        errors=[400, 404],
    )
    router.get(
        "/v1/stops/{stop_id}/departures",
        stop_departures,
        summary="The next departures from a stop (a station gathers its platforms)",
        tags=["transit"],
        params=[
            stop_id,
            at,
            duration,
            limit,
            lines,
            INCLUDE_CANCELLED,
            Param(
                "group",
                "none (one list by time) or line_direction (the next per line and direction).",
                api_schemas.choice(["none", "line_direction"]),
            ),
            Param(
                "per_group",
                "Departures per line and direction (1-10, default 2).",
                api_schemas.integer(1, 10, default=2),
            ),
            INCLUDE,
        ],
        response=refs["Board"],
        references=refs["References"],
        errors=[400, 404],
    )
    router.get(
        "/v1/departures",
        nearby_departures,
        summary="Departure boards of the stops around a point, nearest first",
        tags=["transit"],
        params=[
            Param("lat", "Latitude (WGS 84).", api_schemas.LATITUDE, required=True),
            Param("lon", "Longitude (WGS 84).", api_schemas.LONGITUDE, required=True),
            Param(
                "radius",
                radius_m + ", default 400).",
                api_schemas.number(1, MAX_RADIUS_M, default=400),
            ),
            Param(
                "stops", "How many stops (1-20, default 5).", api_schemas.integer(1, 20, default=5)
            ),
            Param(
                "per_stop",
                "Departures per stop (1-20, default 5).",
                api_schemas.integer(1, 20, default=5),
            ),
            at,
            duration,
            lines,
            INCLUDE_CANCELLED,
            feed,
            INCLUDE,
        ],
        response={"type": "array", "items": refs["NearbyBoard"]},
        references=refs["References"],
    )
    router.get(
        "/v1/trips/{trip_id}",
        get_trip,
        summary="One trip on a service date: its calls, scheduled and expected",
        tags=["transit"],
        params=[
            Param(
                "trip_id",
                "A trip id, 'feed:native_id'.",
                api_schemas.NAMESPACED_ID,
                "path",
                required=True,
            ),
            Param(
                "date",
                "Service date (YYYY-MM-DD, years 1900-2200; default: the one running nearest now).",
                api_schemas.DATE,
            ),
            INCLUDE,
        ],
        response=refs["Trip"],
        references=refs["References"],
        errors=[400, 404],
    )
    router.get(
        "/v1/lines",
        list_lines,
        summary="Every line, with mode, colours and agency",
        tags=["transit"],
        params=[
            feed,
            Param("mode", "Only this mode (bus, tram, subway, rail, ferry...).", api_schemas.TEXT),
            FIELDS,
        ],
        response={"type": "array", "items": refs["Line"]},
    )
    router.get(
        "/v1/lines/{line_id}",
        get_line,
        summary="One line and its directions, each with its ordered stops",
        tags=["transit"],
        params=[
            Param(
                "line_id",
                "A line id, 'feed:native_id'.",
                api_schemas.NAMESPACED_ID,
                "path",
                required=True,
            ),
        ],
        response=refs["LineDetail"],
        geojson=refs["LineGeometry"],
        errors=[400, 404],
    )

"""The transit endpoints: stops (by name or near a point), lines, and departure boards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.communes import COMMUNE_PARAM, add_commune_schema, wanted_commune
from aggregator.api.fields import FIELDS
from aggregator.api.i18n import negotiate_language
from aggregator.api.messages import HINTS, message
from aggregator.api.pagination import MAX_LIMIT, page_of, query_scope
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter
from aggregator.api.results import ApiResult
from aggregator.api.routing import CURSOR_PARAM, ApiRouter, Param, wants_geojson
from aggregator.communes import RecordCommunes
from aggregator.config.types import parse_duration
from aggregator.runtime import Runtime, runtime_of
from connectors.gtfs_rt.merge import realtime_departures
from connectors.gtfs_rt.views import (
    realtime_departure_json,
    realtime_for,
    realtime_sources,
    usable_realtime,
)
from connectors.places.geo import distance_m, feature_collection

from . import schemas
from .departures import board_rows
from .geometry import line_geojson
from .references import INCLUDE, References, wants_references
from .timetable import Timetable
from .trip_detail import get_trip
from .views import (
    checked_line_ids,
    explanation_json,
    line_filter,
    line_json,
    locate_line,
    locate_stop,
    scheduled_departures_json,
    scheduled_departures_serialized,
    stop_json,
    timetables,
)

MAX_RADIUS_M = 5000.0
#: Stops one feed contributes to a stop list at most (its pages go through these).
MAX_STOP_MATCHES = 1000
MAX_WINDOW_S = 24 * 3600
#: Departures looked at to find the next few of every line and direction at a stop.
GROUPING_LIMIT = 500


def window_seconds(raw: str) -> int:
    """``duration=``: whole seconds between 1m and 24h (the document's schema is a subset)."""
    try:
        seconds = int(parse_duration(raw))
    except ValueError:
        raise BadParameter("duration", "not_a_duration", value=repr(raw)) from None
    if not 60 <= seconds <= MAX_WINDOW_S:
        raise BadParameter("duration", "duration_out_of_range")
    return seconds


def _window(params: QueryParams, runtime: Runtime) -> tuple[dt.datetime, int]:
    at = params.datetime("at", runtime.clock.now(), runtime.timezone)
    raw = params.string("duration")
    return at, 3600 if raw is None else window_seconds(raw)


def gtfs_sources(runtime: Runtime) -> list[str]:
    """Ids of the configured GTFS sources: what ``feed=`` accepts."""
    return [s for s, status in runtime.statuses.items() if status.source_type == "gtfs"]


def _feeds(runtime: Runtime, params: QueryParams) -> dict[str, Timetable]:
    feed = params.member("feed", gtfs_sources(runtime), "a configured GTFS source")
    loaded = timetables(runtime)
    if feed is None:
        return loaded
    return {feed: loaded[feed]} if feed in loaded else {}


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
    feeds = _feeds(runtime, params)
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
    feeds = _feeds(runtime, params)
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


@dataclass
class Boards:
    """Builds departure boards for one request: realtime merged when a fresh feed exists."""

    request: web.Request
    runtime: Runtime
    at: dt.datetime
    duration_s: int
    lines: list[str]
    include_cancelled: bool
    #: The negotiated language of the explanations' messages.
    language: str
    sources: set[str] = field(default_factory=set)
    realtime: dict[str, Any] = field(default_factory=dict)
    #: A board came back with fewer departures than asked, its window being the bound.
    short: bool = False

    def board(
        self, feed: str, tt: Timetable, stop: int, limit: int, *, read: bool = False
    ) -> dict[str, Any]:
        """The board of one stop; its departures are only serialisable unless ``read``."""
        natives = line_filter(self.lines, feed)
        self.sources.add(feed)
        self.sources.update(realtime_sources(self.runtime, feed))
        usable = usable_realtime(self.request, self.runtime, feed, tt)
        live = usable.live
        if live is None:
            rows, days, explanation = board_rows(
                tt,
                tt.stop_ids[stop],
                self.at,
                duration_s=self.duration_s,
                limit=limit,
                route_filter=natives,
            )
            self.realtime[feed] = usable.meta
            as_json = scheduled_departures_json if read else scheduled_departures_serialized
            self.short |= len(rows) < limit
            return {
                "departures": as_json(feed, tt, rows, days),
                "explanation": explanation_json(explanation, self.language),
            }
        merged = realtime_departures(
            tt,
            live.data.state,
            tt.stop_ids[stop],
            self.at,
            self.runtime.clock.now(),
            duration_s=self.duration_s,
            limit=limit,
            route_filter=natives,
            include_cancelled=self.include_cancelled,
            on_time_threshold_s=live.data.on_time_threshold_s,
        )
        self.short |= len(merged.departures) < limit
        self.realtime[feed] = {**usable.meta, "stale": merged.stale}
        return {
            "departures": [realtime_departure_json(feed, tt, d) for d in merged.departures],
            "explanation": explanation_json(merged.explanation, self.language),
        }

    def meta(self) -> dict[str, Any]:
        end = self.at + dt.timedelta(seconds=self.duration_s)
        meta: dict[str, Any] = {
            "now": self.at.isoformat(timespec="seconds"),
            "realtime": self.realtime,
            "window": {
                "start": self.at.isoformat(timespec="seconds"),
                "end": end.isoformat(timespec="seconds"),
                "duration_s": self.duration_s,
            },
        }
        if self.short and self.duration_s < MAX_WINDOW_S:
            # The app asked for more than the window holds: say how to get more.
            meta["hint"] = {
                "code": "widen_window",
                "parameter": "duration",
                "message": message(
                    HINTS, "widen_window", self.language, parameter="duration", maximum="24h"
                ),
            }
        return meta


def _boards(request: web.Request, runtime: Runtime, params: QueryParams) -> Boards:
    at, duration_s = _window(params, runtime)
    return Boards(
        request,
        runtime,
        at,
        duration_s,
        checked_line_ids(params.csv("lines")),
        params.boolean("include_cancelled", True),
        negotiate_language(request, runtime.languages),
    )


def _board_result(
    data: Any, sources: Iterable[str], boards: Boards, references: References | None = None
) -> ApiResult:
    """A board answer: its explanations are in the negotiated language (``meta.language``,
    ``Vary``, the ETag say so), its stop names and headsigns in the feed's: no
    ``Content-Language``. With ``references``, the items name lines and stops by id."""
    extra: dict[str, Any] = {}
    if references is not None:
        if isinstance(data, list):
            data = [references.board(board) for board in data]
        else:
            data = references.board(data)
        extra["references"] = references.json()
    return ApiResult(
        data,
        sources=sorted(sources),
        meta=boards.meta(),
        language=boards.language,
        content_language=False,
        **extra,
    )


def _grouped(departures: list[dict[str, Any]], per_group: int) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, Any], dict[str, Any]] = {}
    for departure in departures:
        line = departure["line"]
        key = (line["id"] if line else None, departure["direction_id"])
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "line": line,
                "direction_id": departure["direction_id"],
                "headsign": departure["headsign"],
                "departures": [],
            }
        if len(group["departures"]) < per_group:
            group["departures"].append(departure)
    return list(groups.values())


async def stop_departures(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    found = locate_stop(runtime, request.match_info["stop_id"])
    tt, feed, stop = found.timetable, found.feed, found.index
    limit = params.integer("limit", 20, minimum=1, maximum=MAX_LIMIT)
    group = params.choice("group", ("none", "line_direction"), "none")
    per_group = params.integer("per_group", 2, minimum=1, maximum=10)
    references = References(runtime) if wants_references(params) else None
    boards = _boards(request, runtime, params)
    data: dict[str, Any] = {"stop": stop_json(feed, tt, stop, lines=False)}
    if group == "none":
        # Departures to rewrite by reference are read as dicts, not pre-serialised bytes.
        data |= boards.board(feed, tt, stop, limit, read=references is not None)
    else:
        # Enough of the next hours to find the next few of every line and direction.
        boards.duration_s = max(boards.duration_s, 3 * 3600)
        board = boards.board(feed, tt, stop, GROUPING_LIMIT, read=True)
        boards.short = False  # GROUPING_LIMIT is a bound of ours, not what the app asked
        data["groups"] = _grouped(board["departures"], per_group)
        data["explanation"] = board["explanation"]
    return _board_result(data, boards.sources, boards, references)


async def nearby_departures(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    point = params.point(required=True)
    assert point is not None
    radius = params.number("radius", 400.0, minimum=1.0, maximum=MAX_RADIUS_M) or 400.0
    max_stops = params.integer("stops", 5, minimum=1, maximum=20)
    per_stop = params.integer("per_stop", 5, minimum=1, maximum=20)
    references = References(runtime) if wants_references(params) else None
    boards = _boards(request, runtime, params)
    feeds = _feeds(runtime, params)
    nearest: list[tuple[float, str, Timetable, int]] = []
    for feed, tt in feeds.items():
        seen: set[int] = set()
        for stop, away in tt.nearest_stops(point[0], point[1], radius_m=radius, limit=200):
            # A platform's board is its station's: show the station once, at its nearest point.
            parent = int(tt.stop_parent[stop])
            target = parent if parent >= 0 and tt.stop_location_type[stop] == 0 else stop
            if target not in seen:
                seen.add(target)
                nearest.append((away, feed, tt, target))
    nearest.sort(key=lambda item: item[0])
    found = []
    for away, feed, tt, stop in nearest[:max_stops]:
        entry = {"stop": stop_json(feed, tt, stop) | {"distance_m": round(away, 1)}}
        entry |= boards.board(feed, tt, stop, per_stop, read=references is not None)
        found.append(entry)
    # The sources the answer rests on: the feeds with a stop here (and their realtime), or
    # every loaded feed when none has (they all said "nothing here"); and the configured
    # feeds that are not loaded, which might have had one (their state explains an empty
    # or partial answer: ``meta.sources``, a home part's reason). A stale feed elsewhere
    # does not make this answer stale.
    feed = params.string("feed")
    configured = {feed} if feed is not None else set(gtfs_sources(runtime))
    used = boards.sources or set(feeds)
    return _board_result(found, used | (configured - set(feeds)), boards, references)


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

"""Departure boards: one stop's (flat, or grouped by line and direction) and the boards of
the stops near a point, with realtime merged where a fresh feed exists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from aggregator.api.i18n import negotiate_language
from aggregator.api.messages import HINTS, message
from aggregator.api.pagination import MAX_LIMIT
from aggregator.api.params import MAX_WINDOW_S, QueryParams, window_seconds
from aggregator.api.results import ApiResult
from aggregator.runtime import Runtime, runtime_of
from connectors.gtfs_rt.merge import realtime_departures
from connectors.gtfs_rt.views import realtime_departure_json, realtime_sources, usable_realtime

from .departures import board_rows
from .references import References, wants_references
from .timetable import Timetable
from .views import (
    MAX_RADIUS_M,
    checked_line_ids,
    explanation_json,
    feeds_asked,
    gtfs_sources,
    line_filter,
    locate_stop,
    scheduled_departures_json,
    scheduled_departures_serialized,
    stop_json,
)

#: Departures looked at to find the next few of every line and direction at a stop.
GROUPING_LIMIT = 500


def _window(params: QueryParams, runtime: Runtime) -> tuple[dt.datetime, int]:
    at = params.datetime("at", runtime.clock.now(), runtime.timezone)
    raw = params.string("duration")
    return at, 3600 if raw is None else window_seconds(raw)


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
    feeds = feeds_asked(runtime, params)
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

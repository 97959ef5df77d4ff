"""Realtime endpoints: service alerts and vehicle positions."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.fields import FIELDS
from aggregator.api.i18n import all_in, negotiate_language
from aggregator.api.pagination import MAX_LIMIT, ListPage, page_of, query_scope
from aggregator.api.params import MAX_PARAM_LENGTH, QueryParams
from aggregator.api.problems import BadParameter
from aggregator.api.results import ApiResult
from aggregator.api.routing import CURSOR_PARAM, ApiRouter, Param, limit_param, wants_geojson
from aggregator.runtime import Runtime, runtime_of
from connectors.gtfs.references import INCLUDE, References, wants_references
from connectors.gtfs.views import split_id, timetables
from connectors.places.geo import feature_collection

from . import schemas
from .views import LiveRealtime, alert_json, realtime_for, usable_realtime, vehicle_json


def _live(runtime: Runtime) -> dict[str, LiveRealtime]:
    """The usable realtime state of each feed that has one."""
    out = {}
    for feed, timetable in timetables(runtime).items():
        live = realtime_for(runtime, feed, timetable)
        if live is not None:
            out[feed] = live
    return out


def _realtime_sources(runtime: Runtime, *, alerts: bool = False) -> list[str]:
    """Every configured realtime source, loaded or not: an answer's ``meta.sources`` names a
    failing or loading one too, so a client can tell "no alerts" from "no alert source".
    With ``alerts``, the mapped alert sources too (they have no vehicles)."""
    kinds = ("gtfs_rt", "mapped_alerts") if alerts else ("gtfs_rt",)
    return [s for s, status in runtime.statuses.items() if status.source_type in kinds]


def _wanted(value: str | None, param: str) -> tuple[str, str] | None:
    """A namespaced filter value as (feed, native id); a malformed one is a 400 naming it.

    Checked before looking at any feed, so a bad value is refused even when no feed is live.
    """
    if value is None:
        return None
    try:
        return split_id(value, param)
    except Exception:
        raise BadParameter(param, "not_a_namespaced_id", value=repr(value)) from None


#: Alerts and vehicles were lists without pages: their default page is the largest one, so an
#: app that never pages still gets every item of a city's feed, and ``meta.next_cursor`` says
#: when there are more.
DEFAULT_LIMIT = MAX_LIMIT


def _page(request: web.Request, params: QueryParams, items: list[dict[str, Any]]) -> ListPage[Any]:
    """The asked page of ``items`` (sorted by id), the whole list counted."""
    return page_of(
        items,
        key=lambda item: item["id"],
        limit=params.integer("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT),
        cursor=params.string("cursor"),
        codec=runtime_of(request).cursors,
        scope=query_scope(request.path, request.query),
    )


def _paging(page: ListPage[Any]) -> dict[str, Any]:
    return {"paginated": True, "next_cursor": page.next_cursor, "meta": {"total": page.total}}


def _native(wanted: tuple[str, str] | None, feed: str) -> tuple[bool, str | None]:
    """(keep this feed?, native id) for a parsed filter value."""
    if wanted is None:
        return True, None
    return wanted[0] == feed, wanted[1]


async def list_alerts(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    line = _wanted(params.string("line"), "line")
    stop = _wanted(params.string("stop"), "stop")
    now = runtime.clock.now()
    active_at = params.datetime("active_at", now, runtime.timezone)
    language = negotiate_language(request, runtime.languages)
    references = References(runtime) if wants_references(params) else None
    preferred = [language, *runtime.languages]
    data: list[dict[str, Any]] = []
    for feed, live in _live(runtime).items():
        keep_line, route_id = _native(line, feed)
        keep_stop, stop_id = _native(stop, feed)
        if not (keep_line and keep_stop):
            continue
        tt = live.data.timetable
        alerts = live.data.state.active_alerts(
            now.timestamp(), at=active_at.timestamp(), route_id=route_id, stop_id=stop_id
        )
        data.extend(alert_json(feed, tt, alert, preferred) for alert in alerts)
    data.sort(key=lambda alert: alert["id"])
    page = _page(request, params, data)
    items, extra = page.items, {}
    if references is not None:  # the page's alerts only: references are per answer
        items = [references.alert(alert) for alert in items]
        extra["references"] = references.json()
    return ApiResult(
        items,
        sources=_realtime_sources(runtime, alerts=True),
        language=language,
        content_language=all_in(language, page.items),
        **_paging(page),
        **extra,
    )


#: west,south,east,north as plain decimals in range; the order between them is checked apart.
BBOX = re.compile(
    "^{lon},{lat},{lon},{lat}$".format(lon=api_schemas.degrees(180), lat=api_schemas.degrees(90))
)


def _bbox(params: QueryParams) -> tuple[float, float, float, float] | None:
    value = params.matching("bbox", BBOX, "bbox_form")
    if value is None:
        return None
    west, south, east, north = (float(v) for v in value.split(","))
    if not (west <= east and south <= north):
        raise BadParameter("bbox", "bbox_order")
    return west, south, east, north


async def list_vehicles(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    line = _wanted(params.string("line"), "line")
    trip = _wanted(params.string("trip"), "trip")
    box = _bbox(params)
    references = References(runtime) if wants_references(params) else None
    geojson = wants_geojson(request)
    now = runtime.clock.now().timestamp()
    data: list[dict[str, Any]] = []
    sources = _realtime_sources(runtime)
    for feed, timetable in timetables(runtime).items():
        # Positions of a stale source are not shown: a vehicle frozen where it was is wrong.
        live = usable_realtime(request, runtime, feed, timetable).live
        if live is None:
            continue
        keep_line, route_id = _native(line, feed)
        keep_trip, trip_id = _native(trip, feed)
        if not (keep_line and keep_trip):
            continue
        for vehicle in live.data.state.fresh_vehicles(now):
            if route_id is not None and vehicle.route_id != route_id:
                continue
            if trip_id is not None and vehicle.trip_id != trip_id:
                continue
            if vehicle.lat is None or vehicle.lon is None:
                continue
            if box is not None and not (
                box[0] <= vehicle.lon <= box[2] and box[1] <= vehicle.lat <= box[3]
            ):
                continue
            data.append(vehicle_json(feed, live.data.timetable, vehicle))
    data.sort(key=lambda vehicle: vehicle["id"])
    page = _page(request, params, data)
    items, extra = page.items, {}
    if references is not None:
        items = [references.vehicle(vehicle) for vehicle in items]
        extra["references"] = references.json()
    if geojson:
        # A FeatureCollection has no envelope: references is one more member, as meta is.
        return ApiResult(
            feature_collection(items) | extra,
            sources=sources,
            enveloped=False,
            media_type="application/geo+json",
            **_paging(page),
        )
    return ApiResult(items, sources=sources, **_paging(page), **extra)


PAGE_PARAMS = [
    limit_param("Items", MAX_LIMIT, DEFAULT_LIMIT),
    CURSOR_PARAM,
    FIELDS,
]


def register_realtime_routes(router: ApiRouter) -> None:
    refs = {name: router.add_schema(name, schema) for name, schema in schemas.ALL.items()}
    router.get(
        "/v1/alerts",
        list_alerts,
        summary="Service alerts active at an instant, by line or stop, in the asked language",
        tags=["realtime"],
        params=[
            Param(
                "line",
                "Only alerts naming this line ('feed:route_id').",
                api_schemas.NAMESPACED_ID_PARAM,
            ),
            Param(
                "stop",
                "Only alerts naming this stop ('feed:stop_id').",
                api_schemas.NAMESPACED_ID_PARAM,
            ),
            Param(
                "active_at",
                f"Instant ({api_schemas.INSTANT_RANGE}; default now).",
                api_schemas.INSTANT,
            ),
            Param(
                "lang",
                "Response language; overrides Accept-Language (one of the configured languages).",
                api_schemas.language,
            ),
            *PAGE_PARAMS,
            INCLUDE,
        ],
        response={"type": "array", "items": refs["Alert"]},
        references=refs["References"],
    )
    router.get(
        "/v1/vehicles",
        list_vehicles,
        summary="Vehicle positions (fresh ones only), by line, trip or bounding box",
        tags=["realtime"],
        params=[
            Param("line", "Only this line ('feed:route_id').", api_schemas.NAMESPACED_ID_PARAM),
            Param(
                "trip",
                "Only the vehicle(s) serving this trip ('feed:trip_id', as departures give it).",
                api_schemas.NAMESPACED_ID_PARAM,
            ),
            Param(
                "bbox",
                "west,south,east,north in degrees, plain decimals without blanks: "
                "-180 <= west <= east <= 180 and -90 <= south <= north <= 90.",
                {"type": "string", "maxLength": MAX_PARAM_LENGTH, "pattern": BBOX.pattern},
            ),
            *PAGE_PARAMS,
            INCLUDE,
        ],
        response={"type": "array", "items": refs["Vehicle"]},
        references=refs["References"],
        geojson=refs["VehicleCollection"],
    )

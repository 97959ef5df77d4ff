"""``GET /v1/parkings``: car parks near a point with free spaces, state and freshness."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.communes import COMMUNE_FIELD, add_commune_schema, wanted_commune
from aggregator.api.pagination import MAX_LIMIT, query_scope
from aggregator.api.params import QueryParams
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, wants_geojson
from aggregator.runtime import Runtime, runtime_of
from connectors.places.geo import PlaceIndex
from connectors.places.query import NearQuery, index_communes, near_query_params

from .connector import INDEX_NAME, STATES, build_index

PATH = "/v1/parkings"
MAX_RADIUS_M = 10_000.0

PARKING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Parking",
    "description": "A car park with its free spaces and how fresh that figure is.",
    "properties": {
        "id": {"type": "string", "description": "source:native_id"},
        "source": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "address": {"type": ["string", "null"]},
        "city": {"type": ["string", "null"]},
        "capacity": {"type": ["integer", "null"]},
        "free_spaces": {"type": ["integer", "null"]},
        "state": api_schemas.enum(STATES),
        "last_updated": {"type": ["string", "null"], "format": "date-time"},
        "commune": COMMUNE_FIELD,
        "distance_m": {"type": "number"},
        "freshness": api_schemas.obj(
            {"age_s": {"type": ["number", "null"]}, "stale": {"type": "boolean"}},
            ["age_s", "stale"],
            title="ParkingFreshness",
        ),
    },
    "required": ["id", "source", "lat", "lon", "state", "distance_m", "freshness", "commune"],
}


def _freshness(parking: Any, max_age_s: float, now: datetime) -> dict[str, Any]:
    updated = parking.get("last_updated")
    if updated is None:
        return {"age_s": None, "stale": False}
    age = max(0.0, (now - datetime.fromisoformat(updated)).total_seconds())
    return {"age_s": round(age, 1), "stale": age > max_age_s}


def parking_sources(runtime: Runtime) -> list[str]:
    """Ids of the configured car park sources: what ``source=`` accepts."""
    return [s for s, st in runtime.statuses.items() if st.source_type == "parkings"]


def read_query(request: web.Request) -> NearQuery:
    """The list's filters, checked: what the JSON list, its GeoJSON and its CSV export
    (connectors/parkings/csv_export.py) select by."""
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    return NearQuery.read(
        params,
        sources=parking_sources(runtime),
        kind="parkings",
        default_radius=1000.0,
        max_radius=MAX_RADIUS_M,
        max_limit=MAX_LIMIT,
        geojson=wants_geojson(request),
        scope=query_scope(PATH, request.query),
        commune=wanted_commune(params, runtime),
    )


def car_parks(runtime: Runtime, query: NearQuery) -> list[tuple[float, dict[str, Any]]]:
    """Every car park the query selects, with its distance, in no particular order."""
    now = runtime.clock.now()
    found: list[tuple[float, dict[str, Any]]] = []
    for source_id in query.sources:
        snapshot = runtime.live.snapshot(source_id)
        index: PlaceIndex | None = runtime.live.index(source_id, INDEX_NAME, build_index)
        if snapshot is None or index is None:
            continue
        max_age_s = snapshot.data["max_age_s"]

        def fresh(entry: dict[str, Any], max_age_s: float = max_age_s) -> dict[str, Any]:
            entry["freshness"] = _freshness(entry, max_age_s, now)
            return entry

        found += query.nearest(index, fresh, index_communes(runtime, "parkings", source_id, index))
    return found


async def list_parkings(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    query = read_query(request)
    return query.answer(car_parks(runtime, query), runtime.cursors)


def register_parking_routes(router: ApiRouter) -> None:
    if router.lookup("GET", PATH) is not None:
        return
    from .csv_export import parkings_csv

    add_commune_schema(router)
    parking_ref = router.add_schema("Parking", PARKING_SCHEMA)
    router.get(
        PATH,
        list_parkings,
        summary="Car parks near a point, nearest first, with free spaces and state",
        tags=["parkings"],
        params=near_query_params(
            items="Car parks",
            source_kind="parkings",
            sources=parking_sources,
            default_radius=1000,
            max_radius=MAX_RADIUS_M,
            max_limit=MAX_LIMIT,
        ),
        response={"type": "array", "items": parking_ref},
        geojson=router.add_schema(
            "ParkingCollection", api_schemas.point_features(PARKING_SCHEMA, "ParkingCollection")
        ),
        csv=parkings_csv,
    )

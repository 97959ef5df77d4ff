"""``GET /v1/bikes/stations``: bike stations near a point, from every bike source at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.answer_freshness import answer_freshness
from aggregator.api.communes import COMMUNE_FIELD, add_commune_schema, wanted_commune
from aggregator.api.pagination import MAX_LIMIT, query_scope
from aggregator.api.params import QueryParams
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, wants_geojson
from aggregator.runtime import Runtime, runtime_of
from connectors.places.geo import PlaceIndex
from connectors.places.query import NearQuery, index_communes, near_query_params

from .model import BikeNetwork
from .source import INDEX_NAME, build_index

PATH = "/v1/bikes/stations"
MAX_RADIUS_M = 5000.0

STATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "BikeStation",
    "description": "A bike-share station with its availability and how fresh that is.",
    "properties": {
        "id": {"type": "string", "description": "source:station_id"},
        "source": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "address": {"type": ["string", "null"]},
        "capacity": {"type": ["integer", "null"]},
        "bikes_available": {"type": ["integer", "null"]},
        "ebikes_available": {
            "type": ["integer", "null"],
            "description": "null when the source does not publish it (not zero)",
        },
        "docks_available": {"type": ["integer", "null"]},
        "is_renting": {"type": ["boolean", "null"]},
        "is_returning": {"type": ["boolean", "null"]},
        "is_installed": {"type": ["boolean", "null"]},
        "last_reported": {"type": ["string", "null"], "format": "date-time"},
        "alert_ids": {"type": "array", "items": {"type": "string"}},
        "commune": COMMUNE_FIELD,
        "distance_m": {"type": "number"},
        "freshness": api_schemas.obj(
            {
                "age_s": {
                    "type": ["number", "null"],
                    "description": "seconds since the station (or else the feed) last "
                    "reported; under a stale source, at least the seconds since that source "
                    "last answered",
                },
                "stale": {
                    "type": "boolean",
                    "description": "true when the station's report is old or its source is "
                    "stale (meta.sources)",
                },
            },
            ["age_s", "stale"],
            title="BikeStationFreshness",
        ),
    },
    "required": ["id", "source", "lat", "lon", "distance_m", "freshness", "commune"],
}


def bike_sources(runtime: Runtime) -> list[str]:
    """Ids of the configured sources whose type serves bike stations."""
    return [
        source_id
        for source_id, status in runtime.statuses.items()
        if getattr(runtime.connector_types[status.source_type], "serves_bike_stations", False)
    ]


def _freshness(
    station: Any, network: BikeNetwork, now: datetime, source: dict[str, Any] | None
) -> dict[str, Any]:
    """A station's freshness; under a stale source (``source``, its ``meta.sources`` entry)
    the station is stale too, and its age is at least the time since the source last
    answered: a feed that stopped answering does not keep its stations young."""
    reported = station.get("last_reported")
    if reported is not None:
        age: float | None = max(0.0, (now - datetime.fromisoformat(reported)).total_seconds())
    else:
        age = network.feed_age_s(now)
    age = _at_least_since_success(age, source)
    if reported is not None:
        # A station's own report is judged against max_age alone: the file's ttl says how
        # long the file stays valid, not how long a station may go silent (Vélib' publishes
        # a one-hour ttl while its stations report every minute).
        limit = network.max_age_s
    else:
        limit = max(network.max_age_s, float(network.ttl_s or 0))
    stale = network.is_stale(now) or (age is not None and age > limit) or _stale(source)
    return {"age_s": round(age, 1) if age is not None else None, "stale": stale}


def _stale(source: dict[str, Any] | None) -> bool:
    return bool(source is not None and source["stale"])


def _at_least_since_success(age: float | None, source: dict[str, Any] | None) -> float | None:
    """The data's age is at least the real time since its source's last successful poll
    once that source is stale (while it is fresh, the feed's own figures say more)."""
    if not _stale(source) or source is None or source.get("age_s") is None:
        return age
    return max(age or 0.0, float(source["age_s"]))


def read_query(request: web.Request) -> NearQuery:
    """The list's filters, checked: what the JSON list, its GeoJSON and its CSV export
    (connectors/bikes/csv_export.py) select by."""
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    return NearQuery.read(
        params,
        sources=bike_sources(runtime),
        kind="bike",
        default_radius=500.0,
        max_radius=MAX_RADIUS_M,
        max_limit=MAX_LIMIT,
        geojson=wants_geojson(request),
        scope=query_scope(PATH, request.query),
        commune=wanted_commune(params, runtime),
    )


def stations(
    request: web.Request, query: NearQuery
) -> tuple[list[tuple[float, dict[str, Any]]], dict[str, Any]]:
    """Every station the query selects, with its distance, in no particular order; and each
    feed's age (``meta.feeds``)."""
    runtime = runtime_of(request)
    now = runtime.clock.now()
    judged = answer_freshness(request, runtime)
    found: list[tuple[float, dict[str, Any]]] = []
    feeds: dict[str, Any] = {}
    for source_id in query.sources:
        snapshot = runtime.live.snapshot(source_id)
        index: PlaceIndex | None = runtime.live.index(source_id, INDEX_NAME, build_index)
        if snapshot is None or index is None:
            continue
        network: BikeNetwork = snapshot.data
        source = judged.of(source_id)
        age = _at_least_since_success(network.feed_age_s(now), source)
        feeds[source_id] = {
            "last_updated": network.last_updated.isoformat() if network.last_updated else None,
            "age_s": round(age, 1) if age is not None else None,
            "stale": network.is_stale(now) or _stale(source),
        }

        def fresh(
            entry: dict[str, Any],
            network: BikeNetwork = network,
            source: dict[str, Any] | None = source,
        ) -> dict[str, Any]:
            entry["freshness"] = _freshness(entry, network, now, source)
            return entry

        found += query.nearest(index, fresh, index_communes(runtime, "bikes", source_id, index))
    return found, feeds


async def list_bike_stations(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    query = read_query(request)
    found, feeds = stations(request, query)
    return query.answer(found, runtime.cursors, {"feeds": feeds})


def register_bike_routes(router: ApiRouter) -> None:
    """Declare the endpoint once, whichever bike source type asks first."""
    if router.lookup("GET", PATH) is not None:
        return
    from .csv_export import bike_stations_csv

    add_commune_schema(router)
    station_ref = router.add_schema("BikeStation", STATION_SCHEMA)
    router.get(
        PATH,
        list_bike_stations,
        summary="Bike-share stations near a point, nearest first, with availability",
        tags=["bikes"],
        params=near_query_params(
            items="Stations",
            source_kind="bike",
            sources=bike_sources,
            default_radius=500,
            max_radius=MAX_RADIUS_M,
            max_limit=MAX_LIMIT,
        ),
        response={"type": "array", "items": station_ref},
        geojson=router.add_schema(
            "BikeStationCollection",
            api_schemas.point_features(STATION_SCHEMA, "BikeStationCollection"),
        ),
        csv=bike_stations_csv,
        description=(
            "Every source of type gbfs or bike_stations together. A station's freshness "
            "follows its own last_reported, judged against the source's max_age (else its "
            "feed's last_updated, within the feed's ttl when longer); meta.feeds gives each "
            "feed's age as its publisher states it."
        ),
    )

"""``GET /v1/waste/collections?lat=&lon=``: a point's collection zones and next dates by stream."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.communes import COMMUNE_FIELD, add_commune_schema
from aggregator.api.i18n import negotiate_language
from aggregator.api.messages import WASTE_EXPLANATIONS, coded
from aggregator.api.params import QueryParams
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Param
from aggregator.communes import RecordCommunes
from aggregator.runtime import Runtime, runtime_of

from .connector import INDEX_NAME, build_index
from .schedule import STREAMS, CollectionRule, next_by_stream
from .zones import ZoneIndex, surface_points

PATH = "/v1/waste/collections"

COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The next collections of one stream in one zone.",
    "properties": {
        "stream": {"type": "string", "enum": list(STREAMS)},
        "zone": {"type": "string", "description": "source:zone id"},
        "next": {"type": ["string", "null"], "format": "date"},
        "dates": {"type": "array", "items": {"type": "string", "format": "date"}},
    },
    "required": ["stream", "zone", "next", "dates"],
}
ZONE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "source:zone id"},
        "source": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "commune": {
            **COMMUNE_FIELD,
            "description": "The commune containing the zone's representative point (a point "
            "inside its polygon).",
        },
    },
    "required": ["id", "source", "name", "commune"],
}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The zones covering the point (a point on a shared border is in both) and, "
    "per stream and zone, the next dates (local calendar dates), soonest first. Empty, with "
    "an explanation, when the point is in no zone or nothing is planned.",
    "properties": {
        "zones": {"type": "array", "items": {"$ref": "#/components/schemas/WasteZone"}},
        "collections": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/WasteCollection"},
        },
        "explanation": {
            "type": ["object", "null"],
            "properties": {
                "code": {"type": "string", "enum": list(WASTE_EXPLANATIONS)},
                "message": {"type": "string"},
            },
            "required": ["code", "message"],
        },
    },
    "required": ["zones", "collections", "explanation"],
}


def waste_sources(runtime: Runtime) -> list[str]:
    return [s for s, st in runtime.statuses.items() if st.source_type == "waste"]


def zone_communes(runtime: Runtime, source_id: str, index: ZoneIndex) -> RecordCommunes:
    """The commune of each zone, by its representative point (a point surely inside the
    polygon, unlike a centroid), once per snapshot and commune set."""

    def points() -> tuple[Sequence[str], Any, Any]:
        return index.ids, *surface_points(index.polygons)

    return runtime.communes.of(f"waste:{source_id}", index, points)


def collections_at(
    runtime: Runtime, sources: list[str], lat: float, lon: float, today: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(zones, collections) at a point, from every loaded waste source."""
    zones: list[dict[str, Any]] = []
    collections: list[dict[str, Any]] = []
    for source_id in sources:
        snapshot = runtime.live.snapshot(source_id)
        index = runtime.live.index(source_id, INDEX_NAME, build_index)
        if snapshot is None or index is None:
            continue
        data = snapshot.data
        shifts = {
            date.fromisoformat(k): date.fromisoformat(v) if v else None
            for k, v in data["holiday_shifts"].items()
        }
        communes = zone_communes(runtime, source_id, index)
        for zone_id in index.at(lat, lon):
            zone = data["zones"][zone_id]
            qualified = f"{source_id}:{zone_id}"
            zones.append(
                {
                    "id": qualified,
                    "source": source_id,
                    "name": zone["name"],
                    "commune": communes.of(zone_id),
                }
            )
            ics = {s: [date.fromisoformat(d) for d in ds] for s, ds in zone["ics_dates"].items()}
            found = next_by_stream(
                [CollectionRule.model_validate(r) for r in zone["rules"]],
                ics,
                today,
                data["horizon_days"],
                shifts,
                data["per_stream"],
            )
            for stream, dates in found.items():
                collections.append(
                    {
                        "stream": stream,
                        "zone": qualified,
                        "next": dates[0].isoformat() if dates else None,
                        "dates": [d.isoformat() for d in dates],
                    }
                )
    zones.sort(key=lambda z: z["id"])
    collections.sort(key=lambda c: (c["next"] or "9999", STREAMS.index(c["stream"]), c["zone"]))
    return zones, collections


async def waste_collections(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    lat, lon = params.required_point()
    language = negotiate_language(request, runtime.languages)
    sources = waste_sources(runtime)
    today = runtime.clock.now().astimezone(runtime.timezone).date()
    zones, collections = collections_at(runtime, sources, lat, lon, today)
    explanation = None
    if not any(runtime.live.snapshot(s) for s in sources):
        explanation = coded(WASTE_EXPLANATIONS, "no_source", language)
    elif not zones:
        explanation = coded(WASTE_EXPLANATIONS, "outside_zones", language)
    elif not any(c["dates"] for c in collections):
        explanation = coded(WASTE_EXPLANATIONS, "no_upcoming_collection", language)
    return ApiResult(
        {"zones": zones, "collections": collections, "explanation": explanation},
        sources=sources,
        language=language,
        meta={"today": today.isoformat()},
    )


def register_waste_routes(router: ApiRouter) -> None:
    if router.lookup("GET", PATH) is not None:
        return
    add_commune_schema(router)
    router.add_schema("WasteZone", ZONE_SCHEMA)
    router.add_schema("WasteCollection", COLLECTION_SCHEMA)
    router.get(
        PATH,
        waste_collections,
        summary="Waste collection at an address: its zone and the next dates of each stream",
        tags=["waste"],
        params=[
            Param("lat", "Latitude (WGS 84).", api_schemas.LATITUDE, required=True),
            Param("lon", "Longitude (WGS 84).", api_schemas.LONGITUDE, required=True),
        ],
        response=ANSWER_SCHEMA,
    )

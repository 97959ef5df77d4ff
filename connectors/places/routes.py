"""``GET /v1/places`` and ``GET /v1/places/{id}``: public places, open now or not.

``sync`` gives a phone keeping places offline what changed since its last sync (see
:mod:`aggregator.api.sync`): the list is published to its change log as the union of every
source's places, each hashed as published. Opening states are evaluated at ``meta.at`` in
the answer, but a place whose state changes with the clock has not changed: ``open_now`` and
``open_at`` do not go with a sync (the synced ``opening_hours`` is what to evaluate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api import sync
from aggregator.api.communes import (
    COMMUNE_FIELD,
    COMMUNE_PARAM,
    add_commune_schema,
    wanted_commune,
)
from aggregator.api.i18n import negotiate_language
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter, NotFound
from aggregator.api.results import ApiResult
from aggregator.api.routing import (
    CURSOR_PARAM,
    ApiRouter,
    Param,
    limit_param,
    path_param,
    wants_geojson,
)
from aggregator.api.schemas import array_of, enum, extend, nullable, obj
from aggregator.communes import RecordCommunes, record_points
from aggregator.runtime import Runtime, runtime_of
from connectors.places.geo import distance_m, feature_collection

from .connector import CATEGORIES, INDEX_NAME, WHEELCHAIR, build_index
from .csv_export import places_csv
from .placeindex import PlacesIndex, fold

PATH = "/v1/places"
MAX_LIMIT = 100
MAX_RADIUS_M = 50_000.0
DEFAULT_RADIUS_M = 2000.0
#: Parameters that do not change which places a page lists (a cursor stays valid across them).
_NOT_IN_SCOPE = frozenset({"cursor", "lang", "_", "format"})
#: And those a sync token is not bound to (it goes on with any page size).
_NOT_IN_SYNC_SCOPE = _NOT_IN_SCOPE | {"sync", "limit"}
_STATE = enum(["open", "closed", "unknown"])
_NULLABLE_TEXT = {"type": ["string", "null"]}

INTERVAL_SCHEMA = obj(
    {
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "state": enum(["open", "unknown"]),
        "comment": _NULLABLE_TEXT,
    },
    ["start", "end", "state", "comment"],
    title="PlaceInterval",
)
PLACE_SCHEMA = obj(
    {
        "id": {"type": "string", "description": "source:native_id"},
        "source": {"type": "string"},
        "name": _NULLABLE_TEXT,
        "category": enum(list(CATEGORIES)),
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "address": _NULLABLE_TEXT,
        "postcode": _NULLABLE_TEXT,
        "city": _NULLABLE_TEXT,
        "description": _NULLABLE_TEXT,
        "contact": obj(
            {"phone": _NULLABLE_TEXT, "website": _NULLABLE_TEXT, "email": _NULLABLE_TEXT},
            ["phone", "website", "email"],
            title="PlaceContact",
        ),
        "accessibility": obj(
            {"wheelchair": enum(list(WHEELCHAIR))}, ["wheelchair"], title="PlaceAccessibility"
        ),
        "opening_hours": nullable(
            obj(
                {"raw": {"type": "string"}, "parsed": {"type": "boolean"}, "error": _NULLABLE_TEXT},
                ["raw", "parsed", "error"],
                title="OpeningHours",
                description="The published value; parsed false: not in the opening_hours "
                "syntax, kept as text (error says why), never guessed.",
            )
        ),
        "open_now": {
            "type": ["boolean", "null"],
            "description": "Open at the asked instant (open_at, default now); null: unknown.",
        },
        "next_change": nullable(
            obj(
                {"at": {"type": "string", "format": "date-time"}, "state": _STATE},
                ["at", "state"],
                title="PlaceChange",
                description="When the state changes next (null: never within a year).",
            )
        ),
        "commune": COMMUNE_FIELD,
        "distance_m": {"type": ["number", "null"]},
    },
    [
        "id",
        "source",
        "name",
        "category",
        "lat",
        "lon",
        "contact",
        "accessibility",
        "opening_hours",
        "open_now",
        "next_change",
        "commune",
    ],
    title="Place",
    description="A public place with its opening hours evaluated at the asked instant.",
)
DAY_SCHEMA = obj(
    {
        "date": {"type": "string", "format": "date"},
        "holiday": _NULLABLE_TEXT,
        "intervals": array_of(INTERVAL_SCHEMA),
    },
    ["date", "holiday", "intervals"],
    title="PlaceDay",
    description="One local day: the public holiday's name (null if none) and the open (or "
    "unknown) intervals, in the place's time zone.",
)


def place_sources(runtime: Runtime) -> list[str]:
    """Ids of the configured places sources: what ``source=`` accepts."""
    return [s for s, st in runtime.statuses.items() if st.source_type == "places"]


def _loaded(runtime: Runtime, sources: list[str]) -> dict[str, tuple[int, PlacesIndex]]:
    """Source id -> (snapshot version, index) of the sources with a snapshot here."""
    return sync.loaded(runtime, sources, INDEX_NAME, build_index)


def indexes_of(runtime: Runtime, sources: list[str]) -> list[PlacesIndex]:
    """The live indexes of the ``sources`` with a snapshot here."""
    return [index for _version, index in _loaded(runtime, sources).values()]


def place_communes(runtime: Runtime, index: PlacesIndex) -> RecordCommunes:
    """The commune of each place of ``index`` (looked up once per index and commune set)."""
    places = index.by_name
    name = f"places:{places[0]['source']}" if places else "places:"
    return runtime.communes.of(name, index, lambda: record_points(places))


def with_communes(
    runtime: Runtime, indexes: Sequence[PlacesIndex]
) -> list[tuple[PlacesIndex, RecordCommunes]]:
    """Each index with its commune tags (looked up in live data: on the event loop)."""
    return [(index, place_communes(runtime, index)) for index in indexes]


def render(
    index: PlacesIndex,
    place: Mapping[str, Any],
    at: datetime,
    runtime: Runtime,
    *,
    communes: RecordCommunes | None = None,
    **week: Any,
) -> dict:
    """The public shape of a stored place, evaluated at ``at``. ``communes``: the index's
    commune tags, when resolved beforehand (an export's thread must not look them up)."""
    if communes is None:
        communes = place_communes(runtime, index)
    return {
        "id": place["id"],
        "source": place["source"],
        "name": place.get("name"),
        "category": place["category"],
        "lat": place["lat"],
        "lon": place["lon"],
        "address": place.get("address"),
        "postcode": place.get("postcode"),
        "city": place.get("city"),
        "description": place.get("description"),
        "contact": {k: place.get(k) for k in ("phone", "website", "email")},
        "accessibility": {"wheelchair": place.get("wheelchair", "unknown")},
        "commune": communes.of(place["id"]),
        **index.opening(place["id"], at, **week),
    }


_CATEGORY_ITEM = api_schemas.one_of(CATEGORIES)


@dataclass(frozen=True)
class PlaceQuery:
    """The filters of a places list, checked: what the JSON list, its GeoJSON and its CSV
    export (connectors/places/csv_export.py) all select by."""

    lat: float | None
    lon: float | None
    radius_m: float
    categories: frozenset[str] | None
    words: list[str]
    #: Only the places open at ``at`` (open_now, or open_at).
    only_open: bool
    at: datetime
    sources: list[str]
    #: What a cursor of this list belongs to.
    scope: str
    #: Only the places in this commune (an INSEE code the communes know).
    commune: str | None = None

    @classmethod
    def read(cls, request: web.Request, runtime: Runtime) -> PlaceQuery:
        params = QueryParams(request.query)
        lat, lon = params.point() or (None, None)
        radius = params.number("radius", DEFAULT_RADIUS_M, minimum=1.0, maximum=MAX_RADIUS_M)
        if lat is None and "radius" in params:
            raise BadParameter("radius", "radius_needs_point")
        wanted = params.csv("category", max_items=len(CATEGORIES))
        for category in wanted:
            if category not in CATEGORIES:
                raise BadParameter(
                    "category", "not_one_of", value=repr(category), choices=", ".join(CATEGORIES)
                )
        text = params.string("q")
        now = runtime.clock.now()
        if "open_at" in params and "open_now" in params:
            raise BadParameter("open_at", "open_now_or_open_at")
        open_at = params.datetime("open_at", now, runtime.timezone) if "open_at" in params else None
        only_open = params.boolean("open_now", False) or open_at is not None
        sources = place_sources(runtime)
        source = params.member("source", sources, "a configured places source")
        scope = "places?" + urlencode(
            sorted((k, v) for k, v in request.query.items() if k not in _NOT_IN_SCOPE)
        )
        return cls(
            lat,
            lon,
            radius or DEFAULT_RADIUS_M,
            frozenset(wanted) or None,
            fold(text).split() if text else [],
            only_open,
            open_at or now,
            [source] if source is not None else sources,
            scope,
            wanted_commune(params, runtime),
        )

    def search(
        self,
        runtime: Runtime,
        after: list[Any] | None,
        limit: int,
        *,
        indexes: Sequence[tuple[PlacesIndex, RecordCommunes]] | None = None,
    ) -> list[tuple[tuple[float, str], PlacesIndex, Mapping[str, Any]]]:
        """Up to ``limit + 1`` matches of every source after ``after``, nearest first (see
        :meth:`PlacesIndex.search`), each with its index: of ``indexes``, when given (the
        sources' live indexes and their commune tags, resolved by the caller on the loop:
        :func:`with_communes`), else of the sources' live indexes."""
        hits: list[tuple[tuple[float, str], PlacesIndex, Mapping[str, Any]]] = []
        if indexes is None:
            indexes = with_communes(runtime, indexes_of(runtime, self.sources))
        for index, communes in indexes:
            found = index.search(
                self.lat,
                self.lon,
                self.radius_m,
                categories=self.categories,
                words=self.words,
                open_at=self.at if self.only_open else None,
                after=after,
                limit=limit,
                ids=None if self.commune is None else communes.keys_in(self.commune),
            )
            hits += [(key, index, place) for key, place in found]
        hits.sort(key=lambda hit: hit[0])
        return hits


async def list_places(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    language = negotiate_language(request, runtime.languages)
    query = PlaceQuery.read(request, runtime)
    limit = params.integer("limit", 20, minimum=1, maximum=MAX_LIMIT)
    geojson = wants_geojson(request)
    if "sync" in params:
        if geojson:
            raise BadParameter("sync", "sync_json_only")
        for name in ("open_now", "open_at"):
            if name in params:
                raise BadParameter(name, "not_with_sync")
        where = (query.lat, query.lon, query.radius_m)
        filters = (query.categories, query.words)
        return await _sync(
            request, params, language, query.sources, where, filters, query.at, limit, query.commune
        )
    after: list[Any] | None = None
    cursor = params.string("cursor")
    if cursor is not None:
        position = runtime.cursors.decode(query.scope, cursor)
        if not (isinstance(position, list) and len(position) == 3):
            raise BadParameter("cursor", "cursor_unknown")
        # "Open now" pages are asked at different instants: the cursor keeps the first one.
        after = position[:2]
        query = dataclasses.replace(query, at=datetime.fromisoformat(position[2]))
    at, sources = query.at, query.sources
    hits = query.search(runtime, after, limit)
    page = hits[:limit]
    data = []
    for key, index, place in page:
        item = render(index, place, at, runtime)
        item["distance_m"] = key[0] if query.lat is not None else None
        data.append(item)
    next_cursor = None
    if len(hits) > limit and page:
        next_cursor = runtime.cursors.encode(query.scope, [*page[-1][0], at.isoformat()])
    meta = {"at": at.astimezone(runtime.timezone).isoformat()}
    if geojson:
        return ApiResult(
            feature_collection(data),
            sources=sources,
            enveloped=False,
            media_type="application/geo+json",
            meta={**meta, "next_cursor": next_cursor},
        )
    return ApiResult(
        data,
        sources=sources,
        language=language,
        paginated=True,
        next_cursor=next_cursor,
        meta=meta,
    )


async def _sync(
    request: web.Request,
    params: QueryParams,
    language: str,
    sources: list[str],
    where: tuple[float | None, float | None, float],
    filters: tuple[frozenset[str] | None, list[str]],
    at: datetime,
    limit: int,
    commune: str | None = None,
) -> ApiResult:
    """A sync page (see aggregator.api.sync): the places changed since the token, evaluated
    at ``at``; ``where`` and ``filters`` select what the list would (whatever the hours)."""
    runtime = runtime_of(request)
    configured = place_sources(runtime)
    loaded = _loaded(runtime, configured)
    sync.check_loaded(runtime, configured, loaded)
    collection, union = sync.union(
        runtime.live, INDEX_NAME, configured, loaded, PlacesIndex.content_hashes
    )
    lat, lon, radius = where

    def matching() -> set[str]:
        selected: set[str] = set()
        for source_id in sources:
            index = union.parts.get(source_id)
            if index is not None:
                found = index.matching_ids(lat, lon, radius, *filters)
                if commune is not None:
                    found = found & place_communes(runtime, index).keys_in(commune)
                selected |= found
        return selected

    scope = "places?" + urlencode(
        sorted((k, v) for k, v in request.query.items() if k not in _NOT_IN_SYNC_SCOPE)
    )
    page = await sync.sync_page(
        runtime, params, collection, scope=scope, matching=matching, limit=limit
    )
    changed = []
    for place_id in page.changed:
        index = union.parts[place_id.split(":", 1)[0]]
        place = index.by_id[place_id]
        item = render(index, place, at, runtime)
        item["distance_m"] = (
            None
            if lat is None or lon is None
            else round(distance_m(lat, lon, place["lat"], place["lon"]), 1)
        )
        changed.append(item)
    return sync.page_answer(
        page,
        changed,
        sources=sources,
        language=language,
        meta={"at": at.astimezone(runtime.timezone).isoformat()},
    )


async def get_place(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    language = negotiate_language(request, runtime.languages)
    place_id = request.match_info["place_id"]
    source_id = place_id.split(":", 1)[0]
    at = params.datetime("at", runtime.clock.now(), runtime.timezone)
    if source_id in place_sources(runtime):
        for index in indexes_of(runtime, [source_id]):
            place = index.by_id.get(place_id)
            if place is not None:
                data = render(index, place, at, runtime, week=True, language=language)
                return ApiResult(data, sources=[source_id], language=language)
    raise NotFound("no_place", value=repr(place_id))


def register_place_routes(router: ApiRouter) -> None:
    if router.lookup("GET", PATH) is not None:
        return
    add_commune_schema(router)
    place_ref = router.add_schema("Place", PLACE_SCHEMA)
    day_ref = router.add_schema("PlaceDay", DAY_SCHEMA)
    removed_ref = router.add_schema("SyncRemoved", sync.REMOVED_SCHEMA)
    sync_ref = router.add_schema("PlaceSync", sync.answer_schema(place_ref, removed_ref))
    router.get(
        PATH,
        list_places,
        summary="Public places (town halls, pharmacies...), nearest first, open now or not",
        tags=["places"],
        params=[
            Param(
                "lat",
                "Latitude (WGS 84); with lon (both or neither), nearest first.",
                api_schemas.LATITUDE,
            ),
            Param("lon", "Longitude (WGS 84); with lat.", api_schemas.LONGITUDE),
            Param(
                "radius",
                f"Metres around lat/lon (1-{MAX_RADIUS_M:.0f}, {DEFAULT_RADIUS_M:.0f} when "
                "omitted); needs lat and lon. No schema default: a client would send it alone.",
                api_schemas.number(1, MAX_RADIUS_M),
            ),
            Param(
                "category",
                "Only these categories (comma-separated).",
                api_schemas.csv(_CATEGORY_ITEM),
            ),
            Param(
                "q",
                "Words in the name, address or description (accents ignored).",
                api_schemas.TEXT,
            ),
            Param(
                "open_now", "true: only places open now (not with open_at).", {"type": "boolean"}
            ),
            Param(
                "open_at",
                f"Only places open at this instant ({api_schemas.INSTANT_RANGE}; not with "
                "open_now).",
                api_schemas.INSTANT,
            ),
            limit_param("Places", MAX_LIMIT),
            CURSOR_PARAM,
            Param(
                "source",
                "Only this places source (a configured source id).",
                api_schemas.configured(place_sources),
            ),
            *sync.PARAMS,
            COMMUNE_PARAM,
            Param(
                "format",
                "geojson for an RFC 7946 FeatureCollection.",
                api_schemas.choice(["json", "geojson"], default="json"),
            ),
        ],
        response={"oneOf": [{"type": "array", "items": place_ref}, sync_ref]},
        geojson=router.add_schema(
            "PlaceCollection", api_schemas.point_features(PLACE_SCHEMA, "PlaceCollection")
        ),
        csv=places_csv,
    )
    detail = router.add_schema(
        "PlaceDetail",
        extend(PLACE_SCHEMA, {"week": array_of(day_ref)}, ["week"], title="PlaceDetail"),
    )
    router.get(
        PATH + "/{place_id:.+}",
        get_place,
        summary="One place: open now, next change, and the coming 7 days (holidays marked)",
        tags=["places"],
        params=[
            path_param("place_id", "The place's id (source:native_id)."),
            Param(
                "at",
                f"Evaluate at this instant instead of now ({api_schemas.INSTANT_RANGE}).",
                api_schemas.INSTANT,
            ),
        ],
        response=detail,
        errors=[400, 404],
    )

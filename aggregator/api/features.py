"""``/ogc``: the located data as OGC API - Features - Part 1 (Core and GeoJSON).

One collection per source (its id is the source's id): a source has one licence, one
publisher and one refresh cadence, so a GIS layer or a harvested dataset built from a
collection carries exactly one set of terms (docs/OPEN-DATA.md says more).

The routes are declared through the router like every other one, so the conventions hold
here too: unknown query parameters are refused (the standard lets a server refuse them), bad
values are problems naming the parameter, answers carry ``meta`` (sources, licences) as one
more member, ETags and ``Cache-Control``. Paging is keyset, as on ``/v1``: the ``next`` and
``prev`` links carry a signed cursor holding the key of the page's last (or first) feature,
so a refresh between two pages neither repeats nor skips a feature.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.catalog import public_base
from aggregator.api.features_layers import Context, FeatureKind, Layer, collections, feature_kinds
from aggregator.api.features_layers import epoch_iso as iso
from aggregator.api.features_schemas import CONFORMANCE, CRS84, GREGORIAN, register_schemas
from aggregator.api.i18n import negotiate_language
from aggregator.api.pagination import query_scope
from aggregator.api.params import MAX_PARAM_LENGTH, QueryParams
from aggregator.api.problems import BadParameter, NotFound
from aggregator.api.results import ApiResult
from aggregator.api.routing import GEOJSON_MEDIA_TYPE, ApiRouter, Param
from aggregator.config.licences import licence_url
from aggregator.connector import Connector
from aggregator.runtime import Runtime, runtime_of

ROOT = "/ogc"
#: Features per page when ``limit`` is not given: the standard's default.
DEFAULT_LIMIT = 10
#: Features per page at most. A larger ``limit`` (up to LIMIT_CEILING) is served as this many,
#: not refused: the standard says a limit above the server's maximum is not an error.
MAX_LIMIT = 1000
#: The largest ``limit`` read at all (the standard's own example maximum): beyond, a 400.
LIMIT_CEILING = 10_000
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.1"
#: The f values OGC servers (pygeoapi, ldproxy) take for the JSON encoding, the only one served.
ENCODINGS = ("json", "geojson")
_NUMBER = r"-?(0|[1-9][0-9]{0,8})(\.[0-9]+)?"
_LON, _LAT = api_schemas.degrees(180), api_schemas.degrees(90)
#: west,south,east,north, or with heights west,south,low,east,north,high (heights ignored:
#: the features have none).
BBOX = re.compile(
    f"^{_LON},{_LAT},{_LON},{_LAT}$|^{_LON},{_LAT},{_NUMBER},{_LON},{_LAT},{_NUMBER}$"
)


def _runtime_kind(request: web.Request) -> tuple[Runtime, str, FeatureKind]:
    runtime = runtime_of(request)
    collection = request.match_info["collection_id"]
    kind = collections(runtime).get(collection)
    if kind is None:
        raise NotFound("no_collection", value=repr(collection))
    return runtime, collection, kind


def _link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def _max_age(runtime: Runtime) -> int | None:
    """0 when the links are built on the request's own address (no ``catalog.public_url``):
    the answer then depends on the Host it was asked at, which the in-process micro-cache
    does not key on, so it must not keep it. Otherwise as every answer (from the sources)."""
    return None if runtime.config.catalog.public_url else 0


def _json(data: dict[str, Any], runtime: Runtime, sources: Sequence[str] = ()) -> ApiResult:
    return ApiResult(data, sources=list(sources), enveloped=False, max_age=_max_age(runtime))


def _check_encoding(request: web.Request) -> None:
    """f=json/geojson is the OGC servers' way to ask for the JSON encoding (the only one
    served); any other value is refused, as any other bad value is."""
    QueryParams(request.query).choice("f", ENCODINGS, "json")


async def landing_page(request: web.Request) -> ApiResult:
    _check_encoding(request)
    runtime = runtime_of(request)
    base = public_base(runtime, request)
    settings = runtime.config.catalog
    return _json(
        {
            "title": settings.title,
            "description": "The located data of this Beffroi (stops, bike stations, car "
            "parks, places, events) as OGC API - Features.",
            "links": [
                _link(f"{base}{ROOT}", "self", "application/json", "This document"),
                _link(
                    f"{base}/v1/openapi.json",
                    "service-desc",
                    OPENAPI_MEDIA_TYPE,
                    "The API definition (OpenAPI 3.1), these routes included",
                ),
                _link(
                    f"{base}{ROOT}/conformance",
                    "conformance",
                    "application/json",
                    "The conformance classes this API implements",
                ),
                _link(
                    f"{base}{ROOT}/collections",
                    "data",
                    "application/json",
                    "The feature collections",
                ),
                _link(
                    f"{base}/v1/catalog",
                    "describedby",
                    "application/ld+json",
                    "The DCAT-AP catalogue of the sources",
                ),
            ],
        },
        runtime,
    )


async def conformance(request: web.Request) -> ApiResult:
    _check_encoding(request)
    # No link in it: the same answer whatever the address it was asked at.
    return ApiResult({"conformsTo": list(CONFORMANCE)}, enveloped=False)


def _collection(runtime: Runtime, base: str, collection: str, kind: FeatureKind) -> dict[str, Any]:
    source = next((s for s in runtime.config.connectors if s.id == collection), None)
    title = (source.title if source is not None else None) or collection
    here = f"{base}{ROOT}/collections/{collection}"
    links = [
        _link(here, "self", "application/json", "This collection"),
        _link(f"{here}/items", "items", GEOJSON_MEDIA_TYPE, f"{title}: the features"),
    ]
    if source is not None and source.licence is not None:
        url = licence_url(source.licence)
        assert url is not None
        links.append(_link(url, "license", "text/html", source.licence))
    out: dict[str, Any] = {
        "id": collection,
        "title": title,
        "description": (source.description if source is not None else None)
        or f"{kind.title} of the source {collection}.",
        "links": links,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "kind": kind.name,
    }
    layer = kind.layer(runtime, collection)
    bbox = layer.bbox if layer is not None else None
    if layer is not None and bbox is not None:
        extent: dict[str, Any] = {"spatial": {"bbox": [bbox], "crs": CRS84}}
        interval = layer.interval
        if interval is not None:
            extent["temporal"] = {"interval": [[iso(t) for t in interval]], "trs": GREGORIAN}
        out["extent"] = extent
    return out


async def list_collections(request: web.Request) -> ApiResult:
    _check_encoding(request)
    runtime = runtime_of(request)
    base = public_base(runtime, request)
    found = collections(runtime)
    return _json(
        {
            "links": [
                _link(f"{base}{ROOT}/collections", "self", "application/json", "This document")
            ],
            "collections": [
                _collection(runtime, base, collection, kind)
                for collection, kind in sorted(found.items())
            ],
        },
        runtime,
        sorted(found),
    )


async def get_collection(request: web.Request) -> ApiResult:
    _check_encoding(request)
    runtime, collection, kind = _runtime_kind(request)
    base = public_base(runtime, request)
    return _json(_collection(runtime, base, collection, kind), runtime, [collection])


def _bbox(params: QueryParams) -> tuple[float, float, float, float] | None:
    value = params.matching("bbox", BBOX, "ogc_bbox_form")
    if value is None:
        return None
    numbers = [float(v) for v in value.split(",")]
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    west, south, east, north = numbers
    # west > east is a box across the antimeridian (the standard's rule), not an error.
    if south > north:
        raise BadParameter("bbox", "bbox_south_north")
    return west, south, east, north


def _datetime(params: QueryParams, runtime: Runtime) -> tuple[float, float] | None:
    """``datetime=``: an instant, or ``start/end`` with ``..`` (or nothing) for an open end."""
    value = params.string("datetime")
    if value is None:
        return None
    parts = value.split("/")
    if len(parts) > 2:
        raise BadParameter("datetime", "datetime_form", value=repr(value))
    bounds: list[float] = []
    for part, open_end in zip(parts, (float("-inf"), float("inf")), strict=False):
        if part in ("", ".."):
            if len(parts) == 1:
                raise BadParameter("datetime", "datetime_form", value=repr(value))
            bounds.append(open_end)
            continue
        one = QueryParams({"datetime": part})
        moment = one.datetime("datetime", runtime.clock.now(), runtime.timezone)
        bounds.append(moment.timestamp())
    if len(bounds) == 1:
        bounds.append(bounds[0])
    start, end = bounds
    if start > end or (start == float("-inf") and end == float("inf")):
        raise BadParameter("datetime", "datetime_interval", value=repr(value))
    return start, end


def _matching(
    layer: Layer, box: tuple[float, ...] | None, span: tuple[float, float] | None
) -> np.ndarray:
    """Positions of the features in the box and the time span, in the layer's order."""
    keep = np.ones(len(layer), dtype=bool)
    if box is not None:
        west, south, east, north = box
        keep &= (layer.lat >= south) & (layer.lat <= north)
        if west <= east:
            keep &= (layer.lon >= west) & (layer.lon <= east)
        else:
            keep &= (layer.lon >= west) | (layer.lon <= east)
    # A timeless collection (stops, stations...) ignores datetime, as the reference
    # implementation does: its features hold at any time.
    if span is not None and layer.starts is not None and layer.ends is not None:
        keep &= (layer.starts <= span[1]) & (layer.ends >= span[0])
    return np.flatnonzero(keep)


def _page(
    layer: Layer, matched: np.ndarray, position: Any, limit: int
) -> tuple[np.ndarray, bool, bool]:
    """The page of ``matched`` a cursor position asks for; whether pages lie before, after."""
    start, end = 0, min(limit, len(matched))
    if position is not None:
        direction, key = position
        key = tuple(key) if isinstance(key, list) else key
        try:
            if direction == "n":
                start = int(np.searchsorted(matched, bisect.bisect_right(layer.keys, key)))
                end = min(start + limit, len(matched))
            else:
                end = int(np.searchsorted(matched, bisect.bisect_left(layer.keys, key)))
                # Nothing left before (features removed since): the first page, not a dead end.
                end = end or min(limit, len(matched))
                start = max(0, end - limit)
        except TypeError:
            raise BadParameter("cursor", "cursor_unknown") from None
    return matched[start:end], start > 0, end < len(matched)


def _position(runtime: Runtime, scope: str, params: QueryParams) -> Any:
    cursor = params.string("cursor")
    if cursor is None:
        return None
    position = runtime.cursors.decode(scope, cursor)
    if not (isinstance(position, list) and len(position) == 2 and position[0] in ("n", "p")):
        raise BadParameter("cursor", "cursor_unknown")
    return position


def _feature(layer: Layer, i: int, ctx: Context, href: str | None = None) -> dict[str, Any]:
    feature: dict[str, Any] = {
        "type": "Feature",
        "id": layer.ids[i],
        "geometry": {"type": "Point", "coordinates": [float(layer.lon[i]), float(layer.lat[i])]},
        "properties": layer.properties(i, ctx),
    }
    if href is not None:
        feature["links"] = [_link(href, "self", GEOJSON_MEDIA_TYPE, "This feature")]
    return feature


def _context(request: web.Request, runtime: Runtime) -> Context:
    return Context(runtime, negotiate_language(request, runtime.languages), runtime.clock.now())


async def list_items(request: web.Request) -> ApiResult:
    _check_encoding(request)
    runtime, collection, kind = _runtime_kind(request)
    params = QueryParams(request.query)
    asked = params.integer("limit", DEFAULT_LIMIT, minimum=1, maximum=LIMIT_CEILING)
    limit = min(asked, MAX_LIMIT)
    box = _bbox(params)
    span = _datetime(params, runtime)
    scope = query_scope(request.path, request.query)
    position = _position(runtime, scope, params)
    ctx = _context(request, runtime)
    base = public_base(runtime, request)
    here = f"{base}{ROOT}/collections/{collection}"
    layer = kind.layer(runtime, collection)
    matched = _matching(layer, box, span) if layer is not None else np.empty(0, np.int64)
    page, before, after = (
        _page(layer, matched, position, limit) if layer is not None else (matched, False, False)
    )
    features = [_feature(layer, int(i), ctx) for i in page] if layer is not None else []
    kept = [(k, v) for k, v in request.query.items() if k != "cursor"]
    if "limit" not in request.query:
        kept.append(("limit", str(limit)))

    def with_cursor(direction: str, key: Any) -> str:
        cursor = runtime.cursors.encode(
            scope, [direction, list(key) if isinstance(key, tuple) else key]
        )
        return f"{here}/items?{urlencode([*kept, ('cursor', cursor)], safe=',:')}"

    self_query = urlencode(list(request.query.items()), safe=",:")
    links = [
        _link(
            f"{here}/items" + (f"?{self_query}" if self_query else ""),
            "self",
            GEOJSON_MEDIA_TYPE,
            "This page",
        ),
        _link(here, "collection", "application/json", "The collection"),
    ]
    if after and len(page) and layer is not None:
        following = with_cursor("n", layer.keys[int(page[-1])])
        links.append(_link(following, "next", GEOJSON_MEDIA_TYPE, "Next page"))
    if before and layer is not None:
        # Past the end (features removed since the last page): back from where it was.
        key = layer.keys[int(page[0])] if len(page) else position[1]
        links.append(_link(with_cursor("p", key), "prev", GEOJSON_MEDIA_TYPE, "Previous page"))
    return ApiResult(
        {
            "type": "FeatureCollection",
            "features": features,
            "links": links,
            "numberMatched": len(matched),
            "numberReturned": len(features),
            "timeStamp": ctx.now.isoformat(timespec="seconds"),
        },
        sources=[collection],
        language=ctx.language,
        content_language=False,
        enveloped=False,
        media_type=GEOJSON_MEDIA_TYPE,
        max_age=_max_age(runtime),
    )


async def get_item(request: web.Request) -> ApiResult:
    _check_encoding(request)
    runtime, collection, kind = _runtime_kind(request)
    feature_id = request.match_info["feature_id"]
    layer = kind.layer(runtime, collection)
    i = layer.by_id.get(feature_id) if layer is not None else None
    if layer is None or i is None:
        raise NotFound("no_feature", value=repr(feature_id), collection=collection)
    ctx = _context(request, runtime)
    here = f"{public_base(runtime, request)}{ROOT}/collections/{collection}"
    feature = _feature(layer, i, ctx, f"{here}/items/{quote(feature_id, safe=':@')}")
    feature["links"].append(_link(here, "collection", "application/json", "The collection"))
    return ApiResult(
        feature,
        sources=[collection],
        language=ctx.language,
        content_language=False,
        enveloped=False,
        media_type=GEOJSON_MEDIA_TYPE,
        max_age=_max_age(runtime),
    )


def register_features(router: ApiRouter, connector_types: Iterable[type[Connector]]) -> None:
    """The /ogc routes, their collections being of the kinds ``connector_types`` offer."""
    refs = register_schemas(router, feature_kinds(connector_types))
    tags = ["ogc api features"]
    collection_param = Param(
        "collection_id",
        "A collection: the id of a located source (stops, bike stations, car parks, places, "
        "events).",
        api_schemas.SOURCE_ID,
        location="path",
        required=True,
    )
    # pygeoapi, ldproxy and the clients written against them (GDAL's OAPIF driver, QGIS) add
    # f=json to ask for the JSON encoding: accepted, the only encodings served being JSON ones.
    encoding_param = Param(
        "f",
        "The encoding, as OGC servers name it: JSON only (f=json or geojson), the default.",
        {"type": "string", "enum": list(ENCODINGS)},
    )
    common = {"tags": tags, "enveloped": False}
    router.get(
        ROOT,
        landing_page,
        summary="OGC API Features: the landing page",
        response=refs["OgcLandingPage"],
        params=[encoding_param],
        **common,
    )
    router.get(
        ROOT + "/",
        landing_page,
        summary="OGC API Features: the landing page, at the address OGC clients ask",
        description="The same document as /ogc: clients (OWSLib, QGIS) add a slash to the "
        "landing page's address before resolving conformance and collections against it.",
        response=refs["OgcLandingPage"],
        params=[encoding_param],
        **common,
    )
    router.get(
        ROOT + "/conformance",
        conformance,
        summary="OGC API Features: the conformance classes implemented (Core, GeoJSON)",
        response=refs["OgcConformance"],
        params=[encoding_param],
        **common,
    )
    router.get(
        ROOT + "/collections",
        list_collections,
        summary="OGC API Features: the collections, one per located source",
        response=refs["OgcCollections"],
        params=[encoding_param],
        **common,
    )
    router.get(
        ROOT + "/collections/{collection_id}",
        get_collection,
        summary="OGC API Features: one collection, its extent and licence",
        params=[collection_param, encoding_param],
        response=refs["OgcCollection"],
        errors=[404],
        **common,
    )
    router.get(
        ROOT + "/collections/{collection_id}/items",
        list_items,
        summary="OGC API Features: a page of a collection's features, as GeoJSON",
        description=f"limit: {DEFAULT_LIMIT} by default, at most {MAX_LIMIT} served (a "
        f"larger limit, up to {LIMIT_CEILING}, is served as {MAX_LIMIT}: the standard's "
        "rule). Follow the next link to page on.",
        params=[
            collection_param,
            Param(
                "bbox",
                "Only the features in this box: west,south,east,north in degrees (CRS84); "
                "west > east crosses the antimeridian; six numbers (with heights) accepted, "
                "heights ignored.",
                {"type": "string", "maxLength": MAX_PARAM_LENGTH, "pattern": BBOX.pattern},
            ),
            Param(
                "limit",
                f"Features per page (1-{LIMIT_CEILING}; at most {MAX_LIMIT} served).",
                api_schemas.integer(1, LIMIT_CEILING, default=DEFAULT_LIMIT),
            ),
            Param(
                "datetime",
                "Only the features whose time meets this instant or interval (RFC 3339; "
                "start/end, '..' for an open end). Events only: other collections have no "
                "time and ignore it.",
                {**api_schemas.TEXT, "pattern": "^[0-9./]"},
            ),
            Param(
                "cursor",
                "Set by the next and prev links: do not build it.",
                api_schemas.CURSOR,
            ),
            encoding_param,
        ],
        response=refs["OgcFeatureCollection"],
        media_type=GEOJSON_MEDIA_TYPE,
        errors=[404],
        **common,
    )
    router.get(
        ROOT + "/collections/{collection_id}/items/{feature_id:.+}",
        get_item,
        summary="OGC API Features: one feature, as GeoJSON",
        params=[
            collection_param,
            Param(
                "feature_id",
                "The feature's id (its /v1 id, source:native_id).",
                api_schemas.NAMESPACED_ID,
                location="path",
                required=True,
            ),
            encoding_param,
        ],
        response=refs["OgcFeatureAnswer"],
        media_type=GEOJSON_MEDIA_TYPE,
        errors=[404],
        **common,
    )

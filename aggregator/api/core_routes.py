"""The core's own endpoints: sources, records, health, readiness, metrics, OpenAPI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from aggregator import __version__
from aggregator.api import schemas
from aggregator.api.i18n import all_in, localize_record, negotiate_language
from aggregator.api.openapi import OpenApiDocument
from aggregator.api.pagination import MAX_LIMIT, paginate
from aggregator.api.params import QueryParams
from aggregator.api.problems import ApiError, NotFound
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Param
from aggregator.api.schemas import CURSOR, SOURCE_ID, integer, language
from aggregator.metrics import CONTENT_TYPE_LATEST
from aggregator.model import Snapshot
from aggregator.runtime import Runtime, runtime_of

LANG_PARAM = Param(
    "lang",
    "Response language; overrides Accept-Language (one of the configured languages).",
    language,
)


def _status_or_404(runtime: Runtime, source_id: str) -> None:
    if source_id not in runtime.statuses:
        raise NotFound("no_source", source=repr(source_id))


def _source_json(runtime: Runtime, source_id: str) -> dict[str, Any]:
    data = runtime.source_json(source_id, datetime.now(UTC))
    if live := runtime.live_stats(source_id):
        data["stats"] = {**data["stats"], **live}
    return data


async def list_sources(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    return ApiResult([_source_json(runtime, s) for s in runtime.statuses], max_age=0)


async def get_source(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    source_id = request.match_info["source_id"]
    _status_or_404(runtime, source_id)
    return ApiResult(_source_json(runtime, source_id), max_age=0)


async def list_records(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    source_id = request.match_info["source_id"]
    _status_or_404(runtime, source_id)
    params = QueryParams(request.query)
    limit = params.integer("limit", 100, minimum=1, maximum=MAX_LIMIT)
    cursor = params.string("cursor")
    language = negotiate_language(request, runtime.languages)
    snapshot = runtime.live.snapshot(source_id)
    if snapshot is None:
        return ApiResult([], sources=[source_id], language=language, paginated=True)
    connector_type = runtime.connector_types[snapshot.source_type]
    records = connector_type.records(snapshot)
    if records is None:
        raise ApiError(
            404,
            "Not found",
            "no_records_view",
            fields={"source": repr(source_id), "kind": snapshot.source_type},
        )
    fallbacks = runtime.languages

    def localized_by_id(snap: Snapshot) -> list[dict[str, Any]]:
        # Once per snapshot version and language, never per request.
        ordered = sorted(connector_type.records(snap) or [], key=lambda r: r["id"])
        return [_localized(record, language, fallbacks) for record in ordered]

    ordered = runtime.live.index(source_id, f"records:{language}", localized_by_id) or []
    page = paginate(
        ordered,
        key=lambda record: record["id"],
        limit=limit,
        cursor=cursor,
        codec=runtime.cursors,
        scope=f"records:{source_id}",
    )
    return ApiResult(
        page.items,
        sources=[source_id],
        language=language,
        paginated=True,
        next_cursor=page.next_cursor,
        content_language=all_in(language, page.items),
    )


def _localized(record: dict[str, Any], language: str, fallbacks: list[str]) -> dict[str, Any]:
    """The record in ``language``; ``text_languages`` names the language of each translated
    field (a text that exists only in the source's language is answered in it, and says so)."""
    picked: dict[str, str] = {}
    out = localize_record(record, language, fallbacks, picked)
    if picked:
        out["text_languages"] = picked
    return out


async def healthz(request: web.Request) -> ApiResult:
    return ApiResult({"status": "alive", "version": __version__}, cacheable=False)


async def readyz(request: web.Request) -> ApiResult:
    """Ready (200) once required sources are served; with the shared store down the process
    still serves what it has, so it stays in the pool as ``degraded``."""
    runtime = runtime_of(request)
    ready, reasons = runtime.is_ready()
    status = "ready" if ready else "not_ready"
    if ready and not runtime.store_ok:
        status = "degraded"
        reasons.append("the shared store does not answer: serving the data this process has")
    if ready:
        stale = runtime.stale_required(datetime.now(UTC))
        if stale:
            status = "degraded"
            reasons.extend(stale)
    return ApiResult(
        {"status": status, "reasons": reasons},
        sources=list(runtime.statuses),
        status=200 if ready else 503,
        cacheable=False,
    )


async def metrics(request: web.Request) -> web.Response:
    body = runtime_of(request).metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


async def openapi_document(request: web.Request) -> web.Response:
    """Gzip when asked, a 304 when If-None-Match names the ETag (see aggregator.api.openapi)."""
    return request.app[OPENAPI_KEY].respond(request, runtime_of(request))


OPENAPI_KEY = web.AppKey("beffroi.openapi", OpenApiDocument)


def register_core_routes(router: ApiRouter) -> None:
    router.add_schema("Meta", schemas.META)
    router.add_schema("Freshness", schemas.FRESHNESS)
    router.add_schema("SourceState", schemas.SOURCE_STATE)
    router.add_schema("Problem", schemas.PROBLEM)
    status_ref = router.add_schema("SourceStatus", schemas.SOURCE_STATUS)
    record_ref = router.add_schema("Record", schemas.RECORD)
    router.add_schema("JsonObject", schemas.JSON_OBJECT)
    router.add_schema("RealtimeState", schemas.REALTIME_STATE)
    router.add_schema("FeedState", schemas.FEED_STATE)
    source_id = Param(
        "source_id", "A source id from the configuration.", SOURCE_ID, "path", required=True
    )

    router.get(
        "/v1/sources",
        list_sources,
        summary="Every configured source with its polling status",
        tags=["sources"],
        response={"type": "array", "items": status_ref},
    )
    router.get(
        "/v1/sources/{source_id}",
        get_source,
        summary="One source's status: state, last success, last error, counters",
        tags=["sources"],
        params=[source_id],
        response=status_ref,
        errors=[400, 404],
    )
    router.get(
        "/v1/sources/{source_id}/records",
        list_records,
        summary="The records a source currently serves, by id, a page at a time",
        tags=["sources"],
        params=[
            source_id,
            Param(
                "limit",
                f"Records per page (1-{MAX_LIMIT}).",
                integer(1, MAX_LIMIT, 100),
            ),
            Param("cursor", "The meta.next_cursor of the previous page.", CURSOR),
            LANG_PARAM,
        ],
        response={"type": "array", "items": record_ref},
        errors=[400, 404],
    )
    router.get(
        "/healthz",
        healthz,
        summary="Liveness: the process answers",
        tags=["operations"],
        response=schemas.obj(
            {"status": {"type": "string", "const": "alive"}, "version": {"type": "string"}},
            ["status", "version"],
            title="Health",
        ),
    )
    router.get(
        "/readyz",
        readyz,
        summary="Readiness: required sources loaded and store reachable (503 otherwise)",
        tags=["operations"],
        response=schemas.obj(
            {
                "status": schemas.enum(["ready", "degraded", "not_ready"]),
                "reasons": schemas.array_of({"type": "string"}),
            },
            ["status", "reasons"],
            title="Readiness",
        ),
        errors=[400, 503],
    )
    router.get(
        "/metrics",
        metrics,
        summary="Prometheus metrics",
        tags=["operations"],
        response={"type": "string"},
        media_type="text/plain",
        enveloped=False,
    )
    router.get(
        "/v1/openapi.json",
        openapi_document,
        summary="This OpenAPI 3.1 document",
        tags=["operations"],
        response=schemas.OPENAPI_DOCUMENT,
        enveloped=False,
    )

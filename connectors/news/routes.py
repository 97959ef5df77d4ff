"""``GET /v1/news`` (newest first, filtered, paged) and ``GET /v1/news/{id}``.

Sync (``updated_since``): another module provides the generic change feed; when it lands,
``list_news`` hands a request carrying ``updated_since`` to it (see ``SYNC_HOOK`` below) with
:func:`news_records` as the data. Until then the parameter is not declared, so it is refused
like any unknown parameter rather than silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.i18n import negotiate_language
from aggregator.api.pagination import paginate
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter, NotFound
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Param
from aggregator.runtime import Runtime, runtime_of
from connectors.events.text import fold, search_terms

from .connector import INDEX_NAME, build_index

PATH = "/v1/news"
MAX_LIMIT = 100

IMAGE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {"url": {"type": "string"}, "type": {"type": ["string", "null"]}},
    "required": ["url", "type"],
}
NEWS_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A news item; summary is plain text, content_html safe HTML (a small "
    "allow-list: paragraphs, emphasis, lists, links).",
    "properties": {
        "id": {"type": "string", "description": "source:key (the item's guid/id, or a hash)"},
        "source": {"type": "string"},
        "title": {"type": ["string", "null"]},
        "summary": {"type": ["string", "null"]},
        "link": {"type": ["string", "null"]},
        "published": api_schemas.NULLABLE_TIME,
        "updated": api_schemas.NULLABLE_TIME,
        "image": IMAGE_SCHEMA,
        "categories": {"type": "array", "items": {"type": "string"}},
        "author": {"type": ["string", "null"]},
    },
    "required": ["id", "source", "title", "summary", "link", "published", "updated", "image"],
}
NEWS_DETAIL_SCHEMA: dict[str, Any] = {
    **NEWS_ITEM_SCHEMA,
    "properties": {
        **NEWS_ITEM_SCHEMA["properties"],
        "content_html": {"type": ["string", "null"]},
    },
}


def news_sources(runtime: Runtime) -> list[str]:
    return [s for s, st in runtime.statuses.items() if st.source_type == "news"]


def news_records(runtime: Runtime, sources: list[str]) -> list[Any]:
    """(record, words, categories) of every item of ``sources``, newest first."""
    entries: list[Any] = []
    for source_id in sources:
        index = runtime.live.index(source_id, INDEX_NAME, build_index)
        if index is not None:
            entries.extend(index)
    entries.sort(key=lambda e: _position(e[0]))
    return entries


#: Where undated items sort: after every dated one.
_UNDATED = 1e15


def _position(record: dict[str, Any]) -> list[Any]:
    """Newest first as an ascending keyset position: (minus the instant, id)."""
    published = record.get("published")
    return [-_epoch(published) if published else _UNDATED, record["id"]]


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "content_html"}


async def list_news(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    language = negotiate_language(request, runtime.languages)
    configured = news_sources(runtime)
    # SYNC_HOOK: the generic sync-token module answers `updated_since` here, over
    # news_records(runtime, configured), once it exists.
    wanted = params.csv("source")
    for source_id in wanted:
        if source_id not in configured:
            raise BadParameter("source", "not_configured_source", value=repr(source_id))
    sources = wanted or configured
    text = params.string("q")
    words = set(search_terms(text)) if text else set()
    if text is not None and not words:
        raise BadParameter("q", "no_searchable_word")
    categories = {fold(c.strip()) for c in params.csv("category")}
    since = None
    if "since" in params:
        since = params.datetime("since", runtime.clock.now(), runtime.timezone)
    limit = params.integer("limit", 20, minimum=1, maximum=MAX_LIMIT)
    scope = "|".join(
        [
            "news",
            ",".join(sorted(sources)),
            text or "",
            ",".join(sorted(categories)),
            since.isoformat() if since else "",
        ]
    )
    matching = []
    since_utc = since.timestamp() if since else None
    for record, item_words, item_categories in news_records(runtime, sources):
        if words and not all(any(w.startswith(q) for w in item_words) for q in words):
            continue
        if categories and not categories & item_categories:
            continue
        if since_utc is not None and (
            record["published"] is None or _epoch(record["published"]) < since_utc
        ):
            continue
        matching.append(record)
    page = paginate(
        matching,
        key=_position,
        limit=limit,
        cursor=params.string("cursor"),
        codec=runtime.cursors,
        scope=scope,
    )
    return ApiResult(
        [_summary(r) for r in page.items],
        sources=sources,
        language=language,
        paginated=True,
        next_cursor=page.next_cursor,
        meta={"total": len(matching)},
        # Items are in the feed's own language, whatever was asked.
        content_language=False,
    )


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def get_news_item(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    item_id = request.match_info["item_id"]
    source_id = item_id.split(":", 1)[0]
    sources = news_sources(runtime)
    if source_id in sources:
        for record, _words, _categories in news_records(runtime, [source_id]):
            if record["id"] == item_id:
                return ApiResult(
                    dict(record),
                    sources=[source_id],
                    language=negotiate_language(request, runtime.languages),
                    content_language=False,
                )
    raise NotFound("no_news_item", value=repr(item_id))


def register_news_routes(router: ApiRouter) -> None:
    if router.lookup("GET", PATH) is not None:
        return
    item_ref = router.add_schema("NewsItem", NEWS_ITEM_SCHEMA)
    detail_ref = router.add_schema("NewsItemDetail", NEWS_DETAIL_SCHEMA)
    router.get(
        PATH,
        list_news,
        summary="Municipal news, newest first, by source, text, category and date",
        tags=["news"],
        params=[
            Param(
                "source",
                "Only these news sources (comma-separated source ids).",
                api_schemas.csv(),
            ),
            Param(
                "q",
                "Words of the title or summary (case- and accent-insensitive, prefixes).",
                api_schemas.TEXT,
            ),
            Param(
                "category",
                "Only items in one of these categories (comma-separated, accent-insensitive).",
                api_schemas.csv(),
            ),
            Param(
                "since",
                f"Only items published at or after this instant ({api_schemas.INSTANT_RANGE}).",
                api_schemas.INSTANT,
            ),
            Param(
                "limit",
                f"Items per page (1-{MAX_LIMIT}, default 20).",
                api_schemas.integer(1, MAX_LIMIT, default=20),
            ),
            Param(
                "cursor",
                "The meta.next_cursor of the previous page (for the same filters).",
                api_schemas.CURSOR,
            ),
        ],
        response={"type": "array", "items": item_ref},
    )
    router.get(
        PATH + "/{item_id:.+}",
        get_news_item,
        summary="One news item with its full content (safe HTML)",
        tags=["news"],
        params=[
            Param(
                "item_id",
                "A news item id, 'source:key'.",
                api_schemas.NAMESPACED_ID,
                "path",
                required=True,
            ),
        ],
        response=detail_ref,
        errors=[400, 404],
    )

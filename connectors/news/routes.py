"""``GET /v1/news`` (newest first, filtered, paged) and ``GET /v1/news/{id}``.

``sync`` gives a phone keeping the news offline what changed since its last sync (see
:mod:`aggregator.api.sync`): the news list is published to its change log as the union of
every feed's items, each by its content hash. ``updated_since`` is refused with a pointer
to ``sync``, as on the events lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api import sync
from aggregator.api.i18n import negotiate_language
from aggregator.api.pagination import paginate
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter, NotFound
from aggregator.api.results import ApiResult
from aggregator.api.routing import CURSOR_PARAM, ApiRouter, Param, limit_param
from aggregator.runtime import Runtime, runtime_of
from connectors.events.text import fold, search_terms

from .connector import INDEX_NAME, NewsIndex, build_index

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


def _loaded(runtime: Runtime, sources: list[str]) -> dict[str, tuple[int, NewsIndex]]:
    """Source id -> (snapshot version, index) of the sources with a snapshot here."""
    return sync.loaded(runtime, sources, INDEX_NAME, build_index)


def news_records(runtime: Runtime, sources: list[str]) -> list[Any]:
    """(record, words, categories) of every item of ``sources``, newest first."""
    entries: list[Any] = []
    for _version, index in _loaded(runtime, sources).values():
        entries.extend(index.entries)
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


class _Filters:
    """What ``source``, ``q``, ``category`` and ``since`` select, checked."""

    def __init__(self, params: QueryParams, runtime: Runtime, configured: list[str]) -> None:
        self.wanted = params.csv("source")
        for source_id in self.wanted:
            if source_id not in configured:
                raise BadParameter("source", "not_configured_source", value=repr(source_id))
        self.sources = self.wanted or configured
        self.text = params.string("q")
        self.words = set(search_terms(self.text)) if self.text else set()
        if self.text is not None and not self.words:
            raise BadParameter("q", "no_searchable_word")
        self.categories = {fold(c.strip()) for c in params.csv("category")}
        self.since = None
        if "since" in params:
            self.since = params.datetime("since", runtime.clock.now(), runtime.timezone)
        self._since_utc = self.since.timestamp() if self.since else None

    def key(self, sources: list[str]) -> str:
        """What a cursor or a sync token of these filters is bound to."""
        return "|".join(
            [
                ",".join(sorted(sources)),
                self.text or "",
                ",".join(sorted(self.categories)),
                self.since.isoformat() if self.since else "",
            ]
        )

    def match(
        self, record: dict[str, Any], words: frozenset[str], categories: frozenset[str]
    ) -> bool:
        if self.words and not all(any(w.startswith(q) for w in words) for q in self.words):
            return False
        if self.categories and not self.categories & categories:
            return False
        return self._since_utc is None or (
            record["published"] is not None and _epoch(record["published"]) >= self._since_utc
        )


async def list_news(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    language = negotiate_language(request, runtime.languages)
    configured = news_sources(runtime)
    if "updated_since" in params:
        raise BadParameter("updated_since", "updated_since_replaced")
    filters = _Filters(params, runtime, configured)
    limit = params.integer("limit", 20, minimum=1, maximum=MAX_LIMIT)
    if "sync" in params:
        return await _sync(runtime, params, language, configured, filters, limit)
    scope = "news|" + filters.key(filters.sources)
    matching = [
        record
        for record, words, categories in news_records(runtime, filters.sources)
        if filters.match(record, words, categories)
    ]
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
        sources=filters.sources,
        language=language,
        paginated=True,
        next_cursor=page.next_cursor,
        meta={"total": len(matching)},
        # Items are in the feed's own language, whatever was asked.
        content_language=False,
    )


async def _sync(
    runtime: Runtime,
    params: QueryParams,
    language: str,
    configured: list[str],
    filters: _Filters,
    limit: int,
) -> ApiResult:
    """A sync page (see aggregator.api.sync): the items changed since the token."""
    loaded = _loaded(runtime, configured)
    sync.check_loaded(runtime, configured, loaded)
    collection, union = sync.union(
        runtime.live, INDEX_NAME, configured, loaded, NewsIndex.content_hashes
    )

    def matching() -> set[str]:
        selected = set()
        for source_id in filters.sources:
            index = union.parts.get(source_id)
            for record, words, categories in index.entries if index is not None else ():
                if filters.match(record, words, categories):
                    selected.add(record["id"])
        return selected

    page = await sync.sync_page(
        runtime,
        params,
        collection,
        # Bound to the sources asked, not to the configured ones: a feed added to the
        # configuration joins a sync of every feed as new items, not as another query.
        scope="news|" + filters.key(filters.wanted),
        matching=matching,
        limit=limit,
    )
    changed = [_summary(union.parts[rid.split(":", 1)[0]].by_id[rid]) for rid in page.changed]
    return sync.page_answer(
        page, changed, sources=filters.sources, language=language, content_language=False
    )


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def get_news_item(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    item_id = request.match_info["item_id"]
    source_id = item_id.split(":", 1)[0]
    if source_id in news_sources(runtime):
        index = runtime.live.index(source_id, INDEX_NAME, build_index)
        record = index.by_id.get(item_id) if index is not None else None
        if record is not None:
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
    removed_ref = router.add_schema("SyncRemoved", sync.REMOVED_SCHEMA)
    sync_ref = router.add_schema("NewsSync", sync.answer_schema(item_ref, removed_ref))
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
            limit_param("Items", MAX_LIMIT),
            CURSOR_PARAM,
            *sync.PARAMS,
            sync.UPDATED_SINCE_REFUSED,
        ],
        response={"oneOf": [{"type": "array", "items": item_ref}, sync_ref]},
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

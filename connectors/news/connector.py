"""The ``news`` connector type: a council's news feed (RSS 2.0, Atom or JSON Feed), by YAML::

    - id: lille-news
      type: news
      url: https://www.lille.fr/rss/actualites.xml
      categories: [city]          # added to every item's own categories (optional)

The fetch is conditional (ETag / Last-Modified, by the shared fetcher). A feed that cannot be
read fails the poll: the last good items keep being served and the source's status says why.
A feed that is ill-formed but still yields items is served, with an issue saying so.

Items get stable ids ``source:key``: the key is the item's guid / id, or, when it has none, a
hash of its link (else of its title and date). Two items with the same key are counted and
reported; the first (the feed's own order, newest first by convention) is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from aggregator.api import sync
from aggregator.config.models import UrlConnectorConfig
from aggregator.config.types import Schedule
from aggregator.connector import UrlConnector
from aggregator.model import ParseResult, Snapshot
from aggregator.notify.notice import Notice
from connectors.events.text import description_pair, fold, html_to_text, sanitize_html

from .feeds import (
    MAX_CATEGORIES,
    MAX_CONTENT,
    MAX_SUMMARY,
    MAX_TITLE,
    FeedError,
    RawItem,
    read_feed,
)

INDEX_NAME = "news"
#: Ids longer than this are replaced by their hash: an id is part of a URL path.
MAX_KEY_LENGTH = 200


class NewsConfig(UrlConnectorConfig):
    """Keys of a ``news`` source."""

    refresh: Schedule = Schedule.every(600)
    #: Extra category labels for every item of this feed (e.g. the publishing service).
    categories: list[str] = Field(default_factory=list)
    #: Items kept per feed (the newest); a feed is a window, not an archive.
    max_items: int = Field(200, ge=1, le=5000)


def _safe_link(link: str | None) -> str | None:
    if not link:
        return None
    link = link.strip()
    return link if urlsplit(link).scheme.lower() in ("http", "https") else None


def _key(item: RawItem) -> str:
    if item.native_id and item.native_id.strip():
        key = item.native_id.strip()
        if len(key) <= MAX_KEY_LENGTH and key.isprintable():
            return key
        return "h" + hashlib.sha256(key.encode()).hexdigest()[:20]
    basis = _safe_link(item.link) or f"{item.title}|{item.published}"
    return "h" + hashlib.sha256(basis.encode()).hexdigest()[:20]


def _record(item: RawItem, source: str, extra_categories: list[str]) -> dict[str, Any]:
    title = html_to_text(sanitize_html(item.title))[:MAX_TITLE] if item.title else None
    summary = description_pair(item.summary[: MAX_SUMMARY * 4] if item.summary else None)
    content_html = sanitize_html(item.content[: MAX_CONTENT * 2]) if item.content else None
    if summary is None and content_html:
        # No summary: the start of the content, as plain text, stands for it in lists.
        text = html_to_text(content_html)
        summary = (content_html, text) if text else None
    summary_text = summary[1][:MAX_SUMMARY] if summary else None
    categories: list[str] = []
    for label in [*item.categories, *extra_categories]:
        label = html_to_text(label)  # "Society &amp; Culture" is double-escaped in the wild
        if label and label not in categories and len(categories) < MAX_CATEGORIES:
            categories.append(label[:100])
    image = item.image
    if image is not None:
        url = _safe_link(image.get("url"))
        image = {"url": url, "type": image.get("type")} if url else None
    # Every instant in UTC, so that ISO texts sort as instants do.
    published = item.published or item.updated
    published = published.astimezone(UTC) if published else None
    updated = item.updated.astimezone(UTC) if item.updated else published
    return {
        "id": f"{source}:{_key(item)}",
        "source": source,
        "title": title or None,
        "summary": summary_text or None,
        "content_html": (content_html[:MAX_CONTENT] or None) if content_html else None,
        "link": _safe_link(item.link),
        "published": published.isoformat() if published else None,
        "updated": updated.isoformat() if updated else None,
        "image": image,
        "categories": categories,
        "author": html_to_text(item.author)[:200] if item.author else None,
    }


def category_key(label: str) -> str:
    """A category as it is matched and followed: case and accents folded, outer spaces
    dropped. The one folding of the index, the notices and the subscriptions."""
    return fold(label.strip())


def sort_key(record: Mapping[str, Any]) -> tuple[str, str]:
    """Newest first, then by id: ISO instants in UTC sort as text; undated items last."""
    return (record.get("published") or "", record["id"])


class NewsIndex:
    """One feed's items ready to serve, built once per snapshot: each item with its folded
    search words and category keys (newest first), the items by id, their content hashes,
    and every category key of the feed."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        from connectors.events.text import search_terms

        self.entries: list[tuple[dict[str, Any], frozenset[str], frozenset[str]]] = []
        for record in records:
            words = frozenset(search_terms(f"{record['title'] or ''} {record['summary'] or ''}"))
            categories = frozenset(category_key(c) for c in record["categories"])
            self.entries.append((record, words, categories))
        self.categories: frozenset[str] = frozenset().union(*(e[2] for e in self.entries))
        self.by_id: dict[str, dict[str, Any]] = {record["id"]: record for record in records}
        self._hashes: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def content_hashes(self) -> dict[str, str]:
        """Item id -> content hash, for the sync change log (computed once per snapshot)."""
        if self._hashes is None:
            self._hashes = sync.content_hashes(self.by_id.values())
        return self._hashes


def build_index(snapshot: Snapshot) -> NewsIndex:
    return NewsIndex(snapshot.data["items"])


class NewsConnector(UrlConnector[NewsConfig]):
    """News items from one RSS / Atom / JSON Feed URL."""

    type_name = "news"
    config_model = NewsConfig

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        try:
            feed = read_feed(payload)
        except FeedError as exc:
            raise ValueError(str(exc)) from None
        issues: list[str] = []
        if feed.malformed is not None:
            if not feed.items:
                raise ValueError(
                    f"the feed is ill-formed and has no readable item: {feed.malformed}"
                )
            issues.append(
                f"the feed is ill-formed ({feed.malformed}); {len(feed.items)} items read"
            )
        records: list[dict[str, Any]] = []
        seen: set[str] = set()
        duplicates: list[str] = []
        for item in feed.items:
            record = _record(item, config.id, config.categories)
            if record["id"] in seen:
                duplicates.append(record["id"].split(":", 1)[1])
                continue
            if record["title"] is None and record["summary"] is None:
                issues.append(f"item {record['id']!r} dropped: no title and no text")
                continue
            seen.add(record["id"])
            records.append(record)
        if duplicates:
            issues.append(
                f"{len(duplicates)} items repeat an earlier item's guid/id and were dropped: "
                f"{sorted(set(duplicates))[:5]}"
            )
        if feed.items and not records:
            raise ValueError(f"none of the {len(feed.items)} items could be read: {issues[:3]}")
        records.sort(key=sort_key, reverse=True)
        dropped_old = max(0, len(records) - config.max_items)
        records = records[: config.max_items]
        return ParseResult(
            data={"items": records, "format": feed.format, "feed_title": feed.title},
            record_count=len(records),
            issues=tuple(issues),
            issue_total=len(issues),
            stats={
                "format": feed.format,
                "entries": len(feed.items),
                "items": len(records),
                "duplicates": len(duplicates),
                "beyond_max_items": dropped_old,
                "malformed": feed.malformed,
            },
        )

    @classmethod
    def records(cls, snapshot: Snapshot) -> list[dict[str, Any]]:
        return snapshot.data["items"]

    @classmethod
    def notices(cls, snapshot: Snapshot) -> list[Notice]:
        from .notices import news_notices

        return news_notices(snapshot.source_id, snapshot.data["items"])

    @classmethod
    def topic_key(cls, live: Any, snapshot: Snapshot, kind: str, value: str) -> str | None:
        if kind == "news_source":
            return snapshot.source_id
        if kind != "news_category":
            return None
        # The index's category keys, built once per snapshot (not every item per request).
        current = live.index(snapshot.source_id, INDEX_NAME, build_index)
        index = current if current is not None else build_index(snapshot)
        folded = category_key(value)
        return folded if folded in index.categories else None

    @classmethod
    def index_builders(cls) -> Mapping[str, Callable[[Snapshot], Any]]:
        return {INDEX_NAME: build_index}

    @classmethod
    def register_routes(cls, router: Any) -> None:
        from .routes import register_news_routes

        register_news_routes(router)

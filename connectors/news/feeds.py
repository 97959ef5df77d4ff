"""A feed's bytes to news items: RSS 2.0 and Atom through feedparser, JSON Feed by mapping.

feedparser reads every XML dialect (RSS 0.9x-2.0, RSS 1.0, Atom 0.3/1.0), sniffs the encoding
(declared, BOM, or guessed when the declaration lies) and survives ill-formed XML, flagging it
as ``bozo``. It does not read JSON Feed, and no well-kept Python library does (the few on PyPI
are unmaintained one-offs), so a JSON Feed (jsonfeed.org, versions 1 and 1.1) is decoded with
orjson and its handful of item keys mapped here onto the same :class:`RawItem`.

Everything an item says is untrusted: HTML goes through the shared nh3 allow-list, links
must be http(s), texts have a length budget.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser
import orjson

#: Longest title / summary / content kept (characters): a feed cannot grow memory unbounded.
MAX_TITLE = 500
MAX_SUMMARY = 5_000
MAX_CONTENT = 100_000
MAX_CATEGORIES = 20


class FeedError(ValueError):
    """The payload is not a feed at all, or one with nothing readable in it."""


@dataclass
class RawItem:
    """One entry as the feed gives it, before sanitising."""

    native_id: str | None
    title: str | None
    summary: str | None
    content: str | None
    link: str | None
    published: datetime | None
    updated: datetime | None
    image: dict[str, Any] | None
    categories: list[str] = field(default_factory=list)
    author: str | None = None


@dataclass
class ParsedFeed:
    format: str
    title: str | None
    items: list[RawItem]
    #: Why feedparser found the XML ill-formed (None when it is well formed).
    malformed: str | None = None


def is_json_feed(payload: bytes) -> bool:
    return payload.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def read_feed(payload: bytes) -> ParsedFeed:
    """The feed's items, whatever its format; raises :class:`FeedError` when unreadable."""
    if is_json_feed(payload):
        return _read_json_feed(payload)
    # feedparser never raises on bad input: it returns what it could read and a bozo flag.
    parsed = feedparser.parse(payload, sanitize_html=False, resolve_relative_uris=False)
    malformed = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        malformed = f"{type(exc).__name__}: {exc}" if exc is not None else "ill-formed"
    version = parsed.get("version") or ""
    if not version and not parsed.entries:
        raise FeedError("not an RSS, Atom or JSON feed" + (f" ({malformed})" if malformed else ""))
    return ParsedFeed(
        format=_format_name(version),
        title=parsed.feed.get("title"),
        items=[_xml_item(entry) for entry in parsed.entries],
        malformed=malformed,
    )


def _format_name(version: str) -> str:
    if version.startswith("atom"):
        return "atom"
    if version.startswith("rss") or version.startswith("cdf"):
        return "rss"
    return version or "unknown"


def _instant(parsed: time.struct_time | None) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time.
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _xml_item(entry: Mapping[str, Any]) -> RawItem:
    content = None
    contents = entry.get("content") or []
    if contents:
        # Atom may give several alternates; prefer HTML/XHTML over plain text.
        ranked = sorted(contents, key=lambda c: "html" not in str(c.get("type", "")))
        content = ranked[0].get("value")
    summary = entry.get("summary")
    if summary is not None and content is not None and summary.strip() == content.strip():
        summary = None  # RSS readers copy content:encoded into summary; say it once
    return RawItem(
        native_id=entry.get("id") or None,
        title=entry.get("title"),
        summary=summary,
        content=content,
        link=entry.get("link"),
        # dict.get: FeedParserDict.get("updated_parsed") falls back to the published date
        # (with a DeprecationWarning); an entry that has no update date must not get one.
        published=_instant(dict.get(entry, "published_parsed")),
        updated=_instant(dict.get(entry, "updated_parsed")),
        image=_xml_image(entry),
        categories=[
            str(tag.get("label") or tag.get("term")).strip()
            for tag in entry.get("tags") or []
            if (tag.get("label") or tag.get("term"))
        ],
        author=entry.get("author"),
    )


def _xml_image(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first picture among enclosures, media:content and media:thumbnail."""
    for link in entry.get("enclosures") or []:
        if str(link.get("type", "")).startswith("image/") and link.get("href"):
            return {"url": link["href"], "type": link.get("type")}
    for media in entry.get("media_content") or []:
        kind = str(media.get("type") or "")
        if media.get("url") and (media.get("medium") == "image" or kind.startswith("image/")):
            return {"url": media["url"], "type": kind or None}
    for media in entry.get("media_content") or []:
        # media:content without a type or medium is, in practice, the article's picture.
        if media.get("url") and not media.get("type") and not media.get("medium"):
            return {"url": media["url"], "type": None}
    for thumbnail in entry.get("media_thumbnail") or []:
        if thumbnail.get("url"):
            return {"url": thumbnail["url"], "type": None}
    return None


# --- JSON Feed (https://www.jsonfeed.org/version/1.1/) --------------------------------------


def _read_json_feed(payload: bytes) -> ParsedFeed:
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise FeedError(f"the body looks like JSON but does not parse ({exc})") from None
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or "jsonfeed.org" not in version:
        raise FeedError("JSON but not a JSON Feed (no jsonfeed.org 'version')")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError("JSON Feed without an 'items' list")
    title = document.get("title")
    return ParsedFeed(
        format="jsonfeed",
        title=title if isinstance(title, str) else None,
        items=list(_json_items(items)),
    )


def _json_items(items: list[Any]) -> Iterator[RawItem]:
    for item in items:
        if not isinstance(item, dict):
            continue
        content = _text(item.get("content_html"))
        if content is None and _text(item.get("content_text")) is not None:
            content = _plain_as_html(item["content_text"])
        image = _text(item.get("image")) or _text(item.get("banner_image"))
        if image is None:
            for attachment in item.get("attachments") or []:
                if isinstance(attachment, dict) and str(attachment.get("mime_type", "")).startswith(
                    "image/"
                ):
                    image = _text(attachment.get("url"))
                    break
        authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
        author = next(
            (a["name"] for a in authors if isinstance(a, dict) and _text(a.get("name"))), None
        )
        yield RawItem(
            native_id=_text(item.get("id")) or (str(item["id"]) if item.get("id") else None),
            title=_text(item.get("title")),
            summary=_text(item.get("summary")),
            content=content,
            link=_text(item.get("url")) or _text(item.get("external_url")),
            published=_iso(item.get("date_published")),
            updated=_iso(item.get("date_modified")),
            image={"url": image, "type": None} if image else None,
            categories=_tags(item.get("tags")),
            author=author,
        )


def _tags(tags: Any) -> list[str]:
    # The spec says an array of strings; some feeds (rose.json in the wild) send one string.
    if isinstance(tags, str):
        tags = tags.split(",")
    return [t.strip() for t in tags or [] if isinstance(t, str) and t.strip()]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _plain_as_html(text: str) -> str:
    from connectors.events.text import text_to_html

    return text_to_html(text)


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

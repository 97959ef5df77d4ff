"""News items as notices: one per item, for the followers of its categories and its source.

The key is the item's id, not its content: an item edited after publication (a typo fixed,
an image added) is not news again, and a re-poll of the same feed is told nothing. Items the
feed already carried when a subscriber arrived were recorded before it, so only the items
published after reach it (see :mod:`aggregator.notify.storage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aggregator.api.messages import MESSAGE_LANGUAGES
from aggregator.notify.notice import MAX_BODY, MAX_TITLE, DeepLink, Notice, shorten
from aggregator.notify.topics import news_key

from .connector import category_key

_NEWS = {"en": "News", "fr": "Actualité"}


def news_topics(source: str, categories: Iterable[str]) -> tuple[str, ...]:
    """The topic keys an item of ``source`` in ``categories`` is found under: any source's
    category, this source's category, and the whole source."""
    folded = sorted({category_key(c) for c in categories if c.strip()})
    keys = [news_key(c, None) for c in folded] + [news_key(c, source) for c in folded]
    return (*keys, news_key(None, source))


def news_notices(source: str, records: Iterable[Mapping[str, Any]]) -> list[Notice]:
    return [_notice(source, r) for r in records if r.get("id")]


def _notice(source: str, record: Mapping[str, Any]) -> Notice:
    title = record.get("title") or ""
    summary = record.get("summary") or title
    texts = {
        language: (
            shorten(
                f"{_NEWS[language]} : {title}"
                if language == "fr"
                else f"{_NEWS[language]}: {title}",
                MAX_TITLE,
            ),
            shorten(summary, MAX_BODY),
        )
        for language in MESSAGE_LANGUAGES
    }
    item_id = str(record["id"])
    return Notice(
        key=f"news:{item_id}",
        kind="news",
        topics=news_topics(source, record.get("categories") or ()),
        collapse=f"news:{item_id}",
        urgency="low",
        texts=texts,
        links=(DeepLink("news", item_id),),
        subject=item_id,
    )

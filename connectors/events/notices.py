"""Agenda items as notices: one per item content (title, times, status, place), for the
followers of the agenda and of each of its categories."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from aggregator.api.messages import MESSAGE_LANGUAGES
from aggregator.notify.notice import MAX_BODY, MAX_TITLE, DeepLink, Notice, content_key, shorten

from .index import category_key

#: What the body says of an item's status, by language.
_STATUS = {
    "scheduled": {"en": "", "fr": ""},
    "rescheduled": {"en": "Rescheduled", "fr": "Reprogrammé"},
    "postponed": {"en": "Postponed", "fr": "Reporté"},
    "moved_online": {"en": "Moved online", "fr": "En ligne"},
    "full": {"en": "Full", "fr": "Complet"},
    "cancelled": {"en": "Cancelled", "fr": "Annulé"},
}
_AGENDA = {"en": "Agenda", "fr": "Agenda"}


def agenda_notices(records: Iterable[Mapping[str, Any]]) -> list[Notice]:
    return [_notice(r) for r in records if r.get("channel") == "agenda" and r.get("id")]


def _when(record: Mapping[str, Any]) -> str:
    start = record.get("start")
    if not start:
        return ""
    moment = datetime.fromisoformat(start)
    if record.get("all_day"):
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%d %H:%M")


def _notice(record: Mapping[str, Any]) -> Notice:
    status = record.get("status") or "scheduled"
    titles: Mapping[str, str] = record.get("title") or {}
    fallback = next(iter(titles.values()), "")
    texts: dict[str, tuple[str, str]] = {}
    for language in MESSAGE_LANGUAGES:
        title = titles.get(language) or fallback
        state = _STATUS.get(status, _STATUS["scheduled"])[language]
        body = " · ".join(part for part in (state, _when(record)) if part)
        heading = f"{_AGENDA[language]} : {title}" if language == "fr" else f"Agenda: {title}"
        texts[language] = (shorten(heading, MAX_TITLE), shorten(body or title, MAX_BODY))
    categories = sorted({category_key(c) for c in record.get("categories") or () if c})
    location = record.get("location") or {}
    content = {
        "title": titles,
        "start": record.get("start"),
        "end": record.get("end"),
        "status": status,
        "place": [location.get("name"), location.get("address")],
    }
    item = str(record["id"])
    return Notice(
        key=content_key(f"agenda:{item}", content),
        kind="agenda",
        topics=("agenda", *(f"agenda:{c}" for c in categories)),
        # The event, not the occurrence: a one-off item moved to another day changes its
        # occurrence id, and the device should still show one notification for it.
        collapse=f"agenda:{record.get('event_id') or item}",
        urgency="high" if status == "cancelled" else "normal",
        texts=texts,
        links=(DeepLink("event", item),),
        subject=item,
    )

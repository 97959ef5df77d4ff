"""The Event occurrence record every event connector produces (DESIGN §3 "Event").

Records are plain JSON-able dicts, so they travel through any store (memory, Redis) and
are served as they are. One record is one occurrence; ``event_id`` ties the occurrences of
one event together. Localised text is a ``{lang: value}`` map (negotiated by the API).

Shape::

    id            "{source}:{uid}:{recurrence}"   stable across polls
    event_id      "{source}:{uid}"
    source, uid, recurrence_id, channel ("events" | "agenda")
    title         {lang: str}
    description   {lang: plain text}      description_html {lang: sanitised HTML}
    start, end    RFC 3339 with the local offset; all_day; start_date/end_date (all-day only,
                  end exclusive); timezone (IANA)
    status        scheduled | rescheduled | postponed | moved_online | full | cancelled
    previous_start  the original start of a moved occurrence, else None
    location      {name, address, city, postal_code, lat, lon} or None
    attendance_mode offline | online | mixed; online_url
    categories    [str]; keywords {lang: [str]}
    accessibility [hearing | visual | motor | mental | intellectual]
    price         {free: bool | None, text: {lang: str}} ; registration [{type, value}]
    age           {min, max} or None; image {url, thumb_url, credits} or None
    url, updated_at, sources [{source, uid, url}]   (provenance; two after a merge)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal

__all__ = [
    "ACCESSIBILITY_CODES",
    "ATTENDANCE_MODES",
    "CHANNELS",
    "STATUSES",
    "Channel",
    "make_occurrence",
    "occurrence_from_template",
    "occurrence_template",
    "rfc3339",
]

Channel = Literal["events", "agenda"]
CHANNELS: tuple[str, ...] = ("events", "agenda")
STATUSES: tuple[str, ...] = (
    "scheduled",
    "rescheduled",
    "postponed",
    "moved_online",
    "full",
    "cancelled",
)
ACCESSIBILITY_CODES: tuple[str, ...] = ("hearing", "visual", "motor", "mental", "intellectual")
ATTENDANCE_MODES: tuple[str, ...] = ("offline", "online", "mixed")


def rfc3339(moment: datetime) -> str:
    """``2026-03-29T08:14:00+02:00``: seconds precision, the local offset, never naive."""
    if moment.tzinfo is None:
        raise ValueError("an event time must be aware")
    return moment.replace(microsecond=0).isoformat()


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The start of ``day`` in ``zone`` (an all-day event's instant for sorting and filters)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def recurrence_stamp(moment: date | datetime) -> str:
    """The compact, zone-independent key of an occurrence's original start (ids use it)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(tz=UTC)
            return moment.strftime("%Y%m%dT%H%M%SZ")
        return moment.strftime("%Y%m%dT%H%M%S")
    return moment.strftime("%Y%m%d")


def _clean_map(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (values or {}).items() if v not in (None, "", [], {})}


#: Every event location has these keys (null when unknown), whichever source it came from.
LOCATION_KEYS = ("name", "address", "city", "postal_code", "lat", "lon")


def _location(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """One shape for every location: all of :data:`LOCATION_KEYS`, or null when none is known
    (an ICS LOCATION has a name only, an OpenAgenda one an address too: not two shapes)."""
    kept = {k: v for k, v in (values or {}).items() if v not in (None, "", [], {})}
    if not any(k in kept for k in LOCATION_KEYS):
        return None
    return {key: kept.get(key) for key in LOCATION_KEYS}


def make_occurrence(
    *,
    recurrence: str,
    start: datetime,
    end: datetime | None,
    all_day: bool = False,
    status: str = "scheduled",
    previous_start: datetime | None = None,
    **shared: Any,
) -> dict[str, Any]:
    """One occurrence record, with every key present so clients see one stable shape.

    ``shared`` are :func:`occurrence_template`'s keywords (what all occurrences of the event
    have in common); a series builds its template once and calls
    :func:`occurrence_from_template` per occurrence instead.
    """
    return occurrence_from_template(
        occurrence_template(**shared),
        recurrence=recurrence,
        start=start,
        end=end,
        all_day=all_day,
        status=status,
        previous_start=previous_start,
    )


def occurrence_template(
    *,
    source: str,
    uid: str,
    channel: str,
    title: Mapping[str, str],
    timezone: str,
    description: Mapping[str, str] | None = None,
    description_html: Mapping[str, str] | None = None,
    location: Mapping[str, Any] | None = None,
    attendance_mode: str = "offline",
    online_url: str | None = None,
    categories: Iterable[str] = (),
    keywords: Mapping[str, list[str]] | None = None,
    accessibility: Iterable[str] = (),
    price: Mapping[str, Any] | None = None,
    registration: Iterable[Mapping[str, str]] = (),
    age: Mapping[str, int | None] | None = None,
    image: Mapping[str, Any] | None = None,
    url: str | None = None,
    updated_at: datetime | None = None,
    source_url: str | None = None,
) -> dict[str, Any]:
    """What every occurrence of one event shares, in the record's key order.

    :func:`occurrence_from_template` fills in the per-occurrence keys (id, times, status);
    the occurrences of one series then share the nested values (title, location...), which
    nobody mutates: records are read-only once made.
    """
    location_out = _location(location)
    seen: set[str] = set()
    category_list = [c for c in categories if c and not (c in seen or seen.add(c))]
    return {
        "id": None,
        "event_id": f"{source}:{uid}",
        "source": source,
        "uid": uid,
        "recurrence_id": None,
        "channel": channel,
        "title": _clean_map(title),
        "description": _clean_map(description),
        "description_html": _clean_map(description_html),
        "start": None,
        "end": None,
        "all_day": False,
        "start_date": None,
        "end_date": None,
        "timezone": timezone,
        "status": None,
        "previous_start": None,
        "location": location_out,
        "attendance_mode": attendance_mode,
        "online_url": online_url,
        "categories": category_list,
        "keywords": _clean_map(keywords),
        "accessibility": sorted(set(accessibility), key=ACCESSIBILITY_CODES.index),
        "price": dict(price) if price else {"free": None, "text": {}},
        "registration": [dict(r) for r in registration],
        "age": dict(age) if age and any(v is not None for v in age.values()) else None,
        "image": dict(image) if image else None,
        "url": url,
        "updated_at": rfc3339(updated_at) if updated_at is not None else None,
        "sources": [{"source": source, "uid": uid, "url": source_url or url}],
    }


def occurrence_from_template(
    template: Mapping[str, Any],
    *,
    recurrence: str,
    start: datetime,
    end: datetime | None,
    all_day: bool = False,
    status: str = "scheduled",
    previous_start: datetime | None = None,
) -> dict[str, Any]:
    """One occurrence of the event ``template`` describes (see :func:`occurrence_template`)."""
    if status not in STATUSES:
        raise ValueError(f"unknown event status {status!r}")
    if end is not None and end < start:
        end = start  # a feed's end before its start: keep the event, as a point in time
    record = dict(template)
    record["id"] = f"{template['event_id']}:{recurrence}"
    record["recurrence_id"] = recurrence
    record["start"] = rfc3339(start)
    record["end"] = rfc3339(end) if end is not None else None
    if all_day:
        record["all_day"] = True
        record["start_date"] = start.date().isoformat()
        last = end if end is not None and end > start else start + timedelta(days=1)
        record["end_date"] = last.date().isoformat()
    record["status"] = status
    if previous_start is not None:
        record["previous_start"] = rfc3339(previous_start)
    return record


def richness(record: Mapping[str, Any]) -> int:
    """How much a record says: the merge of duplicates keeps the one that says most."""
    location = record.get("location") or {}
    score = sum(
        1
        for key in ("description", "image", "categories", "registration", "age", "url")
        if record.get(key)
    )
    score += len(record.get("title") or {}) + len(record.get("accessibility") or [])
    score += 2 if location.get("lat") is not None else 0
    score += 1 if location.get("address") else 0
    score += 1 if (record.get("price") or {}).get("free") is not None else 0
    return score

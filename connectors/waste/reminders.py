"""Waste collection reminders: the evening before a collection, one notice per followed set of
zones and collection date, naming every stream collected that day ("Demain : ordures
ménagères, verre").

A point is followed as the set of zones of one source covering it (many councils publish one
zone layer per stream, so a point lies in several): its topic key is
:func:`aggregator.notify.topics.zone_set_topic`, built when the subscription is made. The
notifier asks for reminders of the zone sets someone follows only, at the reminder time of
each evening (and when subscriptions change); the dates come from the same rules as
``/v1/waste/collections``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aggregator.api.messages import MESSAGE_LANGUAGES
from aggregator.notify.notice import MAX_BODY, MAX_TITLE, Notice, TimedNotices, shorten
from aggregator.notify.topics import zone_set_topic

from .schedule import STREAMS, CollectionRule, next_by_stream

#: Stream names as residents say them, by language.
STREAM_NAMES: Mapping[str, Mapping[str, str]] = {
    "household": {"fr": "ordures ménagères", "en": "household waste"},
    "recycling": {"fr": "emballages", "en": "recycling"},
    "paper": {"fr": "papiers", "en": "paper"},
    "glass": {"fr": "verre", "en": "glass"},
    "organic": {"fr": "biodéchets", "en": "food waste"},
    "garden": {"fr": "déchets verts", "en": "garden waste"},
    "bulky": {"fr": "encombrants", "en": "bulky waste"},
    "other": {"fr": "autre collecte", "en": "other collection"},
}
_TOMORROW = {"fr": "Demain : {streams}", "en": "Tomorrow: {streams}"}
_BODY = {
    "fr": "Collecte du {day} : sortez les bacs ce soir.",
    "en": "Collection on {day}: put the bins out tonight.",
}


def reminder_notices(
    source: str,
    data: Mapping[str, Any],
    zone_sets: Sequence[Sequence[str]],
    now: datetime,
    zone: ZoneInfo,
    at: time,
) -> TimedNotices:
    """The reminders due at ``now``: from ``at`` on the evening before a collection until that
    day begins; and when the next evening's reminder time comes."""
    local = now.astimezone(zone)
    today = local.date()
    evening = datetime.combine(today, at, zone)
    if local < evening:
        return TimedNotices([], evening.timestamp())
    tomorrow = today + timedelta(days=1)
    next_at = datetime.combine(tomorrow, at, zone).timestamp()
    shifts = {
        date.fromisoformat(k): date.fromisoformat(v) if v else None
        for k, v in data["holiday_shifts"].items()
    }
    notices = []
    for zone_ids in zone_sets:
        streams = _streams_on(data, zone_ids, tomorrow, shifts)
        if streams:
            notices.append(_notice(source, zone_ids, tomorrow, streams))
    return TimedNotices(notices, next_at)


def _streams_on(
    data: Mapping[str, Any],
    zone_ids: Sequence[str],
    day: date,
    shifts: Mapping[date, date | None],
) -> list[str]:
    found: set[str] = set()
    for zone_id in zone_ids:
        zone = data["zones"].get(zone_id)
        if zone is None:  # the zone left the data since the subscription was made
            continue
        ics = {s: [date.fromisoformat(d) for d in ds] for s, ds in zone["ics_dates"].items()}
        rules = [CollectionRule.model_validate(r) for r in zone["rules"]]
        dates = next_by_stream(rules, ics, day, 1, shifts, 1)
        found.update(stream for stream, days in dates.items() if day in days)
    return sorted(found, key=STREAMS.index)


def _notice(source: str, zone_ids: Sequence[str], day: date, streams: list[str]) -> Notice:
    topic = zone_set_topic(source, zone_ids)
    digest = hashlib.sha256(topic.encode()).hexdigest()[:24]
    texts = {
        language: (
            shorten(
                _TOMORROW[language].format(
                    streams=", ".join(STREAM_NAMES[s][language] for s in streams)
                ),
                MAX_TITLE,
            ),
            shorten(_BODY[language].format(day=day.isoformat()), MAX_BODY),
        )
        for language in MESSAGE_LANGUAGES
    }
    return Notice(
        key=f"waste:{source}:{digest}:{day.isoformat()}",
        kind="waste",
        topics=(topic,),
        collapse=f"waste:{source}:{digest}",
        urgency="normal",
        texts=texts,
        links=(),
        subject=f"{source}:{day.isoformat()}",
        # Whoever starts following these zones this evening is reminded too (once).
        late_subscribers=True,
    )

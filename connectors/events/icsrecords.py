"""One expanded VEVENT as our occurrence record (title, description, place, image...)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import icalendar

from connectors.events.model import (
    local_midnight,
    occurrence_from_template,
    occurrence_template,
    recurrence_stamp,
)
from connectors.events.text import description_pair, looks_like_html, sanitize_html

__all__ = ["Normaliser"]


class Normaliser:
    """Turns one expanded VEVENT into our occurrence record; caches the costly parts."""

    def __init__(
        self, source: str, channel: str, zone: tzinfo, language: str, categories: tuple[str, ...]
    ) -> None:
        self.source, self.channel, self.zone, self.language = source, channel, zone, language
        self.default_categories = categories
        self.zone_name = str(getattr(zone, "key", zone))
        self.floating = 0
        self._descriptions: dict[str, tuple[str, str] | None] = {}
        self._templates: dict[int, tuple[icalendar.Event, dict[str, Any], bool]] = {}
        self.shifts: dict[tuple[str, str], timedelta] = {}

    def _aware(self, value: date | datetime, *, count: bool = False) -> tuple[datetime, bool]:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                # Floating time, or a TZID nobody defines: the configured zone (DESIGN §5).
                self.floating += count
                return value.replace(tzinfo=self.zone), False
            return value.astimezone(self.zone), False
        return local_midnight(value, self.zone), True

    def record(self, event: icalendar.Event) -> dict[str, Any]:
        """The record of one expanded VEVENT (a copy made by ``as_component``)."""
        end_prop = event.get("DTEND")
        return self._occurrence(
            event,
            event["DTSTART"].dt,
            end_prop.dt if end_prop is not None else None,
            event.get("RECURRENCE-ID"),
        )

    def record_occurrence(self, occurrence: Any) -> dict[str, Any]:
        """The record of one recurring-ical-events occurrence, without copying its component.

        ``as_component(False)`` copies the whole source component to set DTSTART, DTEND
        and (for a master's instances) RECURRENCE-ID = DTSTART: exactly what this reads
        from the occurrence itself. Anything unexpected takes the copying path.
        """
        component = getattr(getattr(occurrence, "_adapter", None), "_component", None)
        start, end = getattr(occurrence, "start", None), getattr(occurrence, "end", None)
        if (
            not isinstance(component, icalendar.Event)
            or not isinstance(start, date)
            or not isinstance(end, date)
        ):
            return self.record(occurrence.as_component(False))
        return self._occurrence(component, start, end, component.get("RECURRENCE-ID"))

    def _occurrence(
        self,
        event: icalendar.Event,
        raw_start: date | datetime,
        raw_end: date | datetime | None,
        recurrence: Any,
    ) -> dict[str, Any]:
        start, all_day = self._aware(raw_start, count=True)
        end = self._aware(raw_end)[0] if raw_end is not None else None
        if all_day and (end is None or end <= start):
            end = start + timedelta(days=1)  # no DTEND, or DTEND = DTSTART: one day (RFC 5545)
        template, cancelled = self._series(event)
        original = recurrence.dt if recurrence is not None else raw_start
        if recurrence is not None and recurrence.params.get("RANGE"):
            shift = self.shifts.get((template["uid"], recurrence_stamp(original)))
            if shift is not None:
                original = raw_start - shift
        previous = None
        if original != raw_start:
            previous = self._aware(original)[0]
        status = "cancelled" if cancelled else "rescheduled" if previous is not None else None
        return occurrence_from_template(
            template,
            recurrence=recurrence_stamp(original),
            start=start,
            end=end,
            all_day=all_day,
            status=status or "scheduled",
            previous_start=previous,
        )

    def _series(self, event: icalendar.Event) -> tuple[dict[str, Any], bool]:
        """What every occurrence of one source component shares, normalised once."""
        cached = self._templates.get(id(event))
        if cached is not None and cached[0] is event:
            return cached[1], cached[2]
        uid = str(event["UID"])
        lang = self.language
        title = str(event.get("SUMMARY") or "").strip()
        described = self._describe(event)
        template = occurrence_template(
            source=self.source,
            uid=uid,
            channel=self.channel,
            title={lang: title} if title else {},
            description={lang: described[1]} if described else None,
            description_html={lang: described[0]} if described else None,
            timezone=self.zone_name,
            location=_location(event),
            categories=[*self.default_categories, *_categories(event)],
            url=_text(event.get("URL")),
            image=_image(event),
            updated_at=_updated(event),
        )
        cancelled = str(event.get("STATUS", "")).upper() == "CANCELLED"
        # The component is kept with its entry: its id() cannot be reused meanwhile.
        self._templates[id(event)] = (event, template, cancelled)
        return template, cancelled

    def _describe(self, event: icalendar.Event) -> tuple[str, str] | None:
        alt = event.get("X-ALT-DESC")
        raw = str(alt) if alt is not None and looks_like_html(str(alt)) else None
        if raw is None:
            raw = _text(event.get("DESCRIPTION"))
        if raw is None:
            return None
        if raw not in self._descriptions:
            self._descriptions[raw] = description_pair(raw)
        return self._descriptions[raw]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _location(event: icalendar.Event) -> dict[str, Any] | None:
    name = _text(event.get("LOCATION"))
    lat = lon = None
    geo = event.get("GEO")
    if geo is not None:
        try:
            lat, lon = float(geo.latitude), float(geo.longitude)
        except (AttributeError, TypeError, ValueError):
            lat = lon = None
    if name is None and lat is None:
        return None
    return {"name": sanitize_html(name) if name else None, "lat": lat, "lon": lon}


def _categories(event: icalendar.Event) -> Iterator[str]:
    values = event.get("CATEGORIES")
    if values is None:
        return
    for value in values if isinstance(values, list) else [values]:
        for item in getattr(value, "cats", None) or [value]:
            text = str(item).strip()
            if text:
                yield text


def _image(event: icalendar.Event) -> dict[str, Any] | None:
    for name in ("IMAGE", "ATTACH"):
        values = event.get(name)
        for value in values if isinstance(values, list) else [values]:
            if value is None:
                continue
            fmt = str(value.params.get("FMTTYPE", "")) if hasattr(value, "params") else ""
            text = str(value)
            if text.startswith(("http://", "https://")) and (
                name == "IMAGE" or fmt.startswith("image/")
            ):
                return {"url": text, "thumb_url": None, "credits": None}
    return None


def _updated(event: icalendar.Event) -> datetime | None:
    for name in ("LAST-MODIFIED", "DTSTAMP"):
        value = event.get(name)
        moment = getattr(value, "dt", None)
        if isinstance(moment, datetime):
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None

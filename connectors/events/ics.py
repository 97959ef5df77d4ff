"""``ics``: an iCalendar feed, expanded into occurrences over a bounded window.

icalendar parses (leniently, see :mod:`.icsparse`), x-wr-timezone normalises Google-style
``X-WR-TIMEZONE`` calendars, and recurring-ical-events expands RRULE/RDATE/EXDATE and
RECURRENCE-ID overrides (also ``RANGE=THISANDFUTURE``). The expansion is always bounded:
a window around ``clock.now()`` and caps on events and occurrences, because one real feed
expands to 1.7 M instances (research/events.md, edge case 22)::

    - id: mairie-conseils
      type: ics
      url: https://example.org/conseils.ics
      channel: agenda
      categories: [conseil municipal]
      window_past: 1d
      window_future: 180d
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal

import icalendar
import recurring_ical_events
import x_wr_timezone
from pydantic import Field

from aggregator.config.models import UrlConnectorConfig
from aggregator.config.types import ByteSize, Duration
from aggregator.connector import UrlConnector
from aggregator.model import ParseResult
from connectors.events.api import EventSourceType
from connectors.events.icsparse import load_calendar, stable_uid
from connectors.events.model import (
    local_midnight,
    occurrence_from_template,
    occurrence_template,
    recurrence_stamp,
)
from connectors.events.text import description_pair, looks_like_html, sanitize_html
from connectors.linecap import DEFAULT_MAX_LINE_BYTES

__all__ = ["IcsConfig", "IcsConnector", "expand_calendar"]

#: Problems kept per parse; past this only the count grows.
MAX_ISSUES_KEPT = 50
_DAY = 86400.0
#: Instances a series may step through before the window opens (dateutil walks from DTSTART).
MAX_STEPS_BEFORE_WINDOW = 500_000
# Upper bound of instances per day for each RRULE FREQ, before BYxxx multiplication.
_PER_DAY = {"SECONDLY": 86400.0, "MINUTELY": 1440.0, "HOURLY": 24.0}


class IcsConfig(UrlConnectorConfig):
    """Keys of an ``ics`` source."""

    channel: Literal["events", "agenda"] = "events"
    #: Categories every event of this source gets, before its own CATEGORIES.
    categories: list[str] = Field(default_factory=list)
    #: The language the feed's text is in (ICS rarely says); default: the first served one.
    language: str | None = None
    window_past: Duration = 1 * _DAY
    window_future: Duration = 180 * _DAY
    max_events: int = Field(20_000, ge=1)
    max_occurrences: int = Field(100_000, ge=1)
    #: A longer content line (unfolded) is dropped and reported; the rest of its event is kept.
    max_line_bytes: ByteSize = Field(default=DEFAULT_MAX_LINE_BYTES, ge=1024)


class _Report:
    """Issues of one parse: the first few kept word for word, all of them counted."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.total = 0

    def __call__(self, message: str) -> None:
        self.total += 1
        if len(self.kept) < MAX_ISSUES_KEPT:
            self.kept.append(message)


class IcsConnector(EventSourceType, UrlConnector[IcsConfig]):
    """Occurrences of an iCalendar feed within the configured window."""

    type_name = "ics"
    config_model = IcsConfig

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        now = self.context.clock.now()
        return expand_calendar(
            payload,
            source=config.id,
            channel=config.channel,
            zone=self.context.timezone,
            language=config.language or self.context.languages[0],
            window_start=now - timedelta(seconds=config.window_past),
            window_end=now + timedelta(seconds=config.window_future),
            max_events=config.max_events,
            max_occurrences=config.max_occurrences,
            default_categories=tuple(config.categories),
            max_line_bytes=config.max_line_bytes,
        )


def expand_calendar(
    payload: bytes,
    *,
    source: str,
    channel: str,
    zone: tzinfo,
    language: str,
    window_start: datetime,
    window_end: datetime,
    max_events: int = 20_000,
    max_occurrences: int = 100_000,
    default_categories: tuple[str, ...] = (),
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ParseResult:
    """Occurrence records of a calendar between two instants; pure, bytes in."""
    report = _Report()
    loaded = load_calendar(payload, max_line_bytes)
    for issue in loaded.issues:
        report(issue)
    calendar = loaded.calendar
    if calendar.get("X-WR-TIMEZONE"):
        try:
            calendar = x_wr_timezone.to_standard(calendar)
        except Exception as exc:  # an unknown zone name: keep the times as they are
            report(f"X-WR-TIMEZONE {calendar.get('X-WR-TIMEZONE')!s} ignored: {exc}")
            # recurring_ical_events converts it again, and would fail the same way.
            del calendar["X-WR-TIMEZONE"]
    events_read, events_kept, capped_events = _screen_events(calendar, max_events, zone, report)

    try:
        query = recurring_ical_events.of(calendar, skip_bad_series=True, components=["VEVENT"])
    except Exception:  # one malformed event can sink the whole query: find and drop it
        calendar = _without_broken_events(calendar, report)
        try:
            query = recurring_ical_events.of(calendar, skip_bad_series=True, components=["VEVENT"])
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            raise ValueError(f"the calendar cannot be expanded ({problem})") from exc
    start_utc, end_utc = window_start.astimezone(UTC), window_end.astimezone(UTC)
    densities = _densities(calendar)
    first_starts = _first_starts(calendar, zone)
    records: list[dict[str, Any]] = []
    truncated: list[str] = []
    capped_occurrences = False
    normaliser = _Normaliser(source, channel, zone, language, default_categories)
    normaliser.shifts = _range_shifts(calendar)
    for series in query.series:
        budget = max_occurrences - len(records)
        if budget <= 0:
            capped_occurrences = True
            break
        uid = str(series.uid)
        steps = _steps_before(first_starts.get(uid), start_utc, densities.get(uid, 0.0))
        if steps > MAX_STEPS_BEFORE_WINDOW:
            report(
                f"event {uid!r} skipped: it repeats so often since {first_starts[uid]:%Y-%m-%d} "
                f"that reaching the window means stepping through {steps:.3g} instances"
            )
            continue
        stop = _bounded_stop(start_utc, end_utc, densities.get(uid, 0.0), budget)
        try:
            occurrences = list(itertools.islice(series.between(start_utc, stop), budget + 1))
        except Exception as exc:  # one bad series (bad RRULE, bad dates) never sinks the rest
            report(f"event {uid!r} skipped: cannot expand it ({exc})")
            continue
        if stop < end_utc:
            truncated.append(uid)
            report(
                f"event {uid!r} repeats too densely: expanded only until {stop.isoformat()} "
                f"(max_occurrences {max_occurrences})"
            )
        if len(occurrences) > budget:
            occurrences = occurrences[:budget]
            capped_occurrences = True
        for occurrence in occurrences:
            try:
                records.append(normaliser.record_occurrence(occurrence))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                report(f"an occurrence of {uid!r} skipped: {exc}")
    if capped_occurrences:
        report(f"occurrence cap reached: only the first {max_occurrences} are kept")
    records.sort(key=lambda r: (r["start"], r["id"]))
    records = _unique(records, report)
    return ParseResult(
        data=records,
        record_count=len(records),
        issues=tuple(report.kept),
        issue_total=report.total,
        stats={
            "events": events_read,
            "events_kept": events_kept,
            "series": len(query.series),
            "occurrences": len(records),
            "window": {"from": window_start.isoformat(), "to": window_end.isoformat()},
            "events_cap_hit": capped_events,
            "occurrences_cap_hit": capped_occurrences,
            "truncated_series": len(truncated),
            "floating_or_unknown_zone": normaliser.floating,
            "encoding": loaded.encoding,
            "read_event_by_event": loaded.fallback,
        },
    )


def _screen_events(
    calendar: icalendar.Calendar, max_events: int, zone: tzinfo, report: _Report
) -> tuple[int, int, bool]:
    """Drop events that cannot be expanded (no or broken DTSTART) and those over the cap."""
    keep: list[Any] = []
    events_read = kept = 0
    capped = False
    for component in calendar.subcomponents:
        if component.name != "VEVENT":
            keep.append(component)
            continue
        events_read += 1
        uid = str(component.get("UID") or "")
        if not uid:
            component["UID"] = uid = stable_uid(component)
        for name, message in getattr(component, "errors", ()):
            if name in ("DURATION", "DTEND") and name in component:
                # Left in place, the unreadable value makes the expander drop the event. Without
                # it RFC 5545 §3.6.1 applies: a DATE start lasts one day, a DATE-TIME start ends
                # when it starts.
                del component[name]
                report(f"event {uid!r}: {name} ignored: {message}; it ends as if none were given")
            elif name != "RRULE":
                report(f"event {uid!r}: {name or 'a line'} ignored: {message}")
        _repair_rrule(component, uid, report)
        try:
            start = component.DTSTART
        except (ValueError, TypeError, AttributeError) as exc:
            report(f"event {uid!r} skipped: unreadable DTSTART ({exc})")
            continue
        if start is None:
            report(f"event {uid!r} skipped: no DTSTART")
            continue
        _drop_backward_end(component, start, zone, uid, report)
        if kept >= max_events:
            capped = True
            continue
        kept += 1
        keep.append(component)
    if capped:
        report(f"event cap reached: only the first {max_events} of {events_read} are expanded")
    calendar.subcomponents = keep
    return events_read, kept, capped


def _drop_backward_end(event: Any, start: Any, zone: tzinfo, uid: str, report: _Report) -> None:
    """Drop a DTEND before DTSTART, or a negative DURATION (RFC 5545 §3.8.2.2 forbids both).

    Left in place, the expander widens its search back by the negative length: a rule
    repeating every second with a DTEND a century early walked billions of instances.
    Without it the RFC's default end applies, as for an unreadable one.
    """
    for name in ("DTEND", "DURATION"):
        value = event.get(name)
        if value is None or isinstance(value, list):
            continue  # a repeated property is reported and handled elsewhere
        try:
            backward = (
                value.dt < timedelta(0)
                if name == "DURATION"
                else _instant(value.dt, zone) < _instant(start, zone)
            )
        except (TypeError, ValueError, AttributeError, OverflowError):
            continue
        if backward:
            del event[name]
            report(
                f"event {uid!r}: {name} {value.to_ical().decode(errors='replace')} ends before "
                "DTSTART, ignored; it ends as if none were given"
            )


def _instant(value: date | datetime, zone: tzinfo) -> datetime:
    """A DATE or DATE-TIME (floating ones in ``zone``) as an aware datetime, to compare."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _repair_rrule(event: Any, uid: str, report: _Report) -> None:
    """Read an RRULE with stray spaces (``BYDAY=MO, TU``); drop one that stays unreadable.

    Without its RRULE the event still shows its first occurrence, which beats losing it.
    """
    value = event.get("RRULE")
    if value is None:
        return
    rules = value if isinstance(value, list) else [value]
    if not any(hasattr(rule, "parse_error") for rule in rules):
        return
    fixed = []
    for rule in rules:
        if not hasattr(rule, "parse_error"):
            fixed.append(rule)
            continue
        try:
            fixed.append(icalendar.vRecur.from_ical(re.sub(r"\s+", "", str(rule))))
            report(f"event {uid!r}: RRULE {str(rule)!r} read without its spaces")
        except (ValueError, TypeError) as exc:
            report(f"event {uid!r}: unreadable RRULE ignored, first occurrence only ({exc})")
    del event["RRULE"]
    for rule in fixed:
        event.add("RRULE", rule)


def _drop_nested_events(component: Any, report: Callable[[str], None]) -> None:
    """Remove the VEVENTs found anywhere inside ``component`` (not itself a VEVENT)."""
    nested = [c for c in component.subcomponents if c.name == "VEVENT"]
    if nested:
        report(f"{len(nested)} event(s) inside a {component.name} read on their own")
        component.subcomponents = [c for c in component.subcomponents if c.name != "VEVENT"]
    for child in component.subcomponents:
        _drop_nested_events(child, report)


def _without_broken_events(
    calendar: icalendar.Calendar, report: Callable[[str], None]
) -> icalendar.Calendar:
    """The calendar minus the events (by UID) that recurring-ical-events cannot read."""
    kept = icalendar.Calendar()
    for key, value in calendar.property_items(recursive=False):
        if key not in ("BEGIN", "END"):
            kept.add(key, value)
    others = [c for c in calendar.subcomponents if c.name != "VEVENT"]
    by_uid: dict[str, list[Any]] = {}
    for event in calendar.walk("VEVENT"):
        by_uid.setdefault(str(event.get("UID")), []).append(event)
    # An event inside a VTIMEZONE (a missing END line) is tried with its UID like the others;
    # left in its component, it would break every trial and the calendar kept.
    for component in others:
        _drop_nested_events(component, report)
    for component in others:
        kept.add_component(component)
    for uid, events in by_uid.items():
        trial = icalendar.Calendar()
        for component in [*others, *events]:
            trial.add_component(component)
        try:
            recurring_ical_events.of(trial, skip_bad_series=True, components=["VEVENT"])
        except Exception as exc:
            report(f"event {uid!r} skipped: it cannot be read ({type(exc).__name__}: {exc})")
            continue
        for event in events:
            kept.add_component(event)
    return kept


def _first_starts(calendar: icalendar.Calendar, zone: tzinfo) -> dict[str, datetime]:
    """For each recurring UID, the earliest DTSTART of its master event (UTC)."""
    out: dict[str, datetime] = {}
    for event in calendar.walk("VEVENT"):
        if event.get("RRULE") is None or event.get("RECURRENCE-ID") is not None:
            continue
        try:
            start = event.DTSTART
        except (KeyError, ValueError, TypeError, AttributeError):
            continue
        if start is None:  # no DTSTART at all: not a series anything can start
            continue
        if not isinstance(start, datetime):
            start = datetime.combine(start, datetime.min.time())
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
        uid = str(event.get("UID"))
        start = start.astimezone(UTC)
        out[uid] = min(out.get(uid, start), start)
    return out


def _steps_before(first: datetime | None, window_start: datetime, per_day: float) -> float:
    """How many instances dateutil steps through before the window opens.

    It walks every instance from DTSTART on: a rule repeating every second since 2000 would
    keep a worker busy for hours before yielding anything in the window.
    """
    if first is None or per_day <= 0 or first >= window_start:
        return 0.0
    return per_day * (window_start - first).total_seconds() / _DAY


def _densities(calendar: icalendar.Calendar) -> dict[str, float]:
    """For each recurring UID, an upper bound of its occurrences per day."""
    out: dict[str, float] = {}
    for event in calendar.walk("VEVENT"):
        rules = event.get("RRULE")
        if rules is None:
            continue
        per_day = 0.0
        for rule in rules if isinstance(rules, list) else [rules]:
            try:
                per_day += _rule_per_day(rule)
            except Exception:  # a broken RRULE: recurring-ical-events will skip the series
                continue
        uid = str(event.get("UID"))
        out[uid] = max(out.get(uid, 0.0), per_day)
    return out


def _range_shifts(calendar: icalendar.Calendar) -> dict[tuple[str, str], timedelta]:
    """How far each ``RANGE=THISANDFUTURE`` override moves the occurrences it governs.

    recurring-ical-events gives every occurrence after such an override the override's own
    RECURRENCE-ID; subtracting the shift recovers each occurrence's original start, which
    keeps occurrence ids distinct and stable.
    """
    shifts: dict[tuple[str, str], timedelta] = {}
    for event in calendar.walk("VEVENT"):
        rid = event.get("RECURRENCE-ID")
        if rid is None or str(rid.params.get("RANGE", "")).upper() != "THISANDFUTURE":
            continue
        try:
            shift = event.DTSTART - rid.dt
        except (TypeError, ValueError, AttributeError):
            continue
        shifts[(str(event.get("UID")), recurrence_stamp(rid.dt))] = shift
    return shifts


def _rule_per_day(rule: Any) -> float:
    def count(key: str) -> int:
        return max(1, len(rule.get(key) or ()))

    freq = str((rule.get("FREQ") or ["DAILY"])[0]).upper()
    try:
        interval = max(1, int((rule.get("INTERVAL") or [1])[0]))
    except (TypeError, ValueError):
        interval = 1
    if freq == "SECONDLY":
        return _PER_DAY[freq] / interval
    if freq == "MINUTELY":
        return _PER_DAY[freq] / interval * count("BYSECOND")
    if freq == "HOURLY":
        return _PER_DAY[freq] / interval * count("BYMINUTE") * count("BYSECOND")
    # DAILY and coarser give at most one day per day, times the BYHOUR/MINUTE/SECOND grid.
    per_day = count("BYHOUR") * count("BYMINUTE") * count("BYSECOND")
    return per_day / interval if freq == "DAILY" else float(per_day)


def _bounded_stop(start: datetime, end: datetime, per_day: float, budget: int) -> datetime:
    """Where to stop expanding a series so that it cannot produce more than ``budget``.

    dateutil materialises every instance of the span in a list before recurring-ical-events
    filters them, so a FREQ=SECONDLY rule must be cut before expansion, not after.
    """
    if per_day <= 0:
        return end
    span_days = (budget + 1) / per_day
    if span_days * _DAY >= (end - start).total_seconds():
        return end
    return start + timedelta(days=span_days)


class _Normaliser:
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


def _unique(records: list[dict[str, Any]], report: _Report) -> list[dict[str, Any]]:
    """One record per id: a UID reused by two unrelated events must not give duplicates."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for record in records:
        if record["id"] in seen:
            report(f"duplicate occurrence {record['id']!r}: first one kept")
            continue
        seen.add(record["id"])
        out.append(record)
    return out

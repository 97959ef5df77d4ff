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

This module runs the steps; :mod:`.icsscreen` drops or repairs what the expander cannot take,
:mod:`.icsrecur` bounds each series from its rules, :mod:`.icsrecords` turns an occurrence into
our record.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal

import recurring_ical_events
import x_wr_timezone
from pydantic import Field

from aggregator.config.models import UrlConnectorConfig
from aggregator.config.types import ByteSize, Duration
from aggregator.connector import UrlConnector
from aggregator.model import ParseResult
from connectors.events.api import EventSourceType
from connectors.events.icsparse import load_calendar
from connectors.events.icsrecords import Normaliser
from connectors.events.icsrecur import (
    MAX_STEPS_BEFORE_WINDOW,
    bounded_stop,
    range_shifts,
    series_densities,
    series_first_starts,
    steps_before,
)
from connectors.events.icsscreen import screen_events, without_broken_events
from connectors.linecap import DEFAULT_MAX_LINE_BYTES

__all__ = ["IcsConfig", "IcsConnector", "expand_calendar"]

#: Problems kept per parse; past this only the count grows.
MAX_ISSUES_KEPT = 50
_DAY = 86400.0


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
    events_read, events_kept, capped_events = screen_events(calendar, max_events, zone, report)

    try:
        query = recurring_ical_events.of(calendar, skip_bad_series=True, components=["VEVENT"])
    except Exception:  # one malformed event can sink the whole query: find and drop it
        calendar = without_broken_events(calendar, report)
        try:
            query = recurring_ical_events.of(calendar, skip_bad_series=True, components=["VEVENT"])
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            raise ValueError(f"the calendar cannot be expanded ({problem})") from exc
    start_utc, end_utc = window_start.astimezone(UTC), window_end.astimezone(UTC)
    densities = series_densities(calendar)
    first_starts = series_first_starts(calendar, zone)
    records: list[dict[str, Any]] = []
    truncated: list[str] = []
    capped_occurrences = False
    normaliser = Normaliser(source, channel, zone, language, default_categories)
    normaliser.shifts = range_shifts(calendar)
    for series in query.series:
        budget = max_occurrences - len(records)
        if budget <= 0:
            capped_occurrences = True
            break
        uid = str(series.uid)
        steps = steps_before(first_starts.get(uid), start_utc, densities.get(uid, 0.0))
        if steps > MAX_STEPS_BEFORE_WINDOW:
            report(
                f"event {uid!r} skipped: it repeats so often since {first_starts[uid]:%Y-%m-%d} "
                f"that reaching the window means stepping through {steps:.3g} instances"
            )
            continue
        stop = bounded_stop(start_utc, end_utc, densities.get(uid, 0.0), budget)
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

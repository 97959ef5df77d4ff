"""Bounds of a recurrence expansion, read from the rules before anything is expanded.

dateutil walks every instance from DTSTART and materialises a span before it is filtered,
so a dense rule (FREQ=SECONDLY since 2000) must be cut or skipped from its RRULE alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import icalendar

from connectors.events.model import recurrence_stamp

__all__ = [
    "MAX_STEPS_BEFORE_WINDOW", "bounded_stop", "range_shifts", "series_densities",
    "series_first_starts", "steps_before",
]  # fmt: skip

_DAY = 86400.0
#: Instances a series may step through before the window opens (dateutil walks from DTSTART).
MAX_STEPS_BEFORE_WINDOW = 500_000
# Upper bound of instances per day for each RRULE FREQ, before BYxxx multiplication.
_PER_DAY = {"SECONDLY": 86400.0, "MINUTELY": 1440.0, "HOURLY": 24.0}


def series_first_starts(calendar: icalendar.Calendar, zone: tzinfo) -> dict[str, datetime]:
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


def steps_before(first: datetime | None, window_start: datetime, per_day: float) -> float:
    """How many instances dateutil steps through before the window opens.

    It walks every instance from DTSTART on: a rule repeating every second since 2000 would
    keep a worker busy for hours before yielding anything in the window.
    """
    if first is None or per_day <= 0 or first >= window_start:
        return 0.0
    return per_day * (window_start - first).total_seconds() / _DAY


def series_densities(calendar: icalendar.Calendar) -> dict[str, float]:
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


def range_shifts(calendar: icalendar.Calendar) -> dict[tuple[str, str], timedelta]:
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


def bounded_stop(start: datetime, end: datetime, per_day: float, budget: int) -> datetime:
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

"""Screening a calendar before its expansion: what would make the expander fail or run away.

recurring-ical-events drops an event with an unreadable DTEND, walks backwards for a negative
length, and fails the whole query on one malformed event. Each fix here keeps as much of the
event as RFC 5545 allows and reports what it changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import icalendar
import recurring_ical_events

from connectors.events.icsparse import stable_uid

__all__ = ["screen_events", "without_broken_events"]

Report = Callable[[str], None]


def screen_events(
    calendar: icalendar.Calendar, max_events: int, zone: tzinfo, report: Report
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


def _drop_backward_end(event: Any, start: Any, zone: tzinfo, uid: str, report: Report) -> None:
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


def _repair_rrule(event: Any, uid: str, report: Report) -> None:
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


def _drop_nested_events(component: Any, report: Report) -> None:
    """Remove the VEVENTs found anywhere inside ``component`` (not itself a VEVENT)."""
    nested = [c for c in component.subcomponents if c.name == "VEVENT"]
    if nested:
        report(f"{len(nested)} event(s) inside a {component.name} read on their own")
        component.subcomponents = [c for c in component.subcomponents if c.name != "VEVENT"]
    for child in component.subcomponents:
        _drop_nested_events(child, report)


def without_broken_events(calendar: icalendar.Calendar, report: Report) -> icalendar.Calendar:
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

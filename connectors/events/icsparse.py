"""Reading a real-world calendar file leniently: encodings, broken lines, broken events.

Calendars in the wild come with a BOM, in Latin-1, with stray lines (``X``,
``X-APPLE-RADIUS=…``) or with one event whose date cannot be read. icalendar already keeps
a property it cannot read as a broken value on that event; this module adds the layers
around it: decoding, and, when the calendar as a whole will not parse, reading its events
one by one so that one bad block does not lose the others. A content line longer than
``max_line_bytes`` once unfolded is dropped before parsing (and reported): icalendar pays a
multiple of a line's length to unfold and match it, and no field Beffroi reads is that long.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import icalendar

from connectors.linecap import DEFAULT_MAX_LINE_BYTES, long_lines

__all__ = ["LoadedCalendar", "decode_calendar", "load_calendar"]

_BLOCK = re.compile(
    r"^BEGIN:(VEVENT|VTIMEZONE)\r?$.*?^END:\1\r?$", re.MULTILINE | re.DOTALL | re.IGNORECASE
)
_EVENT_START = re.compile(r"^BEGIN:VEVENT\r?$", re.MULTILINE | re.IGNORECASE)
_CALENDAR_PROPERTY = re.compile(r"^(X-WR-TIMEZONE|X-WR-CALNAME|CALSCALE)[;:].*$", re.MULTILINE)


@dataclass
class LoadedCalendar:
    """A calendar ready for expansion, and what it took to get it."""

    calendar: icalendar.Calendar
    encoding: str
    fallback: bool = False
    issues: list[str] = field(default_factory=list)


def decode_calendar(payload: bytes) -> tuple[str, str]:
    """The text of a calendar and the encoding used; RFC 5545 says UTF-8, Latin-1 happens."""
    if payload.startswith(b"\xff\xfe") or payload.startswith(b"\xfe\xff"):
        return payload.decode("utf-16"), "utf-16"
    try:
        return payload.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Mostly valid UTF-8 with a few damaged bytes stays UTF-8; a Latin-1 file has an
    # invalid sequence at nearly every accented letter. Windows-1252 is a superset of
    # Latin-1 for the printable range French feeds use.
    damaged = payload.decode("utf-8-sig", errors="replace")
    non_ascii = sum(1 for byte in payload if byte >= 0x80)
    if damaged.count("\ufffd") * 4 < non_ascii:
        return damaged, "utf-8 (damaged bytes replaced)"
    return payload.decode("cp1252", errors="replace"), "cp1252"


def load_calendar(payload: bytes, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> LoadedCalendar:
    """Parse a calendar, falling back to one VEVENT at a time if the whole fails.

    Raises ValueError when nothing in the payload looks like a calendar at all.
    """
    text, encoding = decode_calendar(payload)
    issues: list[str] = []
    if encoding != "utf-8":
        issues.append(f"the calendar is not UTF-8; read as {encoding}")
    text = _drop_long_lines(payload, text, encoding, max_line_bytes, issues)
    if "BEGIN:VCALENDAR" not in text[:2000].upper() and "BEGIN:VEVENT" not in text.upper():
        raise ValueError("the body is not an iCalendar file (no BEGIN:VCALENDAR)")
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError... on bad input
        issues.append(
            f"the calendar does not parse as a whole ({_short(exc)}); read event by event"
        )
        calendar, block_issues = _parse_blocks(text)
        return LoadedCalendar(calendar, encoding, fallback=True, issues=issues + block_issues)
    calendar = calendars[0] if calendars else icalendar.Calendar()
    # Some publishers concatenate several VCALENDARs in one file: read them all.
    for extra in calendars[1:]:
        for component in extra.subcomponents:
            calendar.add_component(component)
    _lift_nested_calendars(calendar, issues)
    # An unclosed component (a VALARM without END) swallows every event after it without
    # any error: when events went missing, read the file event by event instead.
    announced = len(_EVENT_START.findall(text))
    parsed = sum(1 for _ in calendar.walk("VEVENT"))
    if parsed < announced:
        recovered, block_issues = _parse_blocks(text)
        if sum(1 for _ in recovered.walk("VEVENT")) > parsed:
            issues.append(
                f"only {parsed} of {announced} events parse as a whole; read event by event"
            )
            return LoadedCalendar(recovered, encoding, fallback=True, issues=issues + block_issues)
    return LoadedCalendar(calendar, encoding, issues=issues)


def _lift_nested_calendars(calendar: icalendar.Calendar, issues: list[str]) -> None:
    """Move the components of VCALENDARs nested in ``calendar`` (some exporters wrap each
    event, or a second calendar, inside the first) up beside the others, and say so.

    Left nested, their events would escape the screening every event goes through (DTSTART
    checks, the event cap, the counts in the status).
    """
    lifted = 0
    while any(c.name == "VCALENDAR" for c in calendar.subcomponents):
        flat: list[Any] = []
        for component in calendar.subcomponents:
            if component.name == "VCALENDAR":
                lifted += sum(1 for c in component.subcomponents if c.name == "VEVENT")
                flat.extend(component.subcomponents)
            else:
                flat.append(component)
        calendar.subcomponents = flat
    if lifted:
        issues.append(f"{lifted} event(s) inside a nested VCALENDAR read with the others")


def _drop_long_lines(payload: bytes, text: str, encoding: str, cap: int, issues: list[str]) -> str:
    """``text`` without its content lines over ``cap`` bytes unfolded, each one reported."""
    raw = text.encode() if encoding == "utf-16" else payload
    too_long = long_lines(raw, cap, folded=True)
    if not too_long:
        return text
    kept, last = [], 0
    for line in too_long:
        kept.append(raw[last : line.start])
        last = line.end
        name = raw[line.start : line.start + 40].split(b":", 1)[0].split(b";", 1)[0]
        issues.append(
            f"line {line.number}: {name.decode('ascii', 'replace')} content line of "
            f"{line.end - line.start} bytes dropped (over max_line_bytes, {cap})"
        )
    kept.append(raw[last:])
    del raw
    joined = b"".join(kept)
    del kept
    return joined.decode() if encoding == "utf-16" else decode_calendar(joined)[0]


def _parse_blocks(text: str) -> tuple[icalendar.Calendar, list[str]]:
    calendar = icalendar.Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", "-//beffroi//recovered//EN")
    issues: list[str] = []
    header = text.split("BEGIN:VEVENT", 1)[0]
    for match in _CALENDAR_PROPERTY.finditer(header):
        name, _, value = match.group(0).rstrip("\r").partition(":")
        calendar.add(name.split(";", 1)[0], value)
    for number, match in enumerate(_BLOCK.finditer(text), start=1):
        block = match.group(0)
        wrapped = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{block}\r\nEND:VCALENDAR\r\n"
        try:
            parsed = icalendar.Calendar.from_ical(wrapped)
        except Exception as exc:  # the same broad family as above, for one block
            issues.append(f"{match.group(1).upper()} #{number} skipped: {_short(exc)}")
            continue
        for component in parsed.subcomponents:
            calendar.add_component(component)
    return calendar, issues


def stable_uid(event: icalendar.Event) -> str:
    """A UID for an event that has none, stable across polls (derived from its content)."""
    basis = "|".join(
        str(event.get(name, "")) for name in ("SUMMARY", "DTSTART", "LOCATION", "DESCRIPTION")
    )
    return "nouid-" + hashlib.sha256(basis.encode()).hexdigest()[:16]


def _short(exc: BaseException) -> str:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return message[:160]

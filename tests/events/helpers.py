"""Shared bits of the events tests: where the real calendars are, and a parse shortcut."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.clock import Clock
from aggregator.connector import ConnectorContext
from aggregator.model import ParseResult
from aggregator.redact import Redactor
from connectors.events.ics import expand_calendar

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
ICS = SHARED / "ics"
EVENTS = SHARED / "events"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
PARIS = ZoneInfo("Europe/Paris")


def shared_file(relative: str, base: Path = ICS) -> Path:
    """A real-world file from ../shared/data, or a skip saying why it is missing."""
    path = base / relative
    if not path.exists():
        pytest.skip(f"real-world fixture {path} is absent (../shared/data not checked out)")
    return path


def context(now: str = "2026-01-01T00:00:00+01:00") -> ConnectorContext:
    """A connector context whose clock is pinned, so expansion windows are reproducible."""
    return ConnectorContext(
        timezone=PARIS,
        languages=("fr", "en"),
        base_dir=None,
        allow_file_urls=True,
        redactor=Redactor(),
        clock=Clock(fixed=datetime.fromisoformat(now)),
    )


def expand(
    payload: bytes | Path,
    start: str = "1990-01-01T00:00:00+00:00",
    end: str = "2040-01-01T00:00:00+00:00",
    **kwargs: object,
) -> ParseResult:
    """The ics connector's pure step on a calendar, over a wide window by default."""
    body = payload.read_bytes() if isinstance(payload, Path) else payload
    return expand_calendar(
        body,
        source="cal",
        channel="events",
        zone=PARIS,
        language="fr",
        window_start=datetime.fromisoformat(start),
        window_end=datetime.fromisoformat(end),
        **kwargs,  # type: ignore[arg-type]
    )


def calendar(*events: str, header: str = "") -> bytes:
    """A hand-made VCALENDAR around VEVENT bodies (lines joined with CRLF)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//beffroi tests//EN"]
    lines += [line for line in header.strip().splitlines() if line.strip()]
    for event in events:
        lines += ["BEGIN:VEVENT", *[x.strip() for x in event.strip().splitlines()], "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def by_title(result: ParseResult, title: str) -> list[dict]:
    """The occurrences whose French title is ``title``."""
    return [r for r in result.data if r["title"].get("fr") == title]

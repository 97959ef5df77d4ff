"""Collection schedules: the stream vocabulary, weekly rules, and the dates they give.

Most French councils publish a zone's collections as "household waste Tuesday and Friday,
recycling every other Wednesday", with a list of bank-holiday shifts each year; others publish
an ICS per zone (expanded by the events calendar engine, see ``connector.py``). A rule is:

* ``stream`` — one of :data:`STREAMS`;
* ``weekdays`` — ``mo`` ... ``su``;
* ``every_weeks`` — 1 (weekly) or 2 (every other week, counted from ``reference_date``, a
  date on which that collection happens);
* the source's ``holiday_shifts`` move or cancel single dates (``2025-12-25: 2025-12-27``,
  ``2026-01-01: null``).

Dates are computed when asked, from the deployment's local "today": nothing to refresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

#: The streams a collection may be for (a documented, fixed vocabulary).
STREAMS = (
    "household",  # ordures ménagères résiduelles
    "recycling",  # emballages / tri sélectif
    "paper",  # papiers, cartons
    "glass",  # verre
    "organic",  # biodéchets
    "garden",  # déchets verts
    "bulky",  # encombrants
    "other",
)
Stream = Literal["household", "recycling", "paper", "glass", "organic", "garden", "bulky", "other"]
WEEKDAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
Weekday = Literal["mo", "tu", "we", "th", "fr", "sa", "su"]


class CollectionRule(BaseModel):
    """One stream's weekly pattern in one zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: Stream
    weekdays: tuple[Weekday, ...]
    every_weeks: Literal[1, 2] = 1
    reference_date: date | None = None

    @model_validator(mode="after")
    def _reference_for_fortnightly(self) -> CollectionRule:
        if not self.weekdays:
            raise ValueError("weekdays: at least one day is needed")
        if self.every_weeks == 2 and self.reference_date is None:
            raise ValueError("every_weeks 2 needs a reference_date (a date it is collected)")
        return self


def rule_dates(
    rule: CollectionRule,
    start: date,
    days: int,
    shifts: Mapping[date, date | None],
) -> list[date]:
    """The dates of ``rule`` in ``[start, start + days)``, after holiday shifts."""
    wanted = {WEEKDAYS.index(day) for day in rule.weekdays}
    # Look a week further back and on, so a date shifted into (or out of) the range counts.
    out: set[date] = set()
    for offset in range(-7, days + 7):
        day = start + timedelta(days=offset)
        if day.weekday() not in wanted:
            continue
        if rule.every_weeks == 2 and rule.reference_date is not None:
            weeks = (_monday(day) - _monday(rule.reference_date)).days // 7
            if weeks % 2:
                continue
        moved = shifts.get(day, day) if day in shifts else day
        if moved is not None and start <= moved < start + timedelta(days=days):
            out.add(moved)
    return sorted(out)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def next_by_stream(
    rules: Iterable[CollectionRule],
    ics_dates: Mapping[str, Iterable[date]],
    start: date,
    days: int,
    shifts: Mapping[date, date | None],
    per_stream: int,
) -> dict[str, list[date]]:
    """The next ``per_stream`` dates of every stream a zone has, from ``start`` on."""
    found: dict[str, set[date]] = {}
    for rule in rules:
        found.setdefault(rule.stream, set()).update(rule_dates(rule, start, days, shifts))
    end = start + timedelta(days=days)
    for stream, dates in ics_dates.items():
        found.setdefault(stream, set()).update(d for d in dates if start <= d < end)
    return {stream: sorted(dates)[:per_stream] for stream, dates in found.items()}

"""Opening hours in the OpenStreetMap ``opening_hours`` syntax, evaluated by a library.

``opening-hours-py`` (the Rust ``opening-hours`` crate) parses and evaluates the values;
nothing here reads the syntax. Public holidays come from two maintained calendars: the
library's own national calendar, which its ``PH`` rules use, and the ``holidays`` package,
which names the days in the week view and knows regional days (Alsace-Moselle's Good Friday
and 26 December: ``holidays: {country: FR, subdivision: "57"}``).

The library takes a country, not a list of days, so a regional day the national calendar
lacks cannot be fed to its ``PH`` rules. On such a day a value that has ``PH`` rules is
answered ``unknown`` rather than guessed (see :meth:`HoursCalendar.uncertain`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import holidays as holiday_calendars
from opening_hours import OpeningHours, ParserError, State

HoursState = Literal["open", "closed", "unknown"]
_STATES: dict[State, HoursState] = {
    State.OPEN: "open",
    State.CLOSED: "closed",
    State.UNKNOWN: "unknown",
}
#: A value longer than this is refused before parsing (a byte budget on outside input).
MAX_VALUE_CHARS = 1000
#: A change further than this is "never" (the library's own cut-off; keeps evaluation fast).
HORIZON_DAYS = 366
#: The parse cache is emptied past this many characters of distinct values: it is keyed by
#: the publishers' text, and refreshes over months would otherwise only add to it.
MAX_CACHED_CHARS = 8_000_000
#: Comment-only changes walked over before "no change in sight" (each is a distinct rule).
MAX_COMMENT_STEPS = 32
_SUN_WORDS = ("sunrise", "sunset", "dawn", "dusk")


@dataclass(frozen=True, slots=True)
class Hours:
    """One place's value: parsed (``rules`` set) or kept as text with the parser's reason."""

    raw: str
    rules: OpeningHours | None
    error: str | None
    uses_holidays: bool

    @property
    def parsed(self) -> bool:
        return self.rules is not None


class HoursCalendar:
    """Parses values for places of one source, in its time zone and holiday calendar."""

    def __init__(self, zone: ZoneInfo, country: str = "FR", subdivision: str | None = None):
        self.zone = zone
        self.country = country
        self.subdivision = subdivision
        # Raises NotImplementedError / ValueError on an unknown country or subdivision: the
        # config check turns that into an error naming the key.
        self._regional = holiday_calendars.country_holidays(country, subdiv=subdivision)
        self._national = holiday_calendars.country_holidays(country)
        self._named: dict[str, holiday_calendars.HolidayBase] = {}
        self._parsed: dict[tuple[str, float, float], Hours] = {}
        self._cached_chars = 0

    def parse(self, raw: str, lat: float, lon: float) -> Hours:
        """The value, parsed once per distinct text (and place, for sun-based times)."""
        text = raw.strip()
        sun = any(word in text.lower() for word in _SUN_WORDS)
        # Sunrise and sunset depend on the place; a city's few such values are parsed each.
        key = (text, round(lat, 3), round(lon, 3)) if sun else (text, 0.0, 0.0)
        hours = self._parsed.get(key)
        if hours is None:
            hours = self._parse(text, (lat, lon) if sun else None)
            if self._cached_chars + len(hours.raw) > MAX_CACHED_CHARS:
                self._parsed.clear()
                self._cached_chars = 0
            self._parsed[key] = hours
            self._cached_chars += len(hours.raw)
        return hours

    def _parse(self, text: str, coords: tuple[float, float] | None) -> Hours:
        uses_holidays = "PH" in text
        if len(text) > MAX_VALUE_CHARS:
            return Hours(text[:MAX_VALUE_CHARS], None, "longer than 1000 characters", False)
        try:
            rules = OpeningHours(
                text,
                timezone=self.zone,
                country=self.country,
                coords=coords,
                auto_country=False,
                auto_timezone=False,
                max_interval_days=HORIZON_DAYS,
            )
        except (ParserError, SyntaxError, ValueError) as exc:
            # The parser's message spans lines with a caret; its first line says what failed.
            reason = str(exc).strip().splitlines()
            detail = next((line.strip() for line in reason if line.strip().startswith("=")), "")
            return Hours(
                text, None, detail.lstrip("= ") or "not in the opening_hours syntax", False
            )
        return Hours(text, rules, None, uses_holidays)

    def holiday(self, day: date, language: str = "en") -> str | None:
        """The public holiday's name on ``day`` (regional days included), or None; the name
        in ``language`` when the calendar has it (``fr``, ``en``), else in its own."""
        if day not in self._regional:
            return None
        named = self._named.get(language)
        if named is None:
            wanted = "en_US" if language == "en" else language
            known = self._regional.supported_languages
            named = holiday_calendars.country_holidays(
                self.country,
                subdiv=self.subdivision,
                language=wanted if wanted in known else None,
            )
            self._named[language] = named
        return named.get(day)

    def uncertain(self, hours: Hours, day: date) -> bool:
        """A regional holiday the library's national calendar lacks, for a value with PH rules."""
        return hours.uses_holidays and day in self._regional and day not in self._national

    # -- evaluation --------------------------------------------------------------------

    def state(self, hours: Hours, at: datetime) -> HoursState:
        if hours.rules is None:
            return "unknown"
        local = at.astimezone(self.zone)
        if self.uncertain(hours, local.date()):
            return "unknown"
        return _STATES[hours.rules.state(local)[0]]

    def next_change(self, hours: Hours, at: datetime) -> tuple[datetime, HoursState] | None:
        """When the state changes next and to what; None when it never does (24/7, closed)."""
        if hours.rules is None:
            return None
        local = at.astimezone(self.zone)
        before = self.state(hours, local)
        change: datetime | None = local
        # The library also reports a change of comment alone ("closed" → closed "works"); a
        # client asks when the place opens or closes, so those steps are walked over.
        for _ in range(MAX_COMMENT_STEPS):
            change = hours.rules.next_change(change)
            if change is None:
                return None
            change = change.astimezone(self.zone)
            after = self.state(hours, change)
            if after != before:
                return change, after
        return None

    def week(
        self, hours: Hours, at: datetime, days: int = 7, language: str = "en"
    ) -> list[dict[str, Any]]:
        """The coming ``days`` local days: the holiday if any, and the open (or unknown)
        intervals in local time, each clipped to its day."""
        if hours.rules is None:
            return []
        first = at.astimezone(self.zone).date()
        out = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            start = datetime.combine(day, time(), self.zone)
            end = datetime.combine(day + timedelta(days=1), time(), self.zone)
            intervals: list[dict[str, Any]] = []
            if self.uncertain(hours, day):
                intervals.append(_interval(start, end, "unknown", ""))
            else:
                for begin, finish, state, comment in hours.rules.intervals(start, end):
                    if state == State.CLOSED:
                        continue
                    intervals.append(
                        _interval(begin, finish or end, _STATES[state], comment, self.zone)
                    )
            holiday = self.holiday(day, language)
            out.append({"date": day.isoformat(), "holiday": holiday, "intervals": intervals})
        return out


def _interval(
    begin: datetime,
    finish: datetime,
    state: HoursState,
    comment: str,
    zone: ZoneInfo | None = None,
) -> dict[str, Any]:
    if zone is not None:
        begin, finish = begin.astimezone(zone), finish.astimezone(zone)
    return {
        "start": begin.isoformat(),
        "end": finish.isoformat(),
        "state": state,
        "comment": comment or None,
    }

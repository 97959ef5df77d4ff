"""Opening hours evaluated in the place's zone, with the public holiday calendars."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from connectors.places.hours import HoursCalendar

PARIS = ZoneInfo("Europe/Paris")
LILLE = (50.6311, 3.0580)


def test_the_evaluators_french_holidays_are_the_holidays_packages():
    """PH rules (the evaluator's own national calendar) fall on exactly the days the
    holidays package names for France, 2024 to 2030: the week view and the rules agree."""
    calendar = HoursCalendar(PARIS, "FR")
    hours = calendar.parse("24/7; PH off", *LILLE)
    national = holidays.country_holidays("FR", years=range(2024, 2031))
    day = date(2024, 1, 1)
    while day < date(2031, 1, 1):
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)
        assert (calendar.state(hours, noon) == "closed") == (day in national), day
        day += timedelta(days=1)


def test_alsace_moselle_days_are_named_and_never_guessed():
    """With subdivision 57, Good Friday is a holiday of the week view; the evaluator only
    knows the national calendar, so a value with PH rules is unknown that day (not open as
    the national calendar would say), and a value without PH rules is evaluated as usual."""
    calendar = HoursCalendar(PARIS, "FR", "57")
    good_friday = datetime(2025, 4, 18, 10, tzinfo=PARIS)
    with_ph = calendar.parse("Mo-Sa 09:00-18:00; PH off", *LILLE)
    without = calendar.parse("Mo-Sa 09:00-18:00", *LILLE)
    assert calendar.state(with_ph, good_friday) == "unknown"
    assert calendar.state(without, good_friday) == "open"
    week = calendar.week(with_ph, good_friday, language="fr")
    assert week[0]["holiday"] == "Vendredi saint"
    assert [i["state"] for i in week[0]["intervals"]] == ["unknown"]
    national = HoursCalendar(PARIS, "FR")
    assert national.state(national.parse("Mo-Sa 09:00-18:00; PH off", *LILLE), good_friday) == (
        "open"
    )
    assert national.holiday(good_friday.date()) is None


def test_the_evaluator_takes_a_country_only_which_is_why_regional_days_are_unknown():
    """Why the test above answers unknown: opening-hours-py builds its PH calendar from an
    ISO 3166-1 country code alone (a subdivision code is refused, and no keyword takes a
    subdivision or a list of days), so the holidays package's Alsace-Moselle days cannot
    reach its PH rules. If a release takes them, this fails: feed it HoursCalendar's
    regional calendar instead."""
    import inspect

    import opening_hours

    for code in ("FR-57", "FR-MOS", "FR-67"):
        with pytest.raises(opening_hours.UnknownCountryError):
            opening_hours.OpeningHours("PH off", country=code, auto_country=False)
    # Only a keyword about regions or holidays matters here, not any new one.
    accepted = inspect.signature(opening_hours.OpeningHours).parameters
    assert [p for p in accepted if any(w in p for w in ("subdiv", "region", "holiday"))] == []


def test_dst_night_and_midnight_in_local_time():
    """A bar open across midnight on the night clocks go forward: it closes at 04:00 local
    (CEST, +02:00), and Sunday's interval starts at midnight CET (+01:00): three real hours,
    each end with its own offset."""
    calendar = HoursCalendar(PARIS, "FR")
    hours = calendar.parse("Fr-Sa 20:00-04:00", *LILLE)
    saturday_night = datetime(2025, 3, 29, 23, 0, tzinfo=PARIS)
    assert calendar.state(hours, saturday_night) == "open"
    change, state = calendar.next_change(hours, saturday_night)
    assert state == "closed" and change.isoformat() == "2025-03-30T04:00:00+02:00"
    sunday = calendar.week(hours, datetime(2025, 3, 30, 12, tzinfo=PARIS), days=1)[0]
    assert sunday["intervals"] == [
        {
            "start": "2025-03-30T00:00:00+01:00",
            "end": "2025-03-30T04:00:00+02:00",
            "state": "open",
            "comment": None,
        }
    ]


def test_an_unparseable_or_oversized_value_is_kept_as_text():
    calendar = HoursCalendar(PARIS, "FR")
    slashed = calendar.parse("Mo-Sa 09:00-12:30 / 13:45-19:15", *LILLE)
    assert not slashed.parsed and slashed.error
    assert calendar.state(slashed, datetime(2025, 3, 11, 10, tzinfo=PARIS)) == "unknown"
    assert calendar.next_change(slashed, datetime(2025, 3, 11, 10, tzinfo=PARIS)) is None
    huge = calendar.parse("Mo-Fr 09:00-18:00; " * 200, *LILLE)
    assert not huge.parsed and "1000" in huge.error and len(huge.raw) == 1000


def test_the_parse_cache_has_a_budget(monkeypatch):
    """Keyed by the publishers' text, the cache is emptied past its character budget
    instead of growing with every new value a refresh brings."""
    from connectors.places import hours as module

    monkeypatch.setattr(module, "MAX_CACHED_CHARS", 100)
    calendar = HoursCalendar(PARIS, "FR")
    for minute in range(20):
        calendar.parse(f"Mo-Fr 09:{minute:02d}-18:00", *LILLE)
    assert calendar._cached_chars <= 100
    assert len(calendar._parsed) < 20
    again = calendar.parse("Mo-Fr 09:19-18:00", *LILLE)
    assert again.parsed

"""A calendar event whose end comes before its start, on a rule that repeats every second.

Found by the line fuzzer (tests/fuzz/test_parser_props.py): ``DTSTART;VALUE=DATE:20260201``,
``DTEND:19000101T000000Z`` and ``RRULE:FREQ=SECONDLY``. The expander widened its search back by
the negative length (126 years of seconds) and a poll never ended, memory growing by gigabytes.
RFC 5545 forbids an end before the start: the end is ignored, with an issue, and the event
keeps its RFC default length (bounded by the occurrence cap like any dense rule).
"""

from __future__ import annotations

import pytest
from events.helpers import expand

CALENDAR = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//hostile//EN\r
BEGIN:VEVENT\r
UID:day@hostile\r
DTEND:19000101T000000Z\r
DTSTART;VALUE=DATE:20260201\r
RRULE:FREQ=SECONDLY\r
SUMMARY:Journée\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:meeting@hostile\r
DTSTART:20260203T100000Z\r
DURATION:-P3650D\r
RRULE:FREQ=MINUTELY\r
SUMMARY:Réunion\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:plain@hostile\r
DTSTART:20260204T100000Z\r
DTEND:20260204T110000Z\r
SUMMARY:Conseil\r
END:VEVENT\r
END:VCALENDAR\r
"""


# A guard against an unbounded expansion, not a timing: the bounded one took 30 s on a
# loaded 2-core machine, too close to the 60 s this was.
@pytest.mark.timeout(300)
def test_an_end_before_the_start_is_ignored_and_the_expansion_stays_bounded():
    result = expand(
        CALENDAR.encode(), start="2026-02-01T00:00:00+01:00", end="2026-02-08T00:00:00+01:00"
    )
    issues = "\n".join(result.issues)
    assert "event 'day@hostile': DTEND 19000101T000000Z ends before DTSTART, ignored" in issues
    assert "event 'meeting@hostile': DURATION -P3650D ends before DTSTART, ignored" in issues
    titles = {r["title"]["fr"] for r in result.data}
    assert titles == {"Journée", "Réunion", "Conseil"}
    # The dense rules are cut by the occurrence cap, as any rule that dense is.
    assert result.record_count <= 100_001
    plain = next(r for r in result.data if r["title"]["fr"] == "Conseil")
    assert (plain["start"], plain["end"]) == (
        "2026-02-04T11:00:00+01:00",
        "2026-02-04T12:00:00+01:00",
    )

"""Our evaluation of opening_hours values next to opening_hours.js's, value by value.

Shared by the reference test and by anyone who wants the agreement figure on other values
(``python -m tests.places.reference_compare``, from the repository root, Node needed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.places.hours import HoursCalendar

REFERENCE = Path(__file__).parent / "reference"
VALUES = Path(__file__).parents[1] / "fixtures" / "places" / "osm-opening-hours-values.json"
ZONE = ZoneInfo("Europe/Paris")
#: Lille's town hall: where the places are evaluated (sun times, country).
LAT, LON = 50.6311, 3.0580
#: A weekday morning and evening, a Sunday, two French public holidays, both sides of
#: midnight, and the nights before both DST changes of 2025 (Europe/Paris).
INSTANTS = tuple(
    datetime.fromisoformat(text).replace(tzinfo=ZONE)
    for text in (
        "2025-03-11T10:30",  # Tuesday
        "2025-03-12T19:10",  # Wednesday evening, near closing time
        "2025-03-16T11:00",  # Sunday
        "2025-07-14T10:00",  # Monday, Fête nationale
        "2025-11-11T15:00",  # Tuesday, Armistice
        "2025-03-14T23:30",  # Friday night, before midnight
        "2025-03-15T00:30",  # after midnight
        "2025-03-29T23:00",  # the night clocks go forward (30 March, 02:00 → 03:00)
        "2025-03-30T03:30",  # just after the change
        "2025-10-25T22:00",  # the night clocks go back (26 October, 03:00 → 02:00)
    )
)


def node_skip_reason() -> str | None:
    """Why the reference cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed: opening_hours.js (the reference) cannot run"
    if not (REFERENCE / "node_modules" / "opening_hours").is_dir():
        return "opening_hours.js is not installed: run `npm ci` in tests/places/reference"
    return None


def reference(values: list[str]) -> dict[str, dict]:
    """opening_hours.js's answers per value (run with TZ set: it reads dates locally)."""
    request = {
        "lat": LAT,
        "lon": LON,
        "country_code": "fr",
        "cases": [{"value": v, "instants": [i.isoformat() for i in INSTANTS]} for v in values],
    }
    done = subprocess.run(
        ["node", str(REFERENCE / "evaluate.js")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": ZONE.key},
        timeout=120,
    )
    return {case["value"]: case for case in json.loads(done.stdout)}


@dataclass(frozen=True)
class Disagreement:
    value: str
    at: str
    ours: object
    theirs: object


def _their_state(open_: bool, unknown: bool) -> str:
    return "unknown" if unknown else ("open" if open_ else "closed")


def compare(values: list[str]) -> tuple[int, int, list[Disagreement]]:
    """(comparisons, agreements, disagreements) over ``values`` × :data:`INSTANTS`."""
    calendar = HoursCalendar(ZONE, "FR")
    theirs_all = reference(values)
    total = agreed = 0
    disagreements = []
    for value in values:
        hours = calendar.parse(value, LAT, LON)
        theirs = theirs_all[value]
        if theirs["error"] or not hours.parsed:
            total += 1
            if bool(theirs["error"]) == (not hours.parsed):
                agreed += 1
            else:
                disagreements.append(Disagreement(value, "parse", hours.error, theirs["error"]))
            continue
        for at, result in zip(INSTANTS, theirs["results"], strict=True):
            total += 1
            state = calendar.state(hours, at)
            change = calendar.next_change(hours, at)
            ours = (
                state,
                None if change is None else (change[0].timestamp(), change[1]),
            )
            their_change = None
            if result["next_change"] is not None:
                when = datetime.fromisoformat(result["next_change"].replace("Z", "+00:00"))
                their_change = (
                    when.timestamp(),
                    _their_state(result["next_open"], result["next_unknown"]),
                )
            expected = (_their_state(result["open"], result["unknown"]), their_change)
            if ours == expected:
                agreed += 1
            else:
                disagreements.append(Disagreement(value, at.isoformat(), ours, expected))
    return total, agreed, disagreements


def fixture_values() -> list[str]:
    return json.loads(VALUES.read_text())["values"]


if __name__ == "__main__":
    total, agreed, wrong = compare(fixture_values())
    print(f"{agreed}/{total} agree ({100 * agreed / total:.1f} %)")
    for d in wrong:
        print(d)

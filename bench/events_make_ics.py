"""A deterministic, municipal-style iCalendar file for the events benchmarks.

5,000 VEVENTs by default, a third of them recurring (weekly, monthly and daily rules ended by
COUNT or UNTIL, some EXDATEs, some RECURRENCE-ID overrides), times in Europe/Paris with its
VTIMEZONE, French summaries, descriptions and places, categories, some all-day events. Over
the year 2026 it expands to roughly 39,000 occurrences (the figure of issue 5).

    .venv/bin/python bench/events_make_ics.py --events 5000 --out /tmp/beffroi-events-5000.ics
"""

from __future__ import annotations

import argparse
import random
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

__all__ = ["WINDOW_END", "WINDOW_START", "default_path", "ensure_calendar", "make_calendar"]

#: The expansion window every benchmark uses: the calendar year 2026, Paris time.
WINDOW_START = "2026-01-01T00:00:00+01:00"
WINDOW_END = "2027-01-01T00:00:00+01:00"

_FIRST_DAY = date(2025, 11, 1)  # series may start before the window and run into it
_SPAN_DAYS = 425  # ... and singles run from 2025-11-01 to 2026-12-30

VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Paris
X-LIC-LOCATION:Europe/Paris
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""

KINDS = [
    ("Conseil municipal", "conseil municipal", "Séance publique du conseil municipal."),
    ("Conseil de quartier", "démocratie locale", "Réunion ouverte aux habitants du quartier."),
    ("Concert", "musique", "Concert gratuit, dans la limite des places disponibles."),
    ("Exposition", "exposition", "Vernissage et visite commentée de l'exposition."),
    ("Atelier numérique", "atelier", "Initiation à l'informatique, sur inscription."),
    ("Heure du conte", "jeunesse", "Lecture d'albums pour les enfants de 3 à 6 ans."),
    ("Marché de producteurs", "marché", "Fruits, légumes et produits locaux de saison."),
    ("Braderie", "brocante", "Vide-greniers des habitants, emplacements réservés."),
    ("Permanence juridique", "service public", "Conseils gratuits d'un avocat, sans rendez-vous."),
    ("Collecte des encombrants", "propreté", "Sortez vos encombrants la veille au soir."),
    ("Séance de cinéma", "cinéma", "Projection en plein air, apportez votre chaise."),
    ("Visite guidée", "patrimoine", "Découverte du patrimoine avec un guide-conférencier."),
    ("Spectacle de danse", "danse", "Spectacle de la compagnie en résidence."),
    ("Tournoi de football", "sport", "Tournoi inter-quartiers, inscriptions des équipes."),
    ("Club de lecture", "lecture", "Échanges autour des coups de cœur des lecteurs."),
    ("Fête de quartier", "fête", "Animations, jeux et repas partagé entre voisins."),
    ("Réunion publique", "urbanisme", "Présentation du projet d'aménagement et débat."),
    ("Don du sang", "santé", "Collecte de l'Établissement français du sang."),
]
THEMES = [
    "jazz",
    "baroque",
    "d'automne",
    "de printemps",
    "des enfants",
    "du patrimoine",
    "de la bière",
    "des seniors",
    "photographie",
    "street art",
    "zéro déchet",
    "du vélo",
    "des sciences",
    "en famille",
    "des jardins",
    "solidaire",
]
PLACES = [
    ("Hôtel de Ville", 50.6311, 3.0707),
    ("Médiathèque Jean Lévy", 50.6333, 3.0590),
    ("Maison Folie Wazemmes", 50.6255, 3.0497),
    ("Gare Saint-Sauveur", 50.6297, 3.0722),
    ("Salle du Gymnase", 50.6339, 3.0530),
    ("Parc de la Citadelle", 50.6412, 3.0443),
    ("Place du Théâtre", 50.6376, 3.0658),
    ("Mairie de quartier de Fives", 50.6313, 3.0905),
    ("Centre social Moulins", 50.6185, 3.0752),
    ("Palais des Beaux-Arts", 50.6306, 3.0626),
    ("Stade Pierre-Mauroy", 50.6119, 3.1305),
    ("Jardin des Plantes", 50.6197, 3.0540),
]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def default_path(events: int, seed: int) -> Path:
    return Path(tempfile.gettempdir()) / f"beffroi-bench-events-{events}-{seed}.ics"


def _fold(line: str) -> str:
    """RFC 5545 line folding at 75 octets."""
    data = line.encode()
    if len(data) <= 75:
        return line
    parts, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += encoded
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _event(
    rng: random.Random, number: int, start: datetime, *, all_day: bool, rule: str | None
) -> tuple[list[str], str]:
    title, category, blurb = rng.choice(KINDS)
    theme = rng.choice(THEMES)
    place, lat, lon = rng.choice(PLACES)
    lat += rng.uniform(-0.004, 0.004)
    lon += rng.uniform(-0.006, 0.006)
    uid = f"evt-{number:05d}@ville-exemple.fr"
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20251115T090000Z",
        f"LAST-MODIFIED:{_FIRST_DAY - timedelta(days=rng.randint(1, 60)):%Y%m%d}T120000Z",
    ]
    if all_day:
        days = rng.choice([1, 1, 1, 2, 3])
        lines.append(f"DTSTART;VALUE=DATE:{start:%Y%m%d}")
        lines.append(f"DTEND;VALUE=DATE:{start + timedelta(days=days):%Y%m%d}")
    else:
        end = start + timedelta(minutes=rng.choice([45, 60, 90, 120, 180]))
        lines.append(f"DTSTART;TZID=Europe/Paris:{_local(start)}")
        lines.append(f"DTEND;TZID=Europe/Paris:{_local(end)}")
    if rule:
        lines.append(f"RRULE:{rule}")
    lines += [
        f"SUMMARY:{_escape(f'{title} {theme}')}",
        f"DESCRIPTION:{_escape(f'{blurb} Lieu : {place}. Renseignements au 03 20 00 00 00.')}",
        f"LOCATION:{_escape(f'{place}, Lille')}",
        f"GEO:{lat:.5f};{lon:.5f}",
        f"CATEGORIES:{_escape(category)},{'gratuit' if rng.random() < 0.6 else 'payant'}",
        f"URL:https://www.ville-exemple.fr/agenda/{number}",
        "STATUS:CONFIRMED",
        "END:VEVENT",
    ]
    return lines, uid


def make_calendar(events: int = 5000, seed: int = 26) -> str:
    """The calendar text; the same for the same arguments."""
    rng = random.Random(seed)
    masters = events // 3
    overrides_wanted = max(1, masters // 20)
    singles = events - masters - overrides_wanted
    out = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Ville exemple//Agenda municipal//FR",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Agenda de la ville",
        VTIMEZONE,
    ]
    number = 0
    for _ in range(singles):
        number += 1
        day = _FIRST_DAY + timedelta(days=rng.randrange(_SPAN_DAYS))
        start = datetime(day.year, day.month, day.day, rng.choice([9, 10, 14, 15, 18, 19, 20]))
        lines, _uid = _event(rng, number, start, all_day=rng.random() < 0.12, rule=None)
        out.extend(lines)
    recurring: list[tuple[str, datetime, str, bool]] = []
    for _ in range(masters):
        number += 1
        day = _FIRST_DAY + timedelta(days=rng.randrange(_SPAN_DAYS - 120))
        start = datetime(day.year, day.month, day.day, rng.choice([10, 14, 17, 18, 19]))
        kind = rng.random()
        all_day = False
        if kind < 0.55:  # weekly club, class, market: 22 to 74 sessions
            weekday = DAYS[start.weekday()]
            interval = rng.choice([1, 1, 1, 2])
            weekly = f"FREQ=WEEKLY;INTERVAL={interval};BYDAY={weekday}"
            if rng.random() < 0.5:
                rule = f"{weekly};COUNT={rng.randint(22, 74)}"
            else:
                until = start + timedelta(weeks=rng.randint(26, 66))
                rule = f"{weekly};UNTIL={until:%Y%m%dT225959Z}"
        elif kind < 0.85:  # monthly council, permanence: the nth weekday of the month
            nth = rng.choice([1, 2, 3, -1])
            rule = (
                f"FREQ=MONTHLY;BYDAY={nth}{DAYS[start.weekday()]};COUNT={rng.randint(6, 14)}"
                if rng.random() < 0.5
                else f"FREQ=MONTHLY;BYMONTHDAY={start.day};"
                f"UNTIL={start + timedelta(days=rng.randint(150, 400)):%Y%m%dT225959Z}"
            )
        else:  # daily festival, exhibition or holiday camp: 5 to 40 days
            rule = f"FREQ=DAILY;COUNT={rng.randint(5, 40)}"
            all_day = rng.random() < 0.4
        lines, uid = _event(rng, number, start, all_day=all_day, rule=rule)
        if not all_day and rng.random() < 0.2:  # a couple of cancelled sessions
            skipped = start + timedelta(weeks=2 * rng.randint(1, 3)) if "WEEKLY" in rule else None
            if skipped is not None:
                lines.insert(-1, f"EXDATE;TZID=Europe/Paris:{_local(skipped)}")
        out.extend(lines)
        if not all_day and "WEEKLY" in rule:
            recurring.append((uid, start, rule, all_day))
    for uid, start, _rule, _all_day in rng.sample(recurring, min(overrides_wanted, len(recurring))):
        # One session moved by two hours, or to the next day, with its own title.
        original = start + timedelta(weeks=rng.randint(2, 8))
        moved = original + rng.choice([timedelta(hours=2), timedelta(days=1)])
        out += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20251115T090000Z",
            f"RECURRENCE-ID;TZID=Europe/Paris:{_local(original)}",
            f"DTSTART;TZID=Europe/Paris:{_local(moved)}",
            f"DTEND;TZID=Europe/Paris:{_local(moved + timedelta(hours=1))}",
            "SUMMARY:Séance exceptionnellement déplacée",
            "LOCATION:Salle des fêtes\\, Lille",
            "END:VEVENT",
        ]
    out.append("END:VCALENDAR")
    return "\r\n".join(_fold(line) for block in out for line in block.split("\n")) + "\r\n"


def ensure_calendar(events: int = 5000, seed: int = 26) -> Path:
    """The calendar file for these arguments, written under the temp folder if missing."""
    path = default_path(events, seed)
    text = make_calendar(events, seed)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="VEVENTs (default 5000)")
    parser.add_argument("--seed", type=int, default=26, help="random seed (default 26)")
    parser.add_argument("--out", type=Path, help="where to write (default: under the temp dir)")
    args = parser.parse_args()
    if args.out is None:
        path = ensure_calendar(args.events, args.seed)
    else:
        path = args.out
        path.write_text(make_calendar(args.events, args.seed), encoding="utf-8", newline="")
    print(path)


if __name__ == "__main__":
    main()

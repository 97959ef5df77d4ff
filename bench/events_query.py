"""``/v1/events`` with text and geo filters over many occurrences (issue 5, target: p50 < 5 ms).

Builds an ``EventIndex`` of generated occurrences (``make_occurrence``, French titles,
places around Lille), then times, query by query and side by side:

* ``EventIndex.query`` in-process, for text + geo, text only, geo only and category queries;
* the naive peer: a linear scan in plain Python over the same records (search text folded
  and stemmed once beforehand, so only the per-query loop is timed) for the same queries;
* the HTTP handler path in-process: aiohttp's TestClient on ``create_app(runtime,
  poll=False)`` (routing, parameter checks, index query, localisation, envelope, ETag, JSON).

    .venv/bin/python bench/events_query.py --occurrences 100000 --queries 2000
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from events_common import header, percentile, table

from connectors.events.index import EventIndex, EventQuery, _searchable, category_key
from connectors.events.model import make_occurrence
from connectors.events.text import search_terms

PARIS = ZoneInfo("Europe/Paris")
LILLE = (50.63, 3.06)
YEAR_START = datetime(2026, 1, 1, tzinfo=PARIS)
YEAR_END = datetime(2027, 1, 1, tzinfo=PARIS)
SOURCE = "agenda"

KINDS = [
    ("Concert", "musique"),
    ("Exposition", "exposition"),
    ("Atelier numérique", "atelier"),
    ("Heure du conte", "jeunesse"),
    ("Marché de producteurs", "marché"),
    ("Braderie", "brocante"),
    ("Séance de cinéma", "cinéma"),
    ("Visite guidée", "patrimoine"),
    ("Spectacle de danse", "danse"),
    ("Tournoi de football", "sport"),
    ("Club de lecture", "lecture"),
    ("Fête de quartier", "fête"),
    ("Réunion publique", "urbanisme"),
    ("Conseil de quartier", "démocratie locale"),
    ("Don du sang", "santé"),
    ("Atelier cuisine", "atelier"),
    ("Balade à vélo", "sport"),
    ("Conférence", "conférence"),
    ("Théâtre", "théâtre"),
    ("Vide-greniers", "brocante"),
]
THEMES = [
    "jazz",
    "baroque",
    "d'automne",
    "de printemps",
    "des enfants",
    "du patrimoine",
    "photographie",
    "street art",
    "zéro déchet",
    "des sciences",
    "en famille",
    "des jardins",
    "solidaire",
    "électro",
    "des seniors",
    "du monde",
]
PLACES = [
    "Médiathèque",
    "Maison Folie",
    "Salle des fêtes",
    "Centre social",
    "Gymnase",
    "Parc",
    "Théâtre municipal",
    "Mairie de quartier",
    "Église",
    "Place du marché",
]
QUARTERS = ["Wazemmes", "Fives", "Moulins", "Vauban", "Bois-Blancs", "Saint-Maurice", "Hellemmes"]
TEXTS = [
    "concert",
    "concerts jazz",
    "atelier numérique",
    "exposition photo",
    "marché",
    "cinéma",
    "conte enfants",
    "visite patrimoine",
    "danse",
    "vélo",
    "théâtre",
    "braderie",
    "conférence sciences",
    "fête quartier",
    "lecture",
]


def make_records(occurrences: int, seed: int) -> list[dict[str, Any]]:
    """``occurrences`` records: events of 1 to 30 occurrences over 2026, around Lille."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    number = 0
    while len(records) < occurrences:
        number += 1
        title, category = rng.choice(KINDS)
        theme = rng.choice(THEMES)
        place = f"{rng.choice(PLACES)} {rng.choice(QUARTERS)}"
        # Places within about 8 km of the centre, denser near it.
        distance = 8000 * rng.random() ** 1.5
        bearing = rng.uniform(0, 2 * math.pi)
        lat = LILLE[0] + distance * math.cos(bearing) / 111_200
        lon = LILLE[1] + distance * math.sin(bearing) / (111_200 * math.cos(math.radians(LILLE[0])))
        first = YEAR_START + timedelta(
            days=rng.randrange(360), hours=rng.choice([9, 10, 14, 15, 18, 19, 20])
        )
        count = min(rng.choice([1, 1, 1, 2, 4, 8, 12, 20, 30]), occurrences - len(records))
        step = timedelta(days=rng.choice([1, 7, 7, 14, 28]))
        free = rng.random() < 0.6
        accessibility = rng.sample(["hearing", "visual", "motor"], rng.randint(0, 2))
        for k in range(count):
            start = (first + k * step).astimezone(PARIS)
            end = start + timedelta(minutes=rng.choice([60, 90, 120, 180]))
            records.append(
                make_occurrence(
                    source=SOURCE,
                    uid=f"evt-{number:06d}@ville-exemple.fr",
                    recurrence=start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"),
                    channel="agenda" if category == "démocratie locale" else "events",
                    title={"fr": f"{title} {theme}"},
                    description={"fr": f"{title} {theme} à {place}. Entrée libre."},
                    start=start,
                    end=end,
                    timezone="Europe/Paris",
                    location={"name": place, "city": "Lille", "lat": lat, "lon": lon},
                    categories=[category, "gratuit" if free else "payant"],
                    price={"free": free, "text": {}},
                    accessibility=accessibility,
                    url=f"https://www.ville-exemple.fr/agenda/{number}",
                )
            )
    return records


def make_queries(kind: str, n: int, seed: int, days: int) -> list[dict[str, Any]]:
    """``n`` query parameter sets of ``kind`` (text+geo, text, geo, category)."""
    rng = random.Random(f"{seed}-{kind}")
    out = []
    for _ in range(n):
        begin = (
            YEAR_START if days >= 365 else YEAR_START + timedelta(days=rng.randrange(365 - days))
        )
        params: dict[str, Any] = {"from": begin, "to": begin + timedelta(days=days)}
        if "text" in kind:
            params["q"] = rng.choice(TEXTS)
        if "geo" in kind:
            params["lat"] = LILLE[0] + rng.uniform(-0.03, 0.03)
            params["lon"] = LILLE[1] + rng.uniform(-0.04, 0.04)
            params["radius"] = rng.choice([500.0, 1000.0, 2000.0, 5000.0])
        if kind == "category":
            params["category"] = rng.choice(KINDS)[1]
        out.append(params)
    return out


def to_event_query(params: dict[str, Any]) -> EventQuery:
    return EventQuery(
        start=params["from"].timestamp(),
        end=params["to"].timestamp(),
        text=params.get("q"),
        categories=(params["category"],) if "category" in params else (),
        lat=params.get("lat"),
        lon=params.get("lon"),
        radius_m=params.get("radius"),
    )


class NaiveScan:
    """The naive peer: every record tested in a Python loop; search text prepared once."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        rows = sorted(records, key=lambda r: (datetime.fromisoformat(r["start"]), r["id"]))
        self.rows = []
        for r in rows:
            start = datetime.fromisoformat(r["start"]).timestamp()
            end = datetime.fromisoformat(r["end"]).timestamp() if r["end"] else start
            loc = r["location"] or {}
            words = " " + " ".join(search_terms(_searchable(r))) + " "
            cats = {category_key(c) for c in r["categories"]}
            self.rows.append((start, end, loc.get("lat"), loc.get("lon"), words, cats, r))

    def query(self, q: EventQuery) -> tuple[int, list[dict[str, Any]]]:
        terms = list(dict.fromkeys(search_terms(q.text))) if q.text else []
        needles = [" " + t if len(t) >= 3 else f" {t} " for t in terms]
        wanted = {category_key(c) for c in q.categories}
        hits = []
        for start, end, lat, lon, words, cats, record in self.rows:
            if start >= q.end or not (end > q.start or start >= q.start):
                continue
            if needles and not all(n in words for n in needles):
                continue
            if wanted and not (cats & wanted):
                continue
            if (
                q.lat is not None
                and q.radius_m is not None
                and (lat is None or _haversine(q.lat, q.lon, lat, lon) > q.radius_m)
            ):
                continue
            hits.append(record)
        return len(hits), hits[: q.limit]


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(a, 1.0)))


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


# --- the HTTP path -------------------------------------------------------------------------

CONFIG = """
defaults:
  allow_file_urls: true
  timezone: Europe/Paris
  languages: [fr, en]
clock:
  fixed: 2026-01-01T00:00:00+01:00
connectors:
  - id: agenda
    type: ics
    url: file:empty.ics
"""


async def http_times(
    records: list[dict[str, Any]], queries: dict[str, list[dict[str, Any]]]
) -> dict[str, tuple[list[float], list[int], list[float], list[float]]]:
    """Per kind: request times, totals, /healthz times (the floor), direct handler times."""
    from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

    from aggregator.api.app import create_app
    from aggregator.config import parse_config
    from aggregator.model import Snapshot
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime
    from connectors.events.routes import list_events

    folder = Path(tempfile.gettempdir())
    (folder / "empty.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    types = discover_connector_types()
    config = parse_config(
        CONFIG, filename="bench.yaml", connector_types=config_models(types), environ={},
        base_dir=folder,
    )  # fmt: skip
    runtime = Runtime(config, types)
    out: dict[str, tuple[list[float], list[int], list[float], list[float]]] = {}
    app = create_app(runtime, poll=False)
    async with TestClient(TestServer(app)) as client:
        snapshot = Snapshot(
            source_id=SOURCE,
            source_type="ics",
            version=1,
            content_hash="bench",
            fetched_at=datetime.now(UTC),
            data=records,
            record_count=len(records),
        )
        runtime.live.adopt(snapshot)
        await runtime.live.settled()
        runtime.live.combined("events")
        for kind, params_list in queries.items():
            times, totals, floor, direct = [], [], [], []
            for params in params_list:
                query = {
                    key: value.isoformat() if isinstance(value, datetime) else str(value)
                    for key, value in params.items()
                }
                url = "/v1/events?" + urlencode(query)
                started = time.perf_counter()
                response = await client.get(url)
                body = await response.json()
                times.append((time.perf_counter() - started) * 1000)
                if response.status != 200:
                    raise RuntimeError(f"{url}: {response.status} {body}")
                totals.append(body["meta"]["total"])
                # The same client asking for the cheapest endpoint: the round-trip floor.
                started = time.perf_counter()
                response = await client.get("/healthz")
                await response.read()
                floor.append((time.perf_counter() - started) * 1000)
                # The handler alone (no socket, no middlewares, no JSON rendering).
                request = make_mocked_request("GET", url, app=app)
                started = time.perf_counter()
                await list_events(request)
                direct.append((time.perf_counter() - started) * 1000)
            out[kind] = (times, totals, floor, direct)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--occurrences", type=int, default=20_000, help="default 20000")
    parser.add_argument("--queries", type=int, default=300, help="index queries per kind")
    parser.add_argument("--naive-queries", type=int, default=30, help="naive scans per kind")
    parser.add_argument("--http-queries", type=int, default=200, help="HTTP requests per kind")
    parser.add_argument("--days", type=int, default=366, help="span of each query (default 366)")
    parser.add_argument("--seed", type=int, default=26)
    args = parser.parse_args()

    started = time.perf_counter()
    records = make_records(args.occurrences, args.seed)
    generated = time.perf_counter() - started
    print(f"generated {len(records):,} records in {generated:.1f}s", file=sys.stderr)
    build_times = []
    for _ in range(3):
        took, index = timed(lambda: EventIndex({SOURCE: records}, built_at=datetime.now(UTC)))
        build_times.append(took / 1000)
    naive = NaiveScan(records)

    kinds = ["text+geo", "text", "geo", "category"]
    queries = {k: make_queries(k, args.queries, args.seed, args.days) for k in kinds}
    rows = []
    summary: dict[str, tuple[float, float, float]] = {}
    mismatches = 0
    for kind in kinds:
        index_ms, naive_ms, totals = [], [], []
        for i, params in enumerate(queries[kind]):
            query = to_event_query(params)
            took, page = timed(lambda q=query: index.query(q))  # type: ignore[misc]
            index_ms.append(took)
            totals.append(page.total)
            if i < args.naive_queries:
                took, (total, first) = timed(lambda q=query: naive.query(q))  # type: ignore[misc]
                naive_ms.append(took)
                same = total == page.total and [r["id"] for r in first] == [
                    r["id"] for r, _d in page.items
                ]
                mismatches += not same
        p50, p99 = percentile(index_ms, 0.5), percentile(index_ms, 0.99)
        n50 = percentile(naive_ms, 0.5)
        summary[kind] = (p50, p99, n50)
        rows.append(
            [
                kind,
                f"{statistics.median(totals):,.0f}",
                f"{p50:.3f}",
                f"{p99:.3f}",
                f"{n50:.1f}",
                f"{percentile(naive_ms, 0.99):.1f}",
                f"{n50 / p50:,.0f}x",
            ]
        )

    http_queries = {k: v[: args.http_queries] for k, v in queries.items()}
    http = asyncio.run(http_times(records, http_queries))

    print(header())
    print(
        f"{len(records):,} occurrences ({args.seed=}), queries over {args.days} days, limit 20; "
        f"index build {statistics.median(build_times):.2f} s (median of 3). Times in ms.\n"
    )
    print(
        table(
            [
                "query",
                "median matches",
                f"index p50 ({args.queries})",
                "index p99",
                f"naive scan p50 ({args.naive_queries})",
                "naive p99",
                "naive / index",
            ],
            rows,
        )
    )
    print(
        f"\nIndex and naive scan agree (total and first page) on "
        f"{args.naive_queries * len(kinds) - mismatches} of {args.naive_queries * len(kinds)} "
        "queries.\n"
    )
    http_rows = []
    for kind in kinds:
        times, totals, floor, direct = http[kind]
        same = totals == [
            index.query(to_event_query(p)).total for p in http_queries[kind][: len(totals)]
        ]
        http_rows.append(
            [
                f"GET /v1/events, {kind}",
                str(len(times)),
                f"{percentile(times, 0.5):.3f}",
                f"{percentile(times, 0.99):.3f}",
                f"{percentile(direct, 0.5):.3f}",
                f"{percentile(floor, 0.5):.3f}",
                "yes" if same else "NO",
            ]
        )
    print(
        table(
            [
                "request (TestClient, in-process)",
                "n",
                "p50",
                "p99",
                "handler alone p50",
                "GET /healthz p50 (floor)",
                "same totals",
            ],
            http_rows,
        )
    )
    p50 = summary["text+geo"][0]
    http_p50 = percentile(http["text+geo"][0], 0.5)
    handler_p50 = percentile(http["text+geo"][3], 0.5)
    print(
        f"\nTarget (text + geo over {len(records):,} occurrences, p50 < 5 ms in-process): "
        f"index {'met' if p50 < 5 else 'missed'} at {p50:.2f} ms ({p50 / 5:.2f}x the bound); "
        f"handler alone {'met' if handler_p50 < 5 else 'missed'} at {handler_p50:.2f} ms; "
        f"whole request through TestClient {'met' if http_p50 < 5 else 'missed'} at "
        f"{http_p50:.2f} ms."
    )


if __name__ == "__main__":
    main()

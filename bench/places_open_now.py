"""``/v1/places?open_now=true`` near a point over many places (issue 17, target: p50 < 5 ms).

Builds a ``PlacesIndex`` of generated places (positions within 15 km of Lille, categories
drawn from the vocabulary, ``opening_hours`` drawn from the 330 real OpenStreetMap values of
``tests/fixtures/places/osm-opening-hours-values.json``, about 10 % without hours), then
times, query by query and interleaved:

* ``PlacesIndex.search`` in-process with ``open_at`` (what the handler calls): nearest
  first, each distinct opening_hours value evaluated once per query;
* the naive peer: distances to every place in plain Python, sorted, then each candidate's
  value parsed and evaluated with opening-hours-py until the page is full (what a direct
  implementation without an index or a parse cache does).

    .venv/bin/python bench/places_open_now.py --places 50000 --queries 1000
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from benchlib import code_version, command_line
from opening_hours import OpeningHours

from connectors.places.connector import CATEGORIES
from connectors.places.geo import distance_m
from connectors.places.placeindex import PlacesIndex

ROOT = Path(__file__).resolve().parents[1]
VALUES = ROOT / "tests" / "fixtures" / "places" / "osm-opening-hours-values.json"
PARIS = ZoneInfo("Europe/Paris")
LILLE = (50.63, 3.06)


def make_places(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    values = json.loads(VALUES.read_text())["values"]
    places = []
    for n in range(count):
        # Uniform in a 15 km disc around Lille (a metropolis' extent).
        r = 15_000 * math.sqrt(rng.random())
        angle = rng.random() * 2 * math.pi
        lat = LILLE[0] + r * math.cos(angle) / 111_195
        lon = LILLE[1] + r * math.sin(angle) / (111_195 * math.cos(math.radians(LILLE[0])))
        places.append(
            {
                "id": f"bench:{n}",
                "source": "bench",
                "name": f"Lieu {n}",
                "category": rng.choice(CATEGORIES),
                "lat": lat,
                "lon": lon,
                "opening_hours": rng.choice(values) if rng.random() > 0.1 else None,
            }
        )
    return places


def naive(places: list[dict], lat: float, lon: float, radius: float, at: datetime, limit: int):
    near = []
    for place in places:
        away = distance_m(lat, lon, place["lat"], place["lon"])
        if away <= radius:
            near.append((away, place))
    # The API's order: distance to the decimetre, then id (what its cursor pages follow).
    near.sort(key=lambda item: (round(item[0], 1), item[1]["id"]))
    found = []
    for away, place in near:
        raw = place["opening_hours"]
        if raw is None:
            continue
        try:
            rules = OpeningHours(
                raw, timezone=PARIS, country="FR", auto_country=False, auto_timezone=False
            )
        except Exception:  # unparseable: not open
            continue
        if rules.is_open(at):
            found.append((away, place))
            if len(found) == limit:
                break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--places", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--naive-queries", type=int, default=100)
    parser.add_argument("--radius", type=float, default=1000.0)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    print(f"command: {command_line()}\ncode: {code_version()}")

    places = make_places(args.places, args.seed)
    started = time.perf_counter()
    index = PlacesIndex(places, ["FR", None], PARIS.key)
    print(f"index build: {time.perf_counter() - started:.2f} s for {len(index)} places")

    rng = random.Random(args.seed + 1)
    week = datetime(2025, 3, 10, tzinfo=PARIS)  # Monday
    queries = []
    for _ in range(args.queries):
        r = 10_000 * math.sqrt(rng.random())
        angle = rng.random() * 2 * math.pi
        lat = LILLE[0] + r * math.cos(angle) / 111_195
        lon = LILLE[1] + r * math.sin(angle) / (111_195 * math.cos(math.radians(LILLE[0])))
        at = week + timedelta(minutes=rng.randrange(7 * 24 * 60))
        queries.append((lat, lon, at))

    ours, theirs, agree, compared = [], [], 0, 0
    for n, (lat, lon, at) in enumerate(queries):
        t0 = time.perf_counter()
        hits = index.search(lat, lon, args.radius, open_at=at, limit=args.limit)
        ours.append((time.perf_counter() - t0) * 1000)
        if n < args.naive_queries:
            t0 = time.perf_counter()
            peer = naive(places, lat, lon, args.radius, at, args.limit)
            theirs.append((time.perf_counter() - t0) * 1000)
            compared += 1
            mine = [place["id"] for _, place in hits[: args.limit]]
            agree += mine == [place["id"] for _, place in peer]
    found = statistics.median(
        len(index.search(la, lo, args.radius, open_at=at, limit=args.limit))
        for la, lo, at in queries[:50]
    )

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    print(
        f"{args.places} places, radius {args.radius:.0f} m, open_at, limit {args.limit}; "
        f"median page {found:.0f}; same page as the naive peer on {agree}/{compared} queries"
    )
    print("| implementation | queries | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| PlacesIndex.search | {len(ours)} | {statistics.median(ours):.3f} | "
        f"{pct(ours, 0.99):.3f} |"
    )
    print(
        f"| naive (scan, parse per place) | {len(theirs)} | {statistics.median(theirs):.3f} | "
        f"{pct(theirs, 0.99):.3f} |"
    )
    print(f"naive / index (p50): {statistics.median(theirs) / statistics.median(ours):.1f}x")


if __name__ == "__main__":
    main()

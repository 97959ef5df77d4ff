"""Waste collection lookup over many zones (issue 17, target: p50 < 1 ms over 10,000 zones).

Generates ``--zones`` collection zones that tile an area around Lille (shapely's Voronoi cells
of random points, each ring segmentised to about as many vertices as Bordeaux Métropole's real
zones have) with a household and a recycling rule each, parses them as a ``waste`` source
would (``WasteConnector.parse`` on the GeoJSON), then times, point by point and side by side:

* ``ZoneIndex.at``: the STRtree query with the ``covered_by`` predicate;
* the whole in-process lookup of the endpoint: ``collections_at`` (zones, then next dates per
  stream after holiday shifts);
* peer 1, the naive way: a Python loop over every polygon (prepared) asking ``covers``;
* peer 2, brute force vectorised: ``shapely.covers(all_polygons, point)`` in one call;
* the HTTP path in-process: aiohttp's TestClient on ``create_app(runtime, poll=False)``
  (routing, parameter checks, lookup, envelope, ETag, JSON) and ``/healthz`` as its floor.

The three lookups must agree on every point (checked).

    .venv/bin/python bench/waste_lookup.py --zones 10000 --points 2000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, date, datetime
from typing import Any

import orjson
import shapely
from events_common import header, percentile, table
from shapely.geometry import MultiPoint, Point, box, mapping

LILLE = (50.63, 3.06)
#: Vertices per ring, about the median of Bordeaux Métropole's real zones.
VERTICES = 120
CONFIG = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
clock: {fixed: "2026-03-30T09:00:00+02:00"}
connectors:
  - id: zones
    type: waste
    url: file:zones.json
    fields: {id: id, name: name, stream: stream, weekdays: days}
"""


def make_zones(count: int, seed: int) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``count`` zones tiling a box around Lille."""
    rng = random.Random(seed)
    half = 0.15 * (count / 10_000) ** 0.5  # about 33 km x 21 km for 10,000 zones
    area = box(LILLE[1] - half, LILLE[0] - half * 0.6, LILLE[1] + half, LILLE[0] + half * 0.6)
    minx, miny, maxx, maxy = area.bounds
    seeds = MultiPoint([(rng.uniform(minx, maxx), rng.uniform(miny, maxy)) for _ in range(count)])
    cells = shapely.voronoi_polygons(seeds, extend_to=area)
    features = []
    for number, cell in enumerate(cells.geoms):
        cell = cell.intersection(area)
        step = cell.length / VERTICES
        cell = shapely.segmentize(cell, step)
        days = rng.choice([["LUNDI", "JEUDI"], ["MARDI", "VENDREDI"], ["MERCREDI"]])
        features.append(
            {
                "type": "Feature",
                "geometry": mapping(cell),
                "properties": {
                    "id": f"z{number}",
                    "name": f"Zone {number}",
                    "stream": "household",
                    "days": days,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def timed(function: Any, points: list[tuple[float, float]]) -> tuple[list[float], list[Any]]:
    times, answers = [], []
    for lat, lon in points:
        started = time.perf_counter()
        answer = function(lat, lon)
        times.append((time.perf_counter() - started) * 1000)
        answers.append(answer)
    return times, answers


async def run(zones: int, point_count: int, naive_points: int, http_points: int, seed: int) -> None:
    import tempfile
    from pathlib import Path

    from aiohttp.test_utils import TestClient, TestServer

    from aggregator.api.app import create_app
    from aggregator.config import parse_config
    from aggregator.model import Snapshot
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime
    from connectors.waste.connector import WasteConnector, build_index
    from connectors.waste.routes import collections_at

    document = orjson.dumps(make_zones(zones, seed))
    folder = Path(tempfile.gettempdir())
    types = discover_connector_types()
    config = parse_config(
        CONFIG, filename="bench.yaml", connector_types=config_models(types), environ={},
        base_dir=folder,
    )  # fmt: skip
    runtime = Runtime(config, types)
    connector = runtime.connectors["zones"]
    assert isinstance(connector, WasteConnector)
    started = time.perf_counter()
    parsed = connector.parse(document)
    parse_s = time.perf_counter() - started
    snapshot = Snapshot(
        source_id="zones",
        source_type="waste",
        version=1,
        content_hash="bench",
        fetched_at=datetime.now(UTC),
        data=parsed.data,
        record_count=parsed.record_count,
    )
    started = time.perf_counter()
    index = build_index(snapshot)
    build_s = time.perf_counter() - started
    polygons = list(index.polygons)
    array = shapely.from_wkb(shapely.to_wkb(polygons))  # separate copies for the peers
    for polygon in array:
        shapely.prepare(polygon)

    rng = random.Random(seed + 1)
    minx, miny, maxx, maxy = shapely.total_bounds(array)
    points = [(rng.uniform(miny, maxy), rng.uniform(minx, maxx)) for _ in range(point_count)]

    tree_times, tree_answers = timed(index.at, points)
    vector_times, vector_answers = timed(
        lambda lat, lon: [
            index.ids[i] for i in shapely.covers(array, Point(lon, lat)).nonzero()[0]
        ],
        points,
    )

    def naive(lat: float, lon: float) -> list[str]:
        point = Point(lon, lat)
        return [index.ids[i] for i, polygon in enumerate(array) if polygon.covers(point)]

    naive_times, naive_answers = timed(naive, points[:naive_points])
    agree = sum(
        a == b == c
        for a, b, c in zip(
            tree_answers, vector_answers, naive_answers + tree_answers[naive_points:], strict=True
        )
    )

    app = create_app(runtime, poll=False)
    http_times: list[float] = []
    floor: list[float] = []
    lookup_times: list[float] = []
    async with TestClient(TestServer(app)) as client:
        runtime.live.adopt(snapshot)
        await runtime.live.settled()
        sources = ["zones"]
        today = date(2026, 3, 30)
        runtime.live.index("zones", "waste_zones", build_index)
        lookup_times, _answers = timed(
            lambda lat, lon: collections_at(runtime, sources, lat, lon, today), points
        )
        for lat, lon in points[:http_points]:
            started = time.perf_counter()
            response = await client.get(f"/v1/waste/collections?lat={lat}&lon={lon}")
            body = await response.json()
            http_times.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or not body["data"]["zones"]:
                raise RuntimeError(f"{lat},{lon}: {response.status} {body}")
            started = time.perf_counter()
            await (await client.get("/healthz")).read()
            floor.append((time.perf_counter() - started) * 1000)

    def row(name: str, times: list[float]) -> list[object]:
        return [
            name,
            len(times),
            f"{percentile(times, 0.5):.4f}",
            f"{percentile(times, 0.99):.4f}",
            f"{percentile(times, 0.5) / percentile(tree_times, 0.5):.0f}x",
        ]

    vertices = statistics.median(
        len(p.exterior.coords) for p in polygons if p.geom_type == "Polygon"
    )
    print(header())
    print(
        f"parse {parse_s:.2f} s, STRtree build {build_s:.2f} s; median vertices per zone "
        f"{vertices:.0f}; the three lookups agree on {agree} of {len(points)} points. Times in ms."
    )
    print()
    print(
        table(
            ["lookup", "n", "p50", "p99", "p50 / STRtree"],
            [
                row("ZoneIndex.at (STRtree, covered_by)", tree_times),
                row("collections_at (zones + next dates)", lookup_times),
                row("peer: shapely.covers over all polygons", vector_times),
                row("peer: Python loop, prepared covers", naive_times),
                row("GET /v1/waste/collections (TestClient)", http_times),
                row("GET /healthz (TestClient floor)", floor),
            ],
        )
    )
    p50 = percentile(lookup_times, 0.5)
    print()
    verdict = "met" if p50 < 1 else "missed"
    print(f"Target p50 < 1 ms for the lookup over {zones:,} zones: {verdict} ({p50:.4f} ms)")
    await runtime.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=2_000)
    parser.add_argument("--naive-points", type=int, default=200, help="the Python loop is slow")
    parser.add_argument("--http-points", type=int, default=500)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    asyncio.run(run(args.zones, args.points, args.naive_points, args.http_points, args.seed))


if __name__ == "__main__":
    main()

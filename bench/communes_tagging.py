"""Tagging located records with their commune: once per snapshot, vectorised, vs the naive way.

Loads real commune boundaries (by default the demo's 33 communes; ``--communes`` takes any
GeoJSON with ``code``/``nom`` properties, e.g. a département of gregoiredavid/france-geojson),
draws ``--records`` random points in their bounding box (seeded), then times, side by side
and repeated (medians):

* the commune index build from a ``communes`` snapshot (once per communes version);
* tagging every record as Beffroi does when a snapshot (or the communes) change:
  ``CommuneIndex.locate_many``, one STRtree query for all the points;
* peer 1: one STRtree query per record (a Python loop over the records);
* peer 2, the naive loop: every prepared polygon asked ``covers`` for each record (timed on
  ``--naive-records`` of them, reported per record and extrapolated to all);
* what a request then pays for a page of 100 items: reading 100 tags by id, beside looking
  the 100 points up again (what tagging per request would cost).

The lookups must agree on every record the naive loop saw (checked).

    .venv/bin/python bench/communes_tagging.py --records 20000 --naive-records 2000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from events_common import table
from shapely.geometry import shape

from aggregator.communes import CommuneIndex, RecordCommunes
from aggregator.model import Snapshot
from connectors.communes.connector import build_commune_index

DEMO = Path(__file__).parents[1] / "config" / "demo-data" / "communes-demo-extract.geojson"


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--communes", type=Path, default=DEMO)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--naive-records", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()

    features = json.loads(args.communes.read_text())["features"]
    snapshot = Snapshot(
        source_id="communes",
        source_type="communes",
        version=1,
        content_hash="",
        fetched_at=datetime.now(UTC),
        data={
            "communes": {
                f["properties"]["code"]: {
                    "code": f["properties"]["code"],
                    "name": f["properties"]["nom"],
                }
                for f in features
            },
            "geometries": {f["properties"]["code"]: f["geometry"] for f in features},
        },
        record_count=len(features),
    )
    build_s, index = timed(lambda: build_commune_index({"communes": snapshot}, None), 3)
    assert isinstance(index, CommuneIndex)

    # Each record in the bounding box of a commune drawn at random: most fall inside one,
    # some in a neighbour or in none (the sea, a gap between communes far apart).
    rng = random.Random(args.seed)
    bounds = shapely.bounds(np.asarray(index.polygons, dtype=object))
    boxes = [bounds[rng.randrange(len(bounds))] for _ in range(args.records)]
    lons = np.array([rng.uniform(b[0], b[2]) for b in boxes])
    lats = np.array([rng.uniform(b[1], b[3]) for b in boxes])
    ids = [f"source:{i}" for i in range(args.records)]

    vector_s, positions = timed(lambda: index.locate_many(lons, lats), args.repeat)
    tree = index.tree

    def per_record() -> list[int]:
        out = []
        for lon, lat in zip(lons, lats, strict=True):
            hits = tree.query(shapely.Point(lon, lat), predicate="covered_by")
            out.append(int(hits.min()) if len(hits) else -1)
        return out

    loop_s, looped = timed(per_record, max(1, args.repeat // 2))
    polygons = [shape(f["geometry"]) for f in features]
    codes = [f["properties"]["code"] for f in features]
    for polygon in polygons:
        shapely.prepare(polygon)
    subset = range(min(args.naive_records, args.records))

    def naive() -> list[str | None]:
        out = []
        for i in subset:
            point = shapely.Point(lons[i], lats[i])
            found = sorted(c for c, p in zip(codes, polygons, strict=True) if p.covers(point))
            out.append(found[0] if found else None)
        return out

    naive_s, naive_codes = timed(naive, 1)
    agree = sum(
        (index.codes[positions[i]] if positions[i] >= 0 else None) == naive_codes[n]
        for n, i in enumerate(subset)
    )
    assert agree == len(subset), f"{agree} of {len(subset)} agree"
    assert list(positions) == looped
    naive_all_s = naive_s / len(subset) * args.records

    tags = RecordCommunes(index, positions, ids)
    page = rng.sample(range(args.records), 100)
    read_s, _ = timed(lambda: [tags.of(ids[i]) for i in page], args.repeat * 20)
    again_s, _ = timed(lambda: index.locate_many(lons[page], lats[page]), args.repeat * 20)
    busiest = index.codes[int(np.bincount(positions[positions >= 0]).argmax())]
    mask_s, _ = timed(lambda: np.flatnonzero(tags.mask(busiest)), args.repeat * 20)

    located = int((positions >= 0).sum())
    print(
        f"{len(features)} communes from {args.communes.name}; {args.records} records, each in "
        f"the bounding box of a commune drawn at random, {located} inside a commune; the naive "
        f"loop agrees on {agree} of {len(subset)}. Commune index build {build_s * 1000:.1f} ms "
        "(once per communes version). Medians.\n"
    )
    rows = [
        ("`CommuneIndex.locate_many` (one STRtree query)", args.records, vector_s, 1.0),
        ("peer: one STRtree query per record", args.records, loop_s, loop_s / vector_s),
        (
            f"peer: loop over every polygon (`covers`), {len(subset)} timed, scaled",
            args.records,
            naive_all_s,
            naive_all_s / vector_s,
        ),
    ]
    print(
        table(
            ["tag every record", "records", "ms", "ms / 1,000 records", "x vectorised"],
            [
                (name, n, f"{s * 1000:.1f}", f"{s * 1000 / n * 1000:.3f}", f"{ratio:.0f}x")
                for name, n, s, ratio in rows
            ],
        )
    )
    print()
    print(
        table(
            ["per request", "µs", "x tags"],
            [
                ("a page of 100 items: read their tags", f"{read_s * 1e6:.1f}", "1x"),
                (
                    "a page of 100 items: look the points up again",
                    f"{again_s * 1e6:.1f}",
                    f"{again_s / read_s:.1f}x",
                ),
                (
                    f"`commune=` over all {args.records} records: the tags' mask",
                    f"{mask_s * 1e6:.1f}",
                    "1x",
                ),
                (
                    f"`commune=` over all {args.records} records: look them all up",
                    f"{vector_s * 1e6:.0f}",
                    f"{vector_s / mask_s:.0f}x",
                ),
            ],
        )
    )


if __name__ == "__main__":
    main()

"""Answer sizes with and without ``include=references`` on the demo's real Caltrain data.

    .venv/bin/python bench/references_sizes.py

Loads config/demo.yaml (its fixed clock, 2023-11-07T17:06 in California), polls every source
once, then asks each transit answer twice, as is and with ``include=references``, and prints
the body sizes as sent: raw, and gzipped by the server (``Accept-Encoding: gzip``, level 5).
No timing: sizes only, so one run is the figure (``meta`` carries times whose digits can move
a size by a few bytes between runs).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parents[1]

#: (what, path): the busiest board of the demo (San Francisco, the terminal), an app's usual
#: board, a grouped board, the boards near 4th & King, a trip, every vehicle.
ANSWERS = [
    (
        "board of San Francisco, next 100 in 24h",
        "/v1/stops/caltrain:san_francisco/departures?limit=100&duration=24h",
    ),
    ("board of San Francisco, default (20)", "/v1/stops/caltrain:san_francisco/departures"),
    (
        "the same, group=line_direction",
        "/v1/stops/caltrain:san_francisco/departures?group=line_direction",
    ),
    ("boards near 4th & King (5 per stop)", "/v1/departures?lat=37.7764&lon=-122.3949"),
    ("trip caltrain:310 (20 calls)", "/v1/trips/caltrain:310"),
    ("vehicles, all (14)", "/v1/vehicles"),
    ("vehicles as GeoJSON", "/v1/vehicles.geojson"),
]


async def measure() -> list[tuple[str, str, int, int, int, int, int]]:
    sys.path.insert(0, str(ROOT))
    from aggregator.api.app import create_app
    from aggregator.config import load_config
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    types = discover_connector_types()
    config = load_config(ROOT / "config" / "demo.yaml", connector_types=config_models(types))
    runtime = Runtime(config, types)
    await runtime.start(poll=False)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()
    rows = []
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        for what, path in ANSWERS:
            sizes = []
            items = 0
            for query in ("", "include=references"):
                url = path + (("&" if "?" in path else "?") + query if query else "")
                for encoding in ("identity", "gzip"):
                    response = await client.get(
                        url, headers={"Accept-Encoding": encoding}, auto_decompress=False
                    )
                    body = await response.read()
                    assert response.status == 200, (url, body[:300])
                    sizes.append(len(body))
                    if encoding == "identity" and not query:
                        items = _count(orjson.loads(body))
            rows.append((what, path, items, *sizes))
    await runtime.stop()
    return rows


def _count(answer: dict) -> int:
    """Departures, calls or vehicles in the answer: what repeats its lines and stops."""
    data = answer.get("data", answer)
    if isinstance(data, list):
        return sum(len(b.get("departures", [])) for b in data) or len(data)
    if "features" in data:
        return len(data["features"])
    if "calls" in data:
        return len(data["calls"])
    if "groups" in data:
        return sum(len(g["departures"]) for g in data["groups"])
    return len(data.get("departures", []))


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    rows = asyncio.run(measure())
    print("| Answer | items | bytes | gzipped | with references | gzipped |")
    print("|---|---:|---:|---:|---:|---:|")
    for what, path, items, raw, gz, ref_raw, ref_gz in rows:
        print(
            f"| {what} (`{path}`) | {items} | {raw:,} | {gz:,} | "
            f"{ref_raw:,} ({ref_raw / raw - 1:+.0%}) | {ref_gz:,} ({ref_gz / gz - 1:+.0%}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

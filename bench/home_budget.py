"""The home screen's budget: p50 of GET /v1/home in-process on the demo data, and its size.

    .venv/bin/python bench/home_budget.py --requests 500
    .venv/bin/python bench/home_budget.py --requests 500 --no-cache   # every answer computed

Side by side with GET /healthz through the same in-process client (the floor: what the
test client and the middlewares cost on their own). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parents[1]
PLACES = {
    "San Francisco station (departures, realtime)": "lat=37.7764&lon=-122.3949",
    "Rouen cathedral (bike stations)": "lat=49.4402&lon=1.0944",
    "Paris 15e (events)": "lat=48.8302&lon=2.3017",
}


async def measure(requests: int, cache: bool = True) -> list[tuple[str, float, float, int, int]]:
    from aggregator.api.app import create_app
    from aggregator.config import load_config
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    types = discover_connector_types()
    config = load_config(ROOT / "config" / "demo.yaml", connector_types=config_models(types))
    if not cache:  # without the response micro-cache, each request computes its answer
        server = config.server.model_copy(update={"response_cache_ttl": None})
        config = config.model_copy(update={"server": server})
    runtime = Runtime(config, types)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()
    rows = []
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        cases = {name: f"/v1/home?{query}" for name, query in PLACES.items()}
        cases["floor: /healthz"] = "/healthz"
        for name, path in cases.items():
            for _ in range(20):  # warm-up
                await client.get(path)
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                response = await client.get(path)
                body = await response.read()
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            rows.append(
                (
                    name,
                    statistics.median(times),
                    times[int(len(times) * 0.99) - 1],
                    len(body),
                    len(gzip.compress(body, 5)),
                )
            )
    await runtime.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per case")
    parser.add_argument("--no-cache", action="store_true", help="disable the response cache")
    args = parser.parse_args()
    rows = asyncio.run(measure(args.requests, cache=not args.no_cache))
    flag = " --no-cache" if args.no_cache else ""
    print(f"`.venv/bin/python bench/home_budget.py --requests {args.requests}{flag}`\n")
    print("| request | p50 ms | p99 ms | body bytes | gzipped bytes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, p50, p99, size, zipped in rows:
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {size:,} | {zipped:,} |")


if __name__ == "__main__":
    main()

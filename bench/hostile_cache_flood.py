"""The response-cache flood of issue 14: how much a server's memory grows when one client asks
for one big answer 4,000 times, each time with a different ``Accept-Language``.

A real ``beffroi serve`` process (core 0) serves a json_records source of 500 translated
records read from a local file, so that ``/v1/sources/big/records?limit=500`` is about 450 KB
of JSON; the client (core 1) asks for it without gzip (so each cached copy is full size) with
4,000 distinct ``Accept-Language`` values, ``--concurrency`` at a time. The server's VmRSS is
read from ``/proc/<pid>/status`` after a warm-up (one request per language, gzip or not) and
after the flood; VmHWM gives the peak.

    .venv/bin/python bench/hostile_cache_flood.py
    .venv/bin/python bench/hostile_cache_flood.py --budget 8MB   # a smaller cache budget
    .venv/bin/python bench/hostile_cache_flood.py --vary limit   # distinct answers instead

``--vary limit`` asks for ``limit=500, 499, ... 201`` in turn (300 distinct answers of 270 to
450 KB, all cacheable): what the byte budget alone has to hold back.

Target: the flood grows the resident memory by no more than the cache's byte budget + 20 MB.
Run with ``PYTHONPATH=DIR`` to measure a clean export (see ``benchlib.code_root``); without
``--budget`` the config leaves ``server.response_cache_bytes`` at its default (32 MB), so an
export from before the option existed runs too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
from api_overhead import free_port, pinned
from benchlib import code_root, header, wait_ready

from aggregator.config.types import parse_byte_size

DEFAULT_BUDGET = 32_000_000
PATH = "/v1/sources/big/records?limit=500"
MB = 1e6


def write_config(folder: Path, port: int, budget: str | None) -> Path:
    records = [
        {
            "code": f"S{n:04d}",
            "nom": f"Arrêt {n} — " + "description française " * 38,
            "name_en": f"Stop {n} - " + "english description " * 38,
            "kind": "stop",
        }
        for n in range(500)
    ]
    (folder / "big.json").write_text(json.dumps(records))
    budget_line = f"  response_cache_bytes: {budget}\n" if budget else ""
    path = folder / "flood.yaml"
    path.write_text(
        f"""server:
  port: {port}
  response_cache_ttl: 10s
{budget_line}defaults:
  languages: [fr, en]
  allow_file_urls: true
connectors:
  - id: big
    type: json_records
    url: file:big.json
    refresh: 1h
    required: true
    id_field: code
    fields:
      label: {{translations: {{fr: nom, en: name_en}}}}
      kind: kind
"""
    )
    return path


def status_mb(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {field} for {pid}")
    return int(found.group(1)) * 1024 / MB


def languages(count: int) -> list[str]:
    """Distinct Accept-Language values, the shapes browsers send and some they do not."""
    shapes = ["fr-FR,fr;q=0.{n},en;q=0.1", "en-x-{n},en;q=0.9", "zz-{n}", "de;q=0.{n}, *;q=0.5"]
    return [shapes[n % len(shapes)].format(n=n + 1) for n in range(count)]


async def flood(base: str, count: int, concurrency: int, vary: str) -> dict[str, object]:
    statuses: dict[int, int] = {}
    sizes: set[int] = set()
    if vary == "language":
        queue = [(PATH, value) for value in reversed(languages(count))]
    else:
        path = PATH.replace("limit=500", "limit={}")
        queue = [(path.format(500 - n % 300), "fr") for n in reversed(range(count))]
    started = time.perf_counter()

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            path, value = queue.pop()
            headers = {"Accept-Language": value, "Accept-Encoding": "identity"}
            async with session.get(base + path, headers=headers) as answer:
                body = await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                sizes.add(len(body) // 1000)

    async with aiohttp.ClientSession(auto_decompress=False) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return {
        "statuses": statuses,
        "body_kb": sorted(sizes),
        "seconds": time.perf_counter() - started,
    }


def cache_counts(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics").text
    found = re.findall(r'beffroi_response_cache_total\{outcome="(\w+)"\} ([\d.e+]+)', text)
    return {outcome: float(value) for outcome, value in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--budget", help="server.response_cache_bytes (default: not set)")
    parser.add_argument("--vary", choices=["language", "limit"], default="language")
    args = parser.parse_args()
    budget = parse_byte_size(args.budget) if args.budget else DEFAULT_BUDGET

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="beffroi-flood-") as tmp:
        config = write_config(Path(tmp), port, args.budget)
        server = subprocess.Popen(
            pinned(0, [sys.executable, "-m", "aggregator.cli", "serve", "-c", str(config)]),
            cwd=code_root(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"{base}/readyz", 60, server)
            os.sched_setaffinity(0, {1})
            for language in ("fr", "en"):
                for encoding in ("identity", "gzip"):
                    headers = {"Accept-Language": language, "Accept-Encoding": encoding}
                    httpx.get(base + PATH, headers=headers).raise_for_status()
            time.sleep(0.5)
            before = status_mb(server.pid, "VmRSS")
            peak_before = status_mb(server.pid, "VmHWM")
            result = asyncio.run(flood(base, args.requests, args.concurrency, args.vary))
            time.sleep(0.5)
            after = status_mb(server.pid, "VmRSS")
            peak = status_mb(server.pid, "VmHWM")
            counts = cache_counts(base)
        finally:
            server.terminate()
            server.wait()

    growth, peak_growth = after - before, peak - peak_before
    target = budget / MB + 20
    print(header())
    kb = result["body_kb"]
    varied = (
        "each with its own Accept-Language"
        if args.vary == "language"
        else "limit varying over 300 values"
    )
    print(
        f"{args.requests} requests for `{PATH}` (bodies of {kb[0]}-{kb[-1]} KB, no gzip), "
        f"{varied}, {args.concurrency} at a time, in "
        f"{result['seconds']:.1f} s; statuses {result['statuses']}; cache outcomes {counts}.\n"
    )
    print("| cache budget | RSS before | RSS after | growth | peak growth | target |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {budget / MB:.0f} MB | {before:.0f} MB | {after:.0f} MB | {growth:+.0f} MB "
        f"| {peak_growth:+.0f} MB | ≤ {target:.0f} MB: {'met' if growth <= target else 'MISSED'} |"
    )


if __name__ == "__main__":
    main()

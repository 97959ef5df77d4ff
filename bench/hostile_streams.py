"""Hostile stream clients against a real server process: its resident memory before and after.

The demo config is served on core 0 by a child process; this script, on core 1, plays one
client (127.0.0.1) that:

1. asks ``--made-up`` streams on distinct made-up stop and line ids (the leak of issue 14
   grew the server from 117 to 264 MB with 12,400 of them): each must be a 404 problem;
2. opens and closes ``--cycles`` streams on valid Caltrain stops and lines, ``--concurrency``
   at a time (under ``server.max_streams_per_client``), reading each stream's first event
   before closing it.

The server's VmRSS (``/proc/<pid>/status``) is read after a warm-up of each phase and at its
end, once the server has let go of the closed streams. Target: the cycles grow it by under
10 MB.

    .venv/bin/python bench/hostile_streams.py              # 12,400 made-up ids, 20,000 cycles
    .venv/bin/python bench/hostile_streams.py --cycles 2000 --made-up 1500   # a quick look

The server runs the code ``benchlib.code_root()`` finds: run with ``PYTHONPATH=.`` if the
virtualenv's editable install points at another checkout, or ``PYTHONPATH=DIR`` to measure
another version (the original leak, for instance).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import aiohttp
from api_overhead import free_port, pinned
from benchlib import code_root, header, table, wait_ready

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "demo.yaml"
CALTRAIN = ROOT / "config" / "demo-data" / "caltrain-2023-11.gtfs.zip"
#: Requests left out of each phase's growth: the server's bounded caches filling up.
WARM_UP = 1000
#: Longer than the server's check for streams whose client left (1 s).
SETTLE_S = 3.0


def rss_mb(pid: int) -> float:
    with Path(f"/proc/{pid}/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def caltrain_ids() -> tuple[list[str], list[str]]:
    """Every stop and line id of the demo's Caltrain timetable, as the API names them."""
    with zipfile.ZipFile(CALTRAIN) as feed:

        def rows(name: str) -> list[dict[str, str]]:
            text = feed.read(name).decode("utf-8-sig")
            return list(csv.DictReader(io.StringIO(text)))

        stops = [f"caltrain:{row['stop_id']}" for row in rows("stops.txt")]
        lines = [f"caltrain:{row['route_id']}" for row in rows("routes.txt")]
    return stops, lines


async def run_phase(base: str, urls: list[str], concurrency: int) -> collections.Counter[str]:
    """Ask each URL once, ``concurrency`` at a time; the outcomes counted by status. A stream
    is read up to the end of its first event, then closed."""
    outcomes: collections.Counter[str] = collections.Counter()
    queue = iter(urls)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def worker() -> None:
            for path in queue:
                try:
                    async with session.get(base + path) as response:
                        if response.status == 200:
                            while (await response.content.readline()) not in (b"\n", b""):
                                pass  # up to the end of the first event, then close
                        else:
                            await response.read()
                        outcomes[str(response.status)] += 1
                except (TimeoutError, aiohttp.ClientError) as error:
                    outcomes[type(error).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def measure(base: str, pid: int, name: str, urls: list[str], args: argparse.Namespace) -> dict:
    """One phase: a warm-up, then the rest, RSS read between and after."""
    concurrency = args.concurrency
    start_mb = rss_mb(pid)
    warm = asyncio.run(run_phase(base, urls[:WARM_UP], concurrency))
    time.sleep(SETTLE_S)
    before_mb = rss_mb(pid)
    started = time.perf_counter()
    outcomes = asyncio.run(run_phase(base, urls[WARM_UP:], concurrency))
    took = time.perf_counter() - started
    time.sleep(SETTLE_S)
    after_mb = rss_mb(pid)
    outcomes.update(warm)
    return {
        "name": name,
        "requests": len(urls),
        "outcomes": dict(outcomes),
        "start_mb": start_mb,
        "before_mb": before_mb,
        "after_mb": after_mb,
        "per_s": (len(urls) - WARM_UP) / took,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20_000, help="streams on valid ids")
    parser.add_argument("--made-up", type=int, default=12_400, help="streams on made-up ids")
    parser.add_argument("--concurrency", type=int, default=4, help="streams open at once")
    args = parser.parse_args()
    if min(args.cycles, args.made_up) <= WARM_UP:
        raise SystemExit(f"--cycles and --made-up must be above the warm-up ({WARM_UP})")

    stops, lines = caltrain_ids()
    made_up = [
        f"/v1/stream?stops=caltrain:made-up-{n}&lines=caltrain:made-up-line-{n}"
        for n in range(args.made_up)
    ]
    cycles = [
        f"/v1/stream?stops={stops[n % len(stops)]}&lines={lines[n % len(lines)]}"
        for n in range(args.cycles)
    ]
    port = free_port()
    server = subprocess.Popen(
        pinned(0, [sys.executable, "-m", "aggregator.cli", "serve", "-c", str(CONFIG)]),
        cwd=code_root(),  # the code measured (see benchlib.code_root)
        env={**os.environ, "BEFFROI_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", 60, server)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {1})
        ready_mb = rss_mb(server.pid)
        phases = [
            measure(base, server.pid, "made-up ids", made_up, args),
            measure(base, server.pid, "cycles", cycles, args),
        ]
    finally:
        server.terminate()
        server.wait()

    print(header())
    print(
        f"Server ready at {ready_mb:.1f} MB; {len(stops)} Caltrain stops and {len(lines)} "
        f"lines; {args.concurrency} streams at a time; growth counted after the first "
        f"{WARM_UP} requests of each phase, RSS read {SETTLE_S:.0f} s after the last.\n"
    )
    rows = [
        [
            phase["name"],
            f"{phase['requests']:,}",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(phase["outcomes"].items())),
            f"{phase['per_s']:.0f}",
            f"{phase['start_mb']:.1f}",
            f"{phase['before_mb']:.1f}",
            f"{phase['after_mb']:.1f}",
            f"{phase['after_mb'] - phase['before_mb']:+.1f}",
        ]
        for phase in phases
    ]
    print(
        table(
            ["phase", "streams", "answers", "per s", "RSS start MB", "warmed up", "end", "growth"],
            rows,
            [False, True, False, True, True, True, True, True],
        )
    )
    cycles_growth = phases[1]["after_mb"] - phases[1]["before_mb"]
    verdict = "met" if cycles_growth < 10 else "NOT met"
    print(f"\nTarget (cycles grow RSS by under 10 MB): {verdict} ({cycles_growth:+.1f} MB).")


if __name__ == "__main__":
    main()

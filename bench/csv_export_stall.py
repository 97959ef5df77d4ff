"""How long a large CSV export holds the event loop, before and after moving it to a thread.

A server process (``--serve``) holds ``--occurrences`` generated events (French titles,
places around Lille, a description of about 1,100 characters each: a 10,000-row export is
about 14 MB of CSV) behind ``create_app`` on a real socket on 127.0.0.1, with a ticker task
that sleeps 1 ms at a time and notes how late each wake-up is. A client process (``--client``,
its own interpreter: it does not compete for the server's GIL) asks, ``--runs`` times, for
``/v1/events.csv`` of the whole set (gzip accepted, a different ``from`` each run so that no
finished export is reused) while it asks for a small JSON page (``/v1/events?limit=5``) over
and over on a second connection; then it asks for the same export again, and revalidates it
with its ``ETag`` (the 304).

Each of the two code versions runs in its own server process, one after the other in the
same invocation: ``--before REF`` (a ``git archive`` of that commit) and the working tree.

    .venv/bin/python bench/csv_export_stall.py --before ec09eea --occurrences 10000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "agenda"
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
SMALL = "/v1/events?limit=5"
TICK_S = 0.001


def make_records(occurrences: int) -> list[dict[str, Any]]:
    """``occurrences`` one-off events of 2026 around Lille, with a long description."""
    import random
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from connectors.events.model import make_occurrence

    paris = ZoneInfo("Europe/Paris")
    rng = random.Random(7)
    words = ["atelier", "concert", "quartier", "musée", "jardin", "lecture", "famille"]
    records = []
    for number in range(occurrences):
        start = datetime(2026, 1, 2, 9, tzinfo=paris) + timedelta(minutes=50 * number)
        text = " ".join(rng.choice(words) for _ in range(150))
        records.append(
            make_occurrence(
                source=SOURCE,
                uid=f"evt-{number:06d}@ville-exemple.fr",
                recurrence=start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"),
                channel="events",
                title={"fr": f"Événement {number} « {rng.choice(words)} »"},
                description={"fr": text},
                start=start,
                end=start + timedelta(minutes=90),
                timezone="Europe/Paris",
                location={"name": "Salle", "city": "Lille", "lat": 50.63, "lon": 3.06},
                categories=[rng.choice(words)],
                price={"free": True, "text": {}},
                url=f"https://www.ville-exemple.fr/agenda/{number}",
            )
        )
    return records


# --- the server ----------------------------------------------------------------------------


async def serve(occurrences: int) -> None:
    """Print the port, serve until a line comes on stdin, then print the ticks (JSON)."""
    from datetime import UTC, datetime

    from aiohttp import web

    from aggregator.api.app import create_app
    from aggregator.config import parse_config
    from aggregator.model import Snapshot
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    folder = Path(tempfile.mkdtemp())
    (folder / "empty.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    types = discover_connector_types()
    config = parse_config(
        CONFIG, filename="bench.yaml", connector_types=config_models(types), environ={},
        base_dir=folder,
    )  # fmt: skip
    runtime = Runtime(config, types)
    records = make_records(occurrences)
    runtime.live.adopt(
        Snapshot(
            source_id=SOURCE,
            source_type="ics",
            version=1,
            content_hash="bench",
            fetched_at=datetime.now(UTC),
            data=records,
            record_count=len(records),
        )
    )
    await runtime.live.settled()
    runtime.live.combined("events")
    runner = web.AppRunner(create_app(runtime, poll=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    # (wall time of the wake-up, how late it was in s): the client's windows pick from it.
    ticks: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(TICK_S)
            ticks.append((time.time(), loop.time() - before - TICK_S))

    task = asyncio.create_task(ticker())
    print(port, flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the client is done
    stop.set()
    await task
    print(json.dumps(ticks), flush=True)
    await runner.cleanup()


# --- the client ----------------------------------------------------------------------------


async def client(port: int, runs: int) -> list[dict[str, Any]]:
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    out = []
    big = aiohttp.ClientSession(base, auto_decompress=False)
    small = aiohttp.ClientSession(base)
    async with big, small:
        for _ in range(3):  # warm: imports, first page, connections
            await (await small.get(SMALL)).read()
        for run in range(runs):
            path = f"/v1/events.csv?from=2026-01-01T00:00:{run:02d}Z&to=2026-12-31"
            headers = {"Accept-Encoding": "gzip"}
            done = asyncio.Event()
            latencies: list[float] = []

            async def pester(
                done: asyncio.Event = done, latencies: list[float] = latencies
            ) -> None:
                while not done.is_set():
                    started = time.perf_counter()
                    async with small.get(SMALL) as answer:
                        await answer.read()
                        assert answer.status == 200
                    latencies.append(time.perf_counter() - started)

            pesterer = asyncio.create_task(pester())
            await asyncio.sleep(0.05)
            window_start = time.time()
            started = time.perf_counter()
            async with big.get(path, headers=headers) as answer:
                body = await answer.read()
                assert answer.status == 200, answer.status
                etag = answer.headers["ETag"]
            export_s = time.perf_counter() - started
            window_end = time.time()
            done.set()
            await pesterer
            started = time.perf_counter()
            async with big.get(path, headers=headers) as answer:
                await answer.read()
            repeat_s = time.perf_counter() - started
            started = time.perf_counter()
            async with big.get(path, headers={**headers, "If-None-Match": etag}) as answer:
                await answer.read()
                assert answer.status == 304
            revalidate_s = time.perf_counter() - started
            out.append(
                {
                    "window": [window_start, window_end],
                    "export_s": export_s,
                    "gzip_bytes": len(body),
                    "csv_bytes": len(gzip.decompress(body)),
                    "small_s": latencies,
                    "repeat_s": repeat_s,
                    "revalidate_s": revalidate_s,
                }
            )
    return out


# --- the orchestration ---------------------------------------------------------------------


def measure(code: Path, occurrences: int, runs: int) -> list[dict[str, Any]]:
    """One server of the code in ``code``, one client; the runs with the ticks of each."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    script = str(Path(__file__).resolve())
    server = subprocess.Popen(
        [sys.executable, script, "--serve", "--occurrences", str(occurrences)],
        env=env, cwd=tempfile.mkdtemp(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert server.stdin is not None and server.stdout is not None
    try:
        port = int(server.stdout.readline())
        result = subprocess.run(
            [sys.executable, script, "--client", str(port), "--runs", str(runs)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        measured = json.loads(result.stdout)
        server.stdin.write("done\n")
        server.stdin.flush()
        ticks = json.loads(server.stdout.readline())
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    for run in measured:
        low, high = run["window"]
        gaps = [late for at, late in ticks if low <= at <= high + 0.05]
        run["worst_gap_s"] = max(gaps, default=float("nan"))
    return measured


def export_tree(ref: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="beffroi-before-"))
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def summary(name: str, runs: list[dict[str, Any]]) -> list[str]:
    med = statistics.median
    small = [s for run in runs for s in run["small_s"]]
    return [
        name,
        f"{med(r['export_s'] for r in runs) * 1000:.0f}",
        f"{med(r['worst_gap_s'] for r in runs) * 1000:.1f}",
        f"{max(r['worst_gap_s'] for r in runs) * 1000:.1f}",
        f"{med(small) * 1000:.1f}",
        f"{max(small) * 1000:.1f}",
        f"{med(len(r['small_s']) for r in runs):.0f}",
        f"{med(r['repeat_s'] for r in runs) * 1000:.1f}",
        f"{med(r['revalidate_s'] for r in runs) * 1000:.1f}",
        f"{med(r['csv_bytes'] for r in runs) / 1e6:.2f}"
        f" ({med(r['gzip_bytes'] for r in runs) / 1e6:.2f})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="the commit to compare with (git archive)")
    parser.add_argument("--occurrences", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.occurrences))
        return
    if args.client is not None:
        print(json.dumps(asyncio.run(client(args.client, args.runs))))
        return
    versions = [("working tree", ROOT)]
    if args.before:
        versions.insert(0, (f"before ({args.before})", export_tree(args.before)))
    rows = [summary(name, measure(code, args.occurrences, args.runs)) for name, code in versions]
    headers = [
        "code", "export ms", "worst loop gap ms (median of runs)", "worst loop gap ms (max)",
        "small JSON p50 ms", "small JSON max ms", "small JSONs during export",
        "same export again ms", "304 ms", "CSV MB (gzip)",
    ]  # fmt: skip
    print(f"{args.occurrences} events, {args.runs} runs per version\n")
    print("| " + " | ".join(headers) + " |")
    print("| --- |" + " ---: |" * (len(headers) - 1))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

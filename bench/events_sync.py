"""Sync answer sizes and times on the demo's real events: a full sync, an empty delta, a delta
after an edit upstream, against a plain list page and the old ``updated_since`` form.

    .venv/bin/python bench/events_sync.py --requests 50

The demo's two event sources (the Paris OpenAgenda export, the machBar calendar) are read
from a temporary copy, so the calendar can be edited between polls (one event renamed, one
removed, one added). Sizes are the bodies summed over every page (``limit=100``), raw and
gzipped (what goes over the wire); times are medians of in-process requests. Run it with
``PYTHONPATH=<export of an older commit>`` to measure the old ``updated_since`` answer.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "config" / "demo-data"
ICS = "machbar-potsdam-2019.ics"
CONFIG = """
server:
  response_cache_ttl: null   # every request computed, not answered from the micro-cache
clock:
  fixed: 2023-11-07T17:06:00-08:00
defaults:
  timezone: Europe/Paris
  languages: [fr, en]
  allow_file_urls: true
connectors:
  - id: paris-events
    type: opendatasoft
    export_url: file:openagenda-paris-events-ods-v1.json
    timezone: Europe/Paris
  - id: machbar
    type: ics
    url: file:machbar-potsdam-2019.ics
    categories: [atelier]
"""


def edit(ics: str, present: set[str]) -> tuple[str, str, str]:
    """The calendar with one event renamed, one removed and one added (the first two among
    the events with occurrences in the window, ``present`` UIDs); and the two UIDs."""
    head, _, rest = ics.partition("BEGIN:VEVENT")
    parts = ("BEGIN:VEVENT" + rest).split("END:VEVENT")
    blocks, tail = [b + "END:VEVENT" for b in parts[:-1]], parts[-1]

    def uid(block: str) -> str:
        return next(line[4:].strip() for line in block.splitlines() if line.startswith("UID:"))

    uids = [uid(b) for b in blocks]
    chosen = [b for b in blocks if uid(b) in present and uids.count(uid(b)) == 1]
    renamed, removed = chosen[0], chosen[1]
    added = renamed.replace("UID:", "UID:bench-added-").replace("SUMMARY:", "SUMMARY:New ")
    kept = [b.replace("SUMMARY:", "SUMMARY:Renamed ") if b is renamed else b for b in blocks]
    text = head + "".join(b for b in kept if b is not removed) + added + tail
    return text, uid(renamed), uid(removed)


async def fetch_all(
    client: TestClient, path: str, sizes: bool = True
) -> tuple[int, int, int, str | None, dict]:
    """Pages, raw bytes, gzipped bytes (when ``sizes``), the final sync token, the last body."""
    pages = raw = zipped = 0
    cursor = ""
    while True:
        response = await client.get(path + cursor)
        body = await response.read()
        if response.status != 200:
            return 0, 0, 0, None, {"status": response.status}
        pages += 1
        raw += len(body)
        zipped += len(gzip.compress(body, 6)) if sizes else 0
        data = await response.json()
        meta = data["meta"]
        if not meta.get("next_cursor"):
            return pages, raw, zipped, meta.get("sync_token"), data
        cursor = f"&cursor={meta['next_cursor']}"


async def timed(client: TestClient, path: str, requests: int) -> float:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        await fetch_all(client, path, sizes=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def measure(requests: int) -> list[tuple[str, int, int, int, float]]:
    workdir = Path(tempfile.mkdtemp(prefix="beffroi-sync-bench-"))
    try:
        for name in (ICS, "openagenda-paris-events-ods-v1.json"):
            shutil.copy(DATA / name, workdir / name)
        runtime = make_runtime(CONFIG, workdir)
        for source_id in runtime.connectors:
            await runtime.poll_once(source_id)
        await runtime.live.settled()
        rows = []
        async with TestClient(TestServer(create_app_of(runtime))) as client:
            old = "/v1/events?updated_since=2000-01-01T00:00:00Z"
            pages, raw, zipped, _, body = await fetch_all(client, old)
            if pages:
                t = await timed(client, old, requests)
                rows.append(("old: updated_since=2000-01-01 (everything)", pages, raw, zipped, t))
            listed = "/v1/events?limit=100"
            pages, raw, zipped, _, _ = await fetch_all(client, listed)
            rows.append(
                (
                    "peer: list page, default window",
                    pages,
                    raw,
                    zipped,
                    await timed(client, listed, requests),
                )
            )
            start = "/v1/events?limit=100&sync=start"
            pages, raw, zipped, token, _ = await fetch_all(client, start)
            if token is None:
                return rows  # an older commit: no sync
            rows.append(
                (
                    "sync=start (every occurrence)",
                    pages,
                    raw,
                    zipped,
                    await timed(client, start, requests),
                )
            )
            (workdir / ICS).write_text(
                (DATA / ICS).read_text().replace("X-WR-CALNAME:", "X-WR-CALNAME:v2 ")
            )
            for source_id in runtime.connectors:
                await runtime.poll_once(source_id)
            await runtime.live.settled()
            same = f"/v1/events?limit=100&sync={token}"
            pages, raw, zipped, token2, _ = await fetch_all(client, same)
            rows.append(
                (
                    "delta, identical content re-polled",
                    pages,
                    raw,
                    zipped,
                    await timed(client, same, requests),
                )
            )
            index = runtime.live.combined("events")
            present = {r["uid"] for r in index.records if r["source"] == "machbar"}
            text, renamed, removed = edit((DATA / ICS).read_text(), present)
            counts = {u: sum(r["uid"] == u for r in index.records) for u in (renamed, removed)}
            (workdir / ICS).write_text(text)
            for source_id in runtime.connectors:
                await runtime.poll_once(source_id)
            await runtime.live.settled()
            delta = f"/v1/events?limit=100&sync={token2}"
            pages, raw, zipped, _, body = await fetch_all(client, delta)
            label = (
                f"delta, 3 events edited upstream: renamed ({counts[renamed]} occurrences), "
                f"removed ({counts[removed]}), added "
                f"({len(body['data']['changed'])} changed, {len(body['data']['removed'])} removed)"
            )
            rows.append((label, pages, raw, zipped, await timed(client, delta, requests)))
        return rows
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def make_runtime(text: str, base_dir: Path) -> Any:
    from aggregator.config.loader import parse_config
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    types = discover_connector_types()
    config = parse_config(
        text,
        filename="bench.yaml",
        connector_types=config_models(types),
        environ={},
        base_dir=base_dir,
    )
    return Runtime(config, types)


def create_app_of(runtime: Any) -> Any:
    from aggregator.api.app import create_app

    return create_app(runtime, poll=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.requests))
    print("| answer | pages | bytes | gzip bytes | median ms (all pages) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, pages, raw, zipped, ms in rows:
        print(f"| {name} | {pages} | {raw:,} | {zipped:,} | {ms:.1f} |")


if __name__ == "__main__":
    main()

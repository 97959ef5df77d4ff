"""Soak: Beffroi's memory and errors over a long run at moderate load, its feeds really changing.

The demo config is copied to a temp folder with its demo data, with a running clock
(``clock: {start: ...}``) instead of a fixed one, and three sources refreshing every
``--refresh`` seconds from a tiny local upstream (a child process of this script) whose
answers change on every poll, so every poll builds a new snapshot:

- ``lovelo-stations`` (json_records) and ``lovelo-bikes`` (gbfs): the Lovélo JSON with
  capacities and bike counts alternating between two versions;
- ``caltrain-rt`` (gtfs_rt): the Caltrain captures with header and entity timestamps moving
  with the clock and trip-update delays alternating.

A client loop sends ``--rate`` requests/s rotating over four endpoints (departures, events,
sources, records), while the server's VmRSS is read from /proc every ``--sample`` seconds.
The server runs on core 0, this script (client and upstream) on core 1.

    .venv/bin/python bench/soak.py --duration 600

Prints a Markdown report (RSS curve, errors, source versions) and writes the raw samples to
bench/out/soak-rss.csv.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
from api_overhead import free_port, pinned
from benchlib import code_root, header, wait_ready

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo-data"
OUT = ROOT / "bench" / "out"
ENDPOINTS = [
    "/v1/stops/caltrain:san_francisco/departures?limit=10",
    "/v1/events?limit=20",
    "/v1/sources",
    "/v1/sources/lovelo-stations/records?limit=20",
]
RT_FILES = [
    "caltrain-2023-11-08T0105Z-trip-updates.pb",
    "caltrain-2023-11-08T0105Z-vehicle-positions.pb",
    "caltrain-2023-11-08T0105Z-service-alerts.pb",
]
CHANGING = ["lovelo-stations", "lovelo-bikes", "caltrain-rt"]


# --- the upstream: a child process whose feeds change on every request -------------------


def serve_upstream(port: int) -> None:
    """Serve changing versions of the Lovélo JSON and Caltrain realtime feeds on ``port``."""
    from aiohttp import web
    from google.transit import gtfs_realtime_pb2 as pb

    started = time.time()
    hits: dict[str, int] = {}
    info = json.loads((DEMO / "lovelo-station-information.json").read_text())
    status = json.loads((DEMO / "lovelo-station-status.json").read_text())
    realtime = {}
    for name in RT_FILES:
        message = pb.FeedMessage()
        message.ParseFromString((DEMO / name).read_bytes())
        realtime[name] = message

    def lovelo_info(n: int) -> bytes:
        data = json.loads(json.dumps(info))
        data["last_updated"], data["ttl"] = int(started) + n, 0
        for station in data["data"]["stations"]:
            if n % 2 and "capacity" in station:
                station["capacity"] = int(station["capacity"]) + 1
        return json.dumps(data).encode()

    def lovelo_status(n: int) -> bytes:
        data = json.loads(json.dumps(status))
        data["last_updated"], data["ttl"] = int(started) + n, 0
        for station in data["data"]["stations"]:
            if n % 2 and "num_bikes_available" in station:
                station["num_bikes_available"] = max(0, int(station["num_bikes_available"]) - 1)
        return json.dumps(data).encode()

    def rt(name: str, n: int) -> bytes:
        message = pb.FeedMessage()
        message.CopyFrom(realtime[name])
        shift = int(time.time() - started)  # the server's clock runs from the capture time
        message.header.timestamp += shift
        for entity in message.entity:
            if entity.HasField("trip_update"):
                update = entity.trip_update
                if update.timestamp:
                    update.timestamp += shift
                for stop in update.stop_time_update:
                    for event in (stop.arrival, stop.departure):
                        if event.time:
                            event.time += 60 * (n % 2)
            if entity.HasField("vehicle") and entity.vehicle.timestamp:
                entity.vehicle.timestamp += shift
        return message.SerializeToString()

    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        n = hits[name] = hits.get(name, 0) + 1
        if name == "lovelo-station-information.json":
            return web.Response(body=lovelo_info(n), content_type="application/json")
        if name == "lovelo-station-status.json":
            return web.Response(body=lovelo_status(n), content_type="application/json")
        if name in realtime:
            return web.Response(body=rt(name, n), content_type="application/x-protobuf")
        raise web.HTTPNotFound()

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(hits)

    app = web.Application()
    app.router.add_get("/_hits", stats)
    app.router.add_get("/{name}", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the config --------------------------------------------------------------------------


def write_config(folder: Path, upstream: str, refresh: str) -> Path:
    """The demo config, its clock running, three sources polling the local upstream."""
    shutil.copytree(DEMO, folder / "demo-data")
    text = (ROOT / "config" / "demo.yaml").read_text()
    text = text.replace("  fixed: 2023-11-07T17:06:00-08:00", "  start: 2023-11-07T17:06:00-08:00")
    text = text.replace(
        "url: file:demo-data/lovelo-station-information.json\n    refresh: 10m",
        f"url: {upstream}/lovelo-station-information.json\n    refresh: {refresh}",
    )
    text = text.replace(
        "      station_information: file:demo-data/lovelo-station-information.json\n"
        "      station_status: file:demo-data/lovelo-station-status.json\n"
        "    refresh: 1m",
        f"      station_information: {upstream}/lovelo-station-information.json\n"
        f"      station_status: {upstream}/lovelo-station-status.json\n"
        f"    refresh: {refresh}",
    )
    for name in RT_FILES:
        text = text.replace(f"file:demo-data/{name}", f"{upstream}/{name}")
    text = text.replace("    refresh: 30s\n", f"    refresh: {refresh}\n")
    assert text.count(upstream) == 6 and text.count(f"refresh: {refresh}") == 3, text
    path = folder / "soak.yaml"
    path.write_text(text)
    return path


# --- load and samples --------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with Path(f"/proc/{pid}/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def soak(base: str, pid: int, args: argparse.Namespace) -> dict:
    counts = {"ok": 0, "http_errors": 0, "socket_errors": 0}
    error_examples: list[str] = []
    latencies: list[float] = []
    samples: list[tuple[float, float, int, int]] = []
    in_flight: set[asyncio.Task] = set()
    started = time.monotonic()

    async def one(session: aiohttp.ClientSession, path: str) -> None:
        sent = time.perf_counter()
        try:
            async with session.get(base + path) as response:
                await response.read()
                if response.status >= 400:
                    counts["http_errors"] += 1
                    if len(error_examples) < 5:
                        error_examples.append(f"{response.status} {path}")
                else:
                    counts["ok"] += 1
        except (TimeoutError, aiohttp.ClientError) as error:
            counts["socket_errors"] += 1
            if len(error_examples) < 5:
                error_examples.append(f"{type(error).__name__} {path}")
        latencies.append((time.perf_counter() - sent) * 1000)

    async def sampler() -> None:
        while True:
            t = time.monotonic() - started
            done = counts["ok"] + counts["http_errors"] + counts["socket_errors"]
            errors = counts["http_errors"] + counts["socket_errors"]
            samples.append((round(t, 1), rss_mb(pid), done, errors))
            await asyncio.sleep(args.sample)

    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        sampling = asyncio.create_task(sampler())
        interval = 1 / args.rate
        i = 0
        while True:
            due = started + i * interval
            now = time.monotonic()
            if now - started >= args.duration:
                break
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(one(session, ENDPOINTS[i % len(ENDPOINTS)]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            i += 1
        if in_flight:
            await asyncio.wait(in_flight)
        sampling.cancel()
    t = time.monotonic() - started
    done = counts["ok"] + counts["http_errors"] + counts["socket_errors"]
    samples.append(
        (round(t, 1), rss_mb(pid), done, counts["http_errors"] + counts["socket_errors"])
    )
    return {
        "counts": counts,
        "examples": error_examples,
        "latencies": latencies,
        "samples": samples,
        "elapsed": t,
    }


def source_status(base: str, source: str) -> dict:
    body = httpx.get(f"{base}/v1/sources/{source}").json()
    return body.get("data", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--rate", type=float, default=100, help="requests per second")
    parser.add_argument("--connections", type=int, default=20, help="client connections")
    parser.add_argument("--refresh", default="2s", help="refresh of the changing sources")
    parser.add_argument("--sample", type=float, default=5, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=60, help="seconds left out of the trend")
    parser.add_argument("--csv", type=Path, default=OUT / "soak-rss.csv", help="raw samples")
    parser.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream_port:
        serve_upstream(args.upstream_port)
        return

    load_before = os.getloadavg()
    # The server's log, for its heap sweeps (aggregator.live logs each one at INFO).
    server_log = args.csv.with_name("soak-server.log")
    server_log.parent.mkdir(parents=True, exist_ok=True)
    log_file = server_log.open("w")
    upstream_port, server_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    with tempfile.TemporaryDirectory(prefix="beffroi-soak-") as tmp:
        config = write_config(Path(tmp), upstream, args.refresh)
        feeds = subprocess.Popen(
            pinned(1, [sys.executable, __file__, "--upstream-port", str(upstream_port)]),
            stdout=subprocess.DEVNULL,
        )
        server = subprocess.Popen(
            pinned(
                0,
                [
                    *[sys.executable, "-m", "aggregator.cli", "--log-level", "INFO"],
                    *["serve", "-c", str(config)],
                ],
            ),
            cwd=code_root(),  # the code measured (see benchlib.code_root)
            env={**os.environ, "BEFFROI_PORT": str(server_port)},
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            base = f"http://127.0.0.1:{server_port}"
            wait_ready(f"{base}/readyz", 60, server)
            os.sched_setaffinity(0, {1})
            before = {s: source_status(base, s) for s in CHANGING}
            result = asyncio.run(soak(base, server.pid, args))
            after = {s: source_status(base, s) for s in CHANGING}
            hits = httpx.get(f"{upstream}/_hits").json()
        finally:
            server.terminate()
            server.wait()
            feeds.terminate()
            feeds.wait()
            log_file.close()
    load_after = os.getloadavg()

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["t_s", "rss_mb", "requests", "errors"])
        writer.writerows((t, f"{rss:.2f}", n, e) for t, rss, n, e in result["samples"])

    samples = result["samples"]
    steady = [s for s in samples if s[0] >= args.warmup]
    third = max(1, len(steady) // 3)
    first, last = steady[:third], steady[-third:]
    first_avg = statistics.mean(s[1] for s in first)
    last_avg = statistics.mean(s[1] for s in last)
    counts = result["counts"]
    total = sum(counts.values())
    lat = sorted(result["latencies"])

    print(header())
    print(
        f"Load average before {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f}, after {load_after[0]:.2f} / {load_after[1]:.2f} / "
        f"{load_after[2]:.2f} (2 cores shared with other sessions).\n"
    )
    print(
        f"{result['elapsed']:.0f} s at {args.rate:g} requests/s over {len(ENDPOINTS)} endpoints "
        f"({total:,} requests, p50 {lat[len(lat) // 2]:.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99)]:.1f} ms); sources {', '.join(CHANGING)} "
        f"refresh every {args.refresh} from a local upstream that changes on every poll.\n"
    )
    print("| t (s) | RSS MB | requests | errors |")
    print("| ---: | ---: | ---: | ---: |")
    step = max(1, round(60 / args.sample))  # one row a minute
    rows = samples[::step]
    if rows[-1] is not samples[-1]:
        rows.append(samples[-1])
    for t, rss, n, e in rows:
        print(f"| {t:.0f} | {rss:.1f} | {n:,} | {e} |")
    print()
    print(
        f"RSS after warm-up ({args.warmup:g} s): first third {first_avg:.1f} MB, last third "
        f"{last_avg:.1f} MB ({(last_avg / first_avg - 1) * 100:+.1f} %); min "
        f"{min(s[1] for s in steady):.1f}, max {max(s[1] for s in steady):.1f} MB.\n"
    )
    print(
        f"Errors: {counts['http_errors']} HTTP >= 400, {counts['socket_errors']} socket/timeout"
        + (f" (e.g. {'; '.join(result['examples'])})" if result["examples"] else "")
        + ".\n"
    )
    print("| source | version before | version after | polls | failed polls | upstream hits |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for source in CHANGING:
        b, a = before[source], after[source]
        urls = {
            "lovelo-stations": ["lovelo-station-information.json"],
            "lovelo-bikes": ["lovelo-station-status.json"],
            "caltrain-rt": [RT_FILES[0]],
        }[source]
        upstream_hits = sum(hits.get(u, 0) for u in urls)
        print(
            f"| {source} | {b['version']} | {a['version']} | {a['polls']['total']} | "
            f"{a['polls']['failed']} | {upstream_hits} |"
        )
    sweeps = [line for line in server_log.read_text().splitlines() if "heap sweep:" in line]
    print(f"\nHeap sweeps (full collections, see aggregator.live) during the run: {len(sweeps)}.")
    for line in sweeps[:5]:
        print(f"- `{line.strip()}`")
    print(f"\nRaw samples: {args.csv}; server log: {server_log}")


if __name__ == "__main__":
    main()

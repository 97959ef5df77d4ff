"""The departures endpoint under load, side by side with a bare aiohttp ceiling.

    .venv/bin/python bench/gtfs_http.py --size 1M --duration 10 --runs 3 --limits 20,1

Serves one GTFS feed (a synthetic city feed from bench/make_feed.py, or --feed for a real
zip) with ``beffroi serve`` and, as the ceiling, bench/bare_server.py returning the bytes of
a typical answer. Both run on core 0 (taskset), wrk on core 1: ``wrk -t1 -c32`` with a Lua
script rotating over ``GET /v1/stops/{feed}:{stop}/departures?at=...`` for a few busy stops
at a few instants. The main cases run with the response cache off, so every answer is
computed; one more case runs a second server with the cache on (its default, 1 s), as a city
would deploy it. Runs alternate between the cases; the table holds medians, and the
server's CPU time per request (from /proc, so it does not count time spent waiting for the
core on a shared machine).
``--limits 20,1`` also loads the endpoint with ``limit=1``, to split the cost per request
into a fixed part and a part per departure returned.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
from api_overhead import free_port, pinned
from benchlib import code_root, feed_path, header, run_wrk, size_label, table, wait_ready
from make_feed import parse_count

from connectors.gtfs import compile_feed

BENCH = Path(__file__).resolve().parent
FEED_ID = "bench"
DAY = dt.date(2026, 11, 26)
HOURS = ((8, 5), (12, 40), (17, 50))
TARGET_RPS = 3000


def pick_paths(path: Path, n_stops: int, day: dt.date) -> tuple[list[str], int]:
    """Departure URLs for busy platforms at a few instants; and the compiled row count."""
    tt = compile_feed(path)
    rows = np.diff(tt.sd_ptr)
    busy = np.argsort(rows, kind="stable")[::-1][:n_stops]
    zone = tt.zones[0]
    paths = []
    for hour, minute in HOURS:
        at = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).isoformat()
        for stop in busy.tolist():
            stop_id = quote(f"{FEED_ID}:{tt.stop_ids[stop]}", safe=":")
            paths.append(f"/v1/stops/{stop_id}/departures?at={quote(at, safe='')}")
    return paths, tt.counts["stop_times"]


def write_config(folder: Path, feed: Path, port: int, day: dt.date, cache: bool) -> Path:
    server: dict[str, object] = {"host": "127.0.0.1", "port": port}
    if not cache:
        server["response_cache_ttl"] = None
    config = {
        "server": server,
        "store": {"backend": "memory"},
        "clock": {"fixed": f"{day}T08:00:00+01:00"},
        "defaults": {"timezone": "Europe/Paris", "languages": ["fr"], "allow_file_urls": True},
        "connectors": [
            {
                "id": FEED_ID,
                "type": "gtfs",
                "url": feed.resolve().as_uri(),
                "refresh": "24h",
                "required": True,
                "max_bytes": "2GB",
            }
        ],
    }
    target = folder / f"gtfs-bench-{'cached' if cache else 'computed'}.yaml"
    target.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return target


def write_script(folder: Path, name: str, paths: list[str]) -> Path:
    lines = ", ".join(json.dumps(p) for p in paths)
    script = folder / f"{name}.lua"
    script.write_text(
        f"local paths = {{{lines}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return script


def start(command: list[str], log: Path) -> subprocess.Popen:
    """Start a server on core 0; its stderr goes to ``log`` (shown if it fails).

    It runs from the code being measured (``python -m`` imports from its working folder).
    """
    with log.open("wb") as sink:
        return subprocess.Popen(
            pinned(0, command), cwd=code_root(), stdout=subprocess.DEVNULL, stderr=sink
        )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(process: subprocess.Popen) -> float:
    """User + system CPU time of a running process (taskset execs it: same pid)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Case:
    label: str
    url: str
    script: Path
    server: subprocess.Popen
    runs: list[dict[str, float]] = field(default_factory=list)

    def run(self, duration: int) -> dict[str, float]:
        before = cpu_seconds(self.server)
        result = run_wrk(self.url, duration, self.script)
        result["cpu_us"] = (cpu_seconds(self.server) - before) / max(1, result["requests"]) * 1e6
        return result

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)


def fetch_all(base: str, paths: list[str]) -> list[bytes]:
    bodies = []
    for path in paths:
        response = httpx.get(base + path)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
        bodies.append(response.content)
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=parse_count, default=1_000_000, help="synthetic feed rows")
    parser.add_argument("--feed", type=Path, help="a real GTFS zip instead of a synthetic feed")
    parser.add_argument(
        "--day",
        type=dt.date.fromisoformat,
        default=DAY,
        help=f"date asked for (default {DAY}; a real feed needs a date it covers)",
    )
    parser.add_argument("--stops", type=int, default=8, help="busy stops rotated over")
    parser.add_argument(
        "--limits", default="20", help="limit= values to load (20, the default, comes first)"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median kept)")
    parser.add_argument("--seed", type=int, default=2026, help="feed generator seed")
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration = 1, 3
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    limits = [int(v) for v in args.limits.split(",")]

    feed = args.feed or feed_path(args.size, args.seed)
    paths, compiled = pick_paths(feed, args.stops, args.day)
    folder = Path(tempfile.mkdtemp(prefix="beffroi-gtfs-http-"))
    beffroi_port, cached_port, bare_port = free_port(), free_port(), free_port()

    def serve(port: int, cache: bool) -> subprocess.Popen:
        config = write_config(folder, feed, port, args.day, cache)
        command = ["-m", "aggregator.cli", "--log-level", "WARNING", "serve", "-c", str(config)]
        name = "beffroi-cached.log" if cache else "beffroi.log"
        return start([sys.executable, *command], folder / name)

    beffroi = serve(beffroi_port, cache=False)
    cached = bare = None
    cases: list[Case] = []
    try:
        base = f"http://127.0.0.1:{beffroi_port}"
        wait_ready(f"{base}/readyz", 600, beffroi)
        cached = serve(cached_port, cache=True)
        wait_ready(f"http://127.0.0.1:{cached_port}/readyz", 600, cached)
        answers: dict[int, list[bytes]] = {}
        for limit in limits:
            limited = [p if limit == 20 else f"{p}&limit={limit}" for p in paths]
            answers[limit] = fetch_all(base, limited)
            script = write_script(folder, f"limit{limit}", limited)
            label = "Beffroi, departures endpoint" + ("" if limit == 20 else f", limit={limit}")
            cases.append(Case(label, f"{base}/", script, beffroi))
        with_cache = Case(
            "Beffroi, same URLs, response cache on (1 s)",
            f"http://127.0.0.1:{cached_port}/",
            cases[0].script,
            cached,
        )
        served = fetch_all(with_cache.url.rstrip("/"), paths)
        for path, one, other in zip(paths, served, answers[limits[0]], strict=True):
            # meta (generation time) differs between the two servers; data must not.
            if json.loads(one)["data"] != json.loads(other)["data"]:
                raise SystemExit(f"{path}: the cached server answers differently")
        cases.append(with_cache)
        bodies = answers[limits[0]]
        body = sorted(bodies, key=len)[len(bodies) // 2]
        (folder / "body.json").write_bytes(body)
        bare_command = [sys.executable, str(BENCH / "bare_server.py"), str(bare_port)]
        bare = start([*bare_command, str(folder / "body.json")], folder / "bare.log")
        wait_ready(f"http://127.0.0.1:{bare_port}/", 60, bare)
        ceiling = Case(
            "bare aiohttp, same bytes (ceiling)",
            f"http://127.0.0.1:{bare_port}/",
            cases[0].script,
            bare,
        )
        cases.append(ceiling)
        for case in cases:
            case.run(2)  # warm-up
        for i in range(args.runs):
            for case in cases:
                case.runs.append(case.run(args.duration))
            print(
                f"run {i + 1}/{args.runs}: "
                + ", ".join(f"{c.label} {c.runs[-1]['rps']:,.0f} req/s" for c in cases),
                file=sys.stderr,
            )
    except BaseException:
        for log in sorted(folder.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        stop(beffroi)
        for process in (cached, bare):
            if process is not None:
                stop(process)
        shutil.rmtree(folder, ignore_errors=True)

    print(header())
    source = feed.name if args.feed else f"synthetic {size_label(args.size)}"
    print(
        f"Feed: {source} ({compiled:,} compiled stop times). `GET /v1/stops/{FEED_ID}:"
        f"{{stop}}/departures?at=...` rotating over {len(paths)} URLs ({args.stops} busiest "
        f"stops x {len(HOURS)} instants of {args.day}). Server on core 0, `wrk -t1 -c32` on "
        f"core 1, {args.runs} x {args.duration} s per case, alternating; medians. The ceiling "
        f"returns the median limit={limits[0]} answer ({len(body):,} bytes).\n"
    )
    rows = []
    for case, limit in zip(cases, [*limits, limits[0], None], strict=True):
        if limit is None:
            shape = f"{len(body):,} B"
        else:
            found = [len(json.loads(b)["data"]["departures"]) for b in answers[limit]]
            sizes = [len(b) for b in answers[limit]]
            shape = f"{statistics.median(found):.0f} dep., {statistics.median(sizes):,.0f} B"
        rows.append(
            [
                case.label,
                shape,
                f"{case.median('rps'):,.0f}",
                f"{case.median('p50_ms'):.2f}",
                f"{case.median('p99_ms'):.2f}",
                f"{case.median('cpu_us'):,.0f}",
                f"{case.median('rps') / ceiling.median('rps'):.2f}x",
                f"{sum(r['errors'] for r in case.runs):,}",
            ]
        )
    headers = [
        "server",
        "answer (median)",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "server CPU µs/request",
        "vs ceiling",
        "errors",
    ]
    print(table(headers, rows, [False, True, True, True, True, True, True, True]))
    rps = cases[0].median("rps")
    cpu_rps = 1e6 / cases[0].median("cpu_us")
    verdict = "met" if rps >= TARGET_RPS else "**not met**"
    print(
        f"\nTarget ≥ {TARGET_RPS:,} requests/s on one core: {verdict} "
        f"({rps:,.0f} req/s, {rps / TARGET_RPS:.2f}x the target; at its CPU time per request "
        f"a whole core would serve {cpu_rps:,.0f} req/s). With the response cache on: "
        f"{with_cache.median('rps'):,.0f} req/s "
        f"({with_cache.median('rps') / ceiling.median('rps'):.2f}x the ceiling)."
    )
    if len(limits) > 1:
        (a, ca), (b, cb) = (limits[0], cases[0]), (limits[1], cases[1])
        fa = statistics.median(len(json.loads(x)["data"]["departures"]) for x in answers[a])
        fb = statistics.median(len(json.loads(x)["data"]["departures"]) for x in answers[b])
        if fa != fb:
            per = (ca.median("cpu_us") - cb.median("cpu_us")) / (fa - fb)
            fixed = cb.median("cpu_us") - per * fb
            print(
                f"\nServer CPU per request ≈ {fixed:,.0f} µs + {per:,.1f} µs per departure "
                f"returned (from limit={a} vs limit={b}; the bare ceiling costs "
                f"{ceiling.median('cpu_us'):,.0f} µs)."
            )
    if any(r["errors"] for c in cases for r in c.runs):
        print("\nSome requests failed (see the errors column): the figures are not valid.")


if __name__ == "__main__":
    main()

"""A hostile GTFS zip: stop_times.txt is one endless line. How fast and how cheaply it fails.

    PYTHONPATH=. .venv/bin/python bench/hostile_gtfs_line.py --line-mb 1536 --runs 3

The issue's case: a 1.5 MB zip (a small valid feed) whose stop_times.txt is a header then one
1.5 GB line. Before the line cap it drove RSS to 7.6 GB over 182 s before failing. Each run
compiles the zip with the default options in a fresh subprocess and reports the seconds to
the failure and the peak resident growth (VmHWM at the end minus VmRSS just before compiling,
the zip's bytes already in memory). Targets: under 10 s and under 200 MB.

The child runs under an address-space limit (``--limit-mb``, 3 GB by default) and a timeout,
so measuring the code from before the cap (``PYTHONPATH=<export of main>``) cannot take the
machine down: it then reports the MemoryError or the timeout instead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from benchlib import MB, code_root, header, median, memory_kb, table

TARGET_S = 10.0
TARGET_MB = 200.0
#: The endless line is one byte repeated: deflate packs it about 1000 to 1, as in the issue
#: (tests/hostile/test_gtfs_long_line.py repeats stop-time fields, commas and all, instead).
LINE_UNIT = b"9"
#: The rest of a minimal valid feed: one agency, two stops, a route, a trip, a calendar.
FEED = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
    "a,Hostile,https://example.org,Europe/Paris\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\ns1,One,50.63,3.06\ns2,Two,50.64,3.07\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nr1,a,1,3\n",
    "trips.txt": "route_id,service_id,trip_id\nr1,c1,t1\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
    "start_date,end_date\nc1,1,1,1,1,1,1,1,20260101,20271231\n",
}


def build_zip(path: Path, line_bytes: int) -> Path:
    """The hostile feed, its line streamed into the zip 1 MB at a time (never held whole)."""
    if path.exists():
        return path
    chunk = LINE_UNIT * (MB // len(LINE_UNIT))
    partial = path.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for name, text in FEED.items():
            out.writestr(name, text)
        with out.open("stop_times.txt", "w", force_zip64=True) as member:
            member.write(b"trip_id,arrival_time,departure_time,stop_id,stop_sequence\n")
            left = line_bytes
            while left > 0:
                member.write(chunk[:left])
                left -= len(chunk)
            member.write(b"\n")
    partial.rename(path)
    return path


def child(zip_path: str) -> None:
    """Compile the zip once and print what it cost, as JSON."""
    from connectors.gtfs import compile_feed

    payload = Path(zip_path).read_bytes()
    before = memory_kb("VmRSS")
    started = time.monotonic()
    try:
        compile_feed(payload)
        error = "none: the feed compiled"
    except MemoryError:
        error = "MemoryError"
    except Exception as exc:  # any refusal counts; its message is the point of the report
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    growth = (memory_kb("VmHWM") - before) / 1024
    print(json.dumps({"seconds": seconds, "growth_mb": growth, "error": error}))


def run_once(zip_path: Path, limit_mb: int, timeout_s: float) -> dict:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb * MB, limit_mb * MB))

    env = {**os.environ, "PYTHONPATH": str(code_root())}
    command = [sys.executable, __file__, "--child", str(zip_path)]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, env=env, preexec_fn=limit
        )
    except subprocess.TimeoutExpired:
        return {
            "seconds": time.monotonic() - started,
            "growth_mb": float("nan"),
            "error": "timeout",
        }
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"seconds": time.monotonic() - started, "growth_mb": float("nan"), "error": tail}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-mb", type=int, default=1536, help="length of the line, MiB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit-mb", type=int, default=3000, help="child address-space cap")
    parser.add_argument("--timeout", type=float, default=300.0, help="child timeout, seconds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    folder = Path(tempfile.gettempdir()) / "beffroi-bench"
    folder.mkdir(exist_ok=True)
    zip_path = build_zip(folder / f"hostile-line-v2-{args.line_mb}MiB.zip", args.line_mb * MB)
    with zipfile.ZipFile(zip_path) as z:
        declared = z.getinfo("stop_times.txt").file_size
    results = [run_once(zip_path, args.limit_mb, args.timeout) for _ in range(args.runs)]
    print(header())
    print(
        f"Zip {zip_path.stat().st_size / MB:.2f} MB; stop_times.txt {declared / MB:.0f} MB, "
        f"one line. Child limits: {args.limit_mb} MB address space, {args.timeout:.0f} s.\n"
    )
    rows = [
        [str(i + 1), f"{r['seconds']:.2f}", f"{r['growth_mb']:.0f}", r["error"][:110]]
        for i, r in enumerate(results)
    ]
    print(table(["run", "s to failure", "peak RSS growth MB", "error"], rows, [1, 1, 1, 0]))
    seconds = median([r["seconds"] for r in results])
    growth = median([r["growth_mb"] for r in results])
    print(
        f"\nMedian: {seconds:.2f} s (target < {TARGET_S:.0f} s: "
        f"{'met' if seconds < TARGET_S else 'NOT met'}), {growth:.0f} MB peak RSS growth "
        f"(target < {TARGET_MB:.0f} MB: {'met' if growth < TARGET_MB else 'NOT met'})."
    )


if __name__ == "__main__":
    main()

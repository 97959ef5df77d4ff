"""What Beffroi's API conventions cost, side by side with a bare aiohttp endpoint.

Serves the demo config with `beffroi serve` and, as the ceiling, a bare aiohttp app returning
the very same bytes; wrk (Debian package `wrk`) loads each on loopback. The server runs on
core 0 and wrk on core 1 (taskset), so each side has one core.

    .venv/bin/python bench/api_overhead.py --duration 10 --runs 3

Prints a Markdown table of medians (requests/s, p50 and p99 latency) for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PATH = "/v1/sources/lovelo-stations/records?limit=20"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code in (200, 304):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within 30s")


def pinned(core: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        pinned(0, command),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(url: str, duration: int, headers: dict[str, str]) -> dict[str, float]:
    command = ["wrk", "-t1", "-c32", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        pinned(1, [*command, url]), capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latencies = {}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", output).groups()
        latencies[pct] = float(value) * _UNITS[unit]
    return {"rps": rps, "p50_ms": latencies["50"], "p99_ms": latencies["99"]}


def measure(url: str, args: argparse.Namespace, headers: dict[str, str]) -> dict[str, float]:
    run_wrk(url, 2, headers)  # warm-up
    runs = [run_wrk(url, args.duration, headers) for _ in range(args.runs)]
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median kept)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    beffroi_port, bare_port = free_port(), free_port()
    beffroi = start(
        [
            sys.executable,
            "-m",
            "aggregator.cli",
            "--log-level",
            "WARNING",
            "serve",
            "-c",
            "config/demo.yaml",
        ],
        env={"BEFFROI_PORT": str(beffroi_port)},
    )
    try:
        beffroi_url = f"http://127.0.0.1:{beffroi_port}{PATH}"
        wait_ready(f"http://127.0.0.1:{beffroi_port}/readyz")
        first = httpx.get(beffroi_url)
        etag = first.headers["ETag"]
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as body_file:
            body_file.write(first.content)
        results = {
            "Beffroi, 200 (envelope, ETag, meta, metrics)": measure(beffroi_url, args, {}),
            "Beffroi, 304 (If-None-Match)": measure(beffroi_url, args, {"If-None-Match": etag}),
        }
    finally:
        beffroi.terminate()
        beffroi.wait()
    bare = start([sys.executable, "bench/bare_server.py", str(bare_port), body_file.name])
    try:
        bare_url = f"http://127.0.0.1:{bare_port}{PATH}"
        wait_ready(bare_url)
        results["bare aiohttp, same bytes (ceiling)"] = measure(bare_url, args, {})
    finally:
        bare.terminate()
        bare.wait()
        Path(body_file.name).unlink()

    ceiling = results["bare aiohttp, same bytes (ceiling)"]["rps"]
    size = len(first.content)
    print(f"GET {PATH} ({size} bytes), wrk -t1 -c32, {args.runs} x {args.duration}s, medians\n")
    print("| server | requests/s | p50 ms | p99 ms | vs ceiling |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['rps'] / ceiling:.2f}x |"
        )


if __name__ == "__main__":
    main()

"""Load: Beffroi at 200 connections on three endpoints, beside a bare aiohttp ceiling.

Serves the demo config with ``beffroi serve`` and, for each endpoint, a bare aiohttp app
(bench/bare_server.py) returning the very same bytes; wrk (``-t2 -c200 --latency``) loads
each in turn on loopback, Beffroi and its ceiling alternating within each run. The servers
run on core 0 and wrk on core 1 (taskset), so each side has one core.

    .venv/bin/python bench/load_wrk.py --duration 30 --runs 1

Prints a Markdown table of medians over the runs: requests/s, p50 and p99 latency, errors
(non-2xx/3xx responses plus wrk's socket errors) and the ratio to the ceiling, then the
targets (departures >= 60 % of its ceiling, zero errors, p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from api_overhead import free_port, pinned
from benchlib import code_root, header, wait_ready

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = {
    "departures": "/v1/stops/caltrain:san_francisco/departures?limit=10",
    "events": "/v1/events?limit=20",
    "sources": "/v1/sources",
}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(output: str) -> dict[str, float]:
    """requests/s, p50/p99 in ms and errors (non-2xx/3xx + socket errors) of wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    latencies = {}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", output).groups()
        latencies[pct] = float(value) * _UNITS[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": latencies["50"],
        "p99_ms": latencies["99"],
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(g) for g in sockets.groups()) if sockets else 0,
    }


def run_wrk(url: str, args: argparse.Namespace, duration: int | None = None) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration or args.duration}s",
        "--latency",
        url,
    ]
    output = subprocess.run(
        pinned(args.wrk_core, command), capture_output=True, text=True, check=True
    ).stdout
    return parse_wrk(output)


def start(command: list[str], core: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        pinned(core, command),
        cwd=code_root(),  # the code measured (see benchlib.code_root)
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=1, help="runs per case (median kept)")
    parser.add_argument("--connections", type=int, default=200, help="wrk -c")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--server-core", type=int, default=0, help="core of the servers")
    parser.add_argument("--wrk-core", type=int, default=1, help="core of wrk")
    parser.add_argument(
        "--endpoints", default=",".join(ENDPOINTS), help="comma-separated: " + ", ".join(ENDPOINTS)
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    names = [name.strip() for name in args.endpoints.split(",") if name.strip()]

    load_before = os.getloadavg()
    port = free_port()
    servers: list[subprocess.Popen] = []
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="beffroi-load-") as tmp:
        try:
            beffroi = start(
                [
                    *[sys.executable, "-m", "aggregator.cli", "--log-level", "WARNING"],
                    *["serve", "-c", "config/demo.yaml"],
                ],
                args.server_core,
                {"BEFFROI_PORT": str(port)},
            )
            servers.append(beffroi)
            wait_ready(f"http://127.0.0.1:{port}/readyz", 60, beffroi)
            urls: dict[tuple[str, str], str] = {}
            for name in names:
                path = ENDPOINTS[name]
                response = httpx.get(f"http://127.0.0.1:{port}{path}")
                response.raise_for_status()
                sizes[name] = len(response.content)
                body = Path(tmp) / f"{name}.json"
                body.write_bytes(response.content)
                bare_port = free_port()
                bare_script = str(ROOT / "bench" / "bare_server.py")
                bare = start(
                    [sys.executable, bare_script, str(bare_port), str(body)],
                    args.server_core,
                )
                servers.append(bare)
                urls[name, "beffroi"] = f"http://127.0.0.1:{port}{path}"
                urls[name, "bare"] = f"http://127.0.0.1:{bare_port}{path}"
                wait_ready(urls[name, "bare"], 30, bare)
            for url in urls.values():
                run_wrk(url, args, duration=2)  # warm-up
            for _ in range(args.runs):
                for key, url in urls.items():
                    results.setdefault(key, []).append(run_wrk(url, args))
        finally:
            for server in servers:
                server.terminate()
                server.wait()
    load_after = os.getloadavg()

    def med(key: tuple[str, str]) -> dict[str, float]:
        runs = results[key]
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    def total_errors(key: tuple[str, str]) -> int:
        return sum(r["non2xx"] + r["socket_errors"] for r in results[key])

    print(header())
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency on core "
        f"{args.wrk_core}, servers on core {args.server_core}; {args.runs} run(s) per case, "
        f"medians. Load average before {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f}, after {load_after[0]:.2f} / {load_after[1]:.2f} / "
        f"{load_after[2]:.2f} (2 cores shared with other sessions).\n"
    )
    print(
        "| endpoint | bytes | server | requests/s | p50 ms | p99 ms | non-2xx/3xx | "
        "socket errors | vs ceiling |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        ceiling = med((name, "bare"))["rps"]
        for server, label in (("beffroi", "Beffroi"), ("bare", "bare aiohttp (ceiling)")):
            r = med((name, server))
            errors = results[name, server]
            print(
                f"| {name} | {sizes[name]:,} | {label} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {sum(e['non2xx'] for e in errors)} | "
                f"{sum(e['socket_errors'] for e in errors)} | {r['rps'] / ceiling:.2f}x |"
            )
    if "departures" in names:
        dep, ceiling = med(("departures", "beffroi")), med(("departures", "bare"))
        ratio = dep["rps"] / ceiling["rps"]
        errors = sum(total_errors((name, "beffroi")) for name in names)
        print("\n| target | figure | met |")
        print("| --- | --- | --- |")
        print(
            f"| departures >= 60 % of the ceiling | {ratio * 100:.0f} % "
            f"({dep['rps']:,.0f} vs {ceiling['rps']:,.0f} requests/s) | "
            f"{'yes' if ratio >= 0.6 else 'no'} |"
        )
        print(
            f"| zero errors (Beffroi, all endpoints) | {errors} | "
            f"{'yes' if errors == 0 else 'no'} |"
        )
        print(
            f"| departures p99 < 50 ms at {args.connections} connections | "
            f"{dep['p99_ms']:.1f} ms | {'yes' if dep['p99_ms'] < 50 else 'no'} |"
        )


if __name__ == "__main__":
    main()

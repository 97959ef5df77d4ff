"""Scale-out: requests/s with 1 and 2 API processes on Redis, and how fast a change spreads.

A redis-server on a free port of 127.0.0.1 and a temp copy of the demo config with
``store: {backend: redis}`` plus a ``probe`` json_records source (refresh 1s) read from a
local upstream served by this script.

1. Throughput: one poller (``serve --role poller``, on a port of its own) and the API processes
   (``serve --role api --workers N``, sharing one port through SO_REUSEPORT), N = 1 then 2;
   wrk loads the departures and events endpoints. With N = 1 the API is pinned to core 0 and
   wrk to core 1; with N = 2 the API processes may use both cores, where wrk runs too — on a
   2-core machine, 2 API processes and wrk compete for 2 cores.
2. Propagation: the poller and ``--api`` API processes, each on a port of its own (so that each
   can be asked on its own); the upstream's record changes at a known instant, each API
   process's /v1/sources/probe/records is polled every 10 ms until the new record appears.
   Reported: the time from the upstream serving the new version to the poller (the poll that
   fetched it) until the last API process serves it, over ``--changes`` changes.

    .venv/bin/python bench/scale_out.py --duration 15 --changes 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from api_overhead import free_port
from benchlib import code_root, header, wait_ready
from load_wrk import run_wrk

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = {
    "departures": "/v1/stops/caltrain:san_francisco/departures?limit=10",
    "events": "/v1/events?limit=20",
}
PROBE = """
  - id: probe
    type: json_records
    title: Scale-out probe
    url: {upstream}/probe.json
    refresh: 1s
    required: false
    records_path: items
    id_field: id
    fields:
      value: {{path: value, type: int}}
"""


class Upstream:
    """A feed whose one record changes on demand; remembers when each version was first served."""

    def __init__(self) -> None:
        self.version = 0
        self.first_served: dict[int, float] = {}
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        from aiohttp import web

        async def handler(_request: web.Request) -> web.Response:
            version = self.version
            self.first_served.setdefault(version, time.time())
            body = {"items": [{"id": f"v{version}", "value": version}]}
            return web.Response(body=json.dumps(body).encode(), content_type="application/json")

        async def serve() -> None:
            app = web.Application()
            app.router.add_get("/probe.json", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(serve())
        self.loop.run_forever()


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    redis = subprocess.Popen(
        [
            *["redis-server", "--port", str(port), "--bind", "127.0.0.1"],
            *["--save", "", "--appendonly", "no", "--dir", str(workdir)],
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return redis, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def write_config(folder: Path, redis_url: str, upstream: str) -> Path:
    shutil.copytree(ROOT / "config" / "demo-data", folder / "demo-data")
    text = (ROOT / "config" / "demo.yaml").read_text()
    text = text.replace(
        "store:\n  backend: memory\n", f"store:\n  backend: redis\n  url: {redis_url}\n"
    )
    assert "backend: redis" in text
    text = text.rstrip("\n") + "\n" + PROBE.format(upstream=upstream)
    path = folder / "scale.yaml"
    path.write_text(text)
    return path


def serve(config: Path, role: str, port: int, cores: str, workers: int = 0) -> subprocess.Popen:
    command = [sys.executable, "-m", "aggregator.cli", "--log-level", "WARNING", "serve"]
    command += ["-c", str(config), "--role", role, "--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    return subprocess.Popen(
        ["taskset", "-c", cores, *command] if shutil.which("taskset") else command,
        cwd=code_root(),  # the code measured (see benchlib.code_root)
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def throughput(config: Path, args: argparse.Namespace, workers: int) -> dict[str, dict]:
    port = free_port()
    cores = "0" if workers == 1 else "0,1"
    api = serve(config, "api", port, cores, workers)
    try:
        for path in ENDPOINTS.values():
            wait_ready(f"http://127.0.0.1:{port}{path}", 60, api)
        time.sleep(2)  # every worker has loaded the snapshots
        results: dict[str, list[dict]] = {}
        for url in (f"http://127.0.0.1:{port}{p}" for p in ENDPOINTS.values()):
            run_wrk(url, args, duration=2)  # warm-up
        for _ in range(args.runs):
            for name, path in ENDPOINTS.items():
                results.setdefault(name, []).append(run_wrk(f"http://127.0.0.1:{port}{path}", args))
    finally:
        stop(api)
    return {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        | {"errors": sum(r["non2xx"] + r["socket_errors"] for r in runs)}
        for name, runs in results.items()
    }


async def propagation(upstream: Upstream, ports: list[int], args: argparse.Namespace) -> list:
    import aiohttp

    rows = []
    async with aiohttp.ClientSession() as session:

        async def first_seen(port: int, record: str, deadline: float) -> float | None:
            url = f"http://127.0.0.1:{port}/v1/sources/probe/records"
            while time.time() < deadline:
                async with session.get(url) as response:
                    body = await response.json()
                if any(r.get("id") == f"probe:{record}" for r in body.get("data", [])):
                    return time.time()
                await asyncio.sleep(0.01)
            return None

        for change in range(1, args.changes + 1):
            # Change at a random point of the poll cycle.
            await asyncio.sleep(1 + (change * 0.37) % 1)
            changed_at = time.time()
            upstream.version = change
            seen = await asyncio.gather(
                *(first_seen(port, f"v{change}", changed_at + 15) for port in ports)
            )
            fetched = upstream.first_served.get(change)
            rows.append((change, changed_at, fetched, seen))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=1, help="wrk runs per case (median kept)")
    parser.add_argument("--connections", type=int, default=200, help="wrk -c")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--wrk-core", type=int, default=1, help="core of wrk")
    parser.add_argument("--changes", type=int, default=10, help="upstream changes timed")
    parser.add_argument("--api", type=int, default=2, help="API processes in the spread test")
    parser.add_argument("--skip-throughput", action="store_true", help="only the spread test")
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("redis-server"):
        raise SystemExit("wrk and redis-server are needed: apt-get install wrk redis-server")

    load_before = os.getloadavg()
    upstream = Upstream()
    upstream_url = f"http://127.0.0.1:{upstream.port}"
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="beffroi-scale-") as tmp:
        redis, redis_url = start_redis(Path(tmp))
        try:
            config = write_config(Path(tmp), redis_url, upstream_url)
            poller_port = free_port()
            poller = serve(config, "poller", poller_port, "0")
            processes.append(poller)
            wait_ready(f"http://127.0.0.1:{poller_port}/readyz", 60, poller)
            rates = {}
            if not args.skip_throughput:
                for workers in (1, 2):
                    rates[workers] = throughput(config, args, workers)
            api_ports = [free_port() for _ in range(args.api)]
            for i, port in enumerate(api_ports):
                processes.append(serve(config, "api", port, str(i % 2)))
            for port, process in zip(api_ports, processes[1:], strict=True):
                wait_ready(f"http://127.0.0.1:{port}/v1/sources/probe/records", 60, process)
            spread = asyncio.run(propagation(upstream, api_ports, args))
        finally:
            for process in processes:
                stop(process)
            stop(redis)
    load_after = os.getloadavg()

    print(header())
    print(
        f"Load average before {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f}, after {load_after[0]:.2f} / {load_after[1]:.2f} / "
        f"{load_after[2]:.2f} (2 cores shared with other sessions).\n"
    )
    if rates:
        print(
            f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s on core "
            f"{args.wrk_core}; 1 API process on core 0, 2 API processes on cores 0-1 (where wrk "
            f"runs too); one poller on core 0 on a port of its own; {args.runs} run(s), "
            "medians.\n"
        )
        print("| endpoint | API processes | requests/s | p50 ms | p99 ms | errors | vs 1 process |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name in ENDPOINTS:
            base = rates[1][name]["rps"]
            for workers in (1, 2):
                r = rates[workers][name]
                print(
                    f"| {name} | {workers} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | "
                    f"{r['p99_ms']:.2f} | {r['errors']} | {r['rps'] / base:.2f}x |"
                )
        print()
    print(
        f"Spread of an upstream change to {args.api} API processes (each on its own port, "
        f"asked every 10 ms), probe source refresh 1s:\n"
    )
    print(
        "| change | upstream change → poll fetched it (ms) | poll → first API serves (ms) | "
        "poll → last API serves (ms) |"
    )
    print("| ---: | ---: | ---: | ---: |")
    after_poll, missing = [], 0
    for change, changed_at, fetched, seen in spread:
        if fetched is None or None in seen:
            missing += 1
            print(f"| {change} | - | not seen within 15 s | - |")
            continue
        last = (max(seen) - fetched) * 1000
        after_poll.append(last)
        print(
            f"| {change} | {(fetched - changed_at) * 1000:.0f} | "
            f"{(min(seen) - fetched) * 1000:.0f} | {last:.0f} |"
        )
    if after_poll:
        worst = max(after_poll)
        print(
            f"\nPoll → last API process: median {statistics.median(after_poll):.0f} ms, max "
            f"{worst:.0f} ms over {len(after_poll)} changes ({missing} not seen). Target "
            f"< 1 s beyond the poll: {'met' if worst < 1000 and not missing else 'not met'}."
        )


if __name__ == "__main__":
    main()

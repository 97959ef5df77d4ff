"""What keeping the log clean costs and saves: the redacting formatter, and malformed requests.

    .venv/bin/python bench/log_hygiene.py --records 20000 --garbage 1000

1. Formatting: microseconds per record for a typical httpx request line (a URL with an API
   key) and a record with a traceback, through logging's plain Formatter (the floor) and
   through Beffroi's RedactingFormatter with 10 known secrets. Median of 5 rounds.
2. A flood of malformed requests (raw sockets, four kinds of garbage, one connection each)
   against a real ``beffroi serve`` at INFO and, side by side, against a bare aiohttp server
   with the same logging.basicConfig (aiohttp's own behaviour): log bytes per request.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GARBAGE = [
    b"GET /\x00\x1b[31m HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
]
BARE_SERVER = """
import asyncio, logging, sys
from aiohttp import web
logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = web.Application()
app.router.add_get("/healthz", lambda request: web.Response(text="ok"))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def format_cost(records: int) -> list[tuple[str, str, float, float]]:
    from aggregator.logs import LOG_FORMAT, RedactingFormatter, remember_secrets

    remember_secrets([f"secret-value-{n:04d}-abcdef" for n in range(10)])
    line = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"',
        ("GET", "https://transport.example.org/gtfs-rt/trip-updates?apikey=0123456789abcdef"
         "&format=pb", "HTTP/1.1 200 OK"), None,
    )  # fmt: skip
    try:
        raise ValueError("GET https://user:pw@example.org/x?token=abc failed")
    except ValueError:
        exc_info = sys.exc_info()
    failing = logging.LogRecord(
        "aggregator.poller", logging.ERROR, __file__, 1, "source %s: unexpected error",
        ("parkings",), exc_info,
    )  # fmt: skip
    rows = []
    for name, record in (("httpx request line", line), ("record with a traceback", failing)):
        figures = {}
        for kind, formatter in (
            ("plain", logging.Formatter(LOG_FORMAT)),
            ("redacting", RedactingFormatter(LOG_FORMAT)),
        ):
            rounds = []
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(records):
                    record.exc_text = None  # as for a fresh record
                    formatter.format(record)
                rounds.append((time.perf_counter() - started) / records * 1e6)
            figures[kind] = statistics.median(rounds)
        rows.append((name, "µs/record", figures["plain"], figures["redacting"]))
    return rows


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def flood(command: list[str], port: int, garbage: int, workdir: Path) -> tuple[int, float]:
    """Log bytes the garbage added (startup and shutdown lines excluded), and seconds taken."""
    log = workdir / f"{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, process)
        before = log.stat().st_size
        started = time.perf_counter()
        for index in range(garbage):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(GARBAGE[index % len(GARBAGE)])
                while sock.recv(65536):
                    pass
        elapsed = time.perf_counter() - started
        time.sleep(0.5)  # let the last lines reach the file
        process.terminate()
        process.wait(timeout=30)
        text = log.read_bytes()[before:].decode(errors="replace")
        # Count what the garbage caused: aiohttp's records (with their tracebacks) and ours.
        kept = [
            chunk
            for chunk in text.split("\n20")
            if "aiohttp.server" in chunk or "malformed HTTP" in chunk
        ]
        return sum(len(chunk.encode()) + 3 for chunk in kept), elapsed
    finally:
        if process.poll() is None:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--garbage", type=int, default=1000)
    args = parser.parse_args()
    print(f"`{' '.join(['.venv/bin/python', 'bench/log_hygiene.py', *sys.argv[1:]])}`\n")
    print("| record | unit | plain Formatter | RedactingFormatter | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, unit, plain, redacting in format_cost(args.records):
        print(f"| {name} | {unit} | {plain:.1f} | {redacting:.1f} | {redacting / plain:.2f}× |")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "beffroi.yaml"
        config.write_text("connectors: []\n")
        beffroi_port, bare_port = free_port(), free_port()
        beffroi = [sys.executable, "-m", "aggregator.cli", "serve", "-c", str(config)]
        beffroi += ["--port", str(beffroi_port)]
        bare = [sys.executable, "-c", BARE_SERVER, str(bare_port)]
        rows = [
            ("bare aiohttp (its own logging)", *flood(bare, bare_port, args.garbage, workdir)),
            ("beffroi serve", *flood(beffroi, beffroi_port, args.garbage, workdir)),
        ]
    print(f"\n{args.garbage} malformed requests, one connection each, server logging at INFO\n")
    print("| server | log bytes | bytes/request | seconds |")
    print("| --- | ---: | ---: | ---: |")
    for name, size, elapsed in rows:
        print(f"| {name} | {size:,} | {size / args.garbage:.1f} | {elapsed:.2f} |")
    print(f"\nratio bare/beffroi log bytes: {rows[0][1] / max(rows[1][1], 1):.0f}×")


if __name__ == "__main__":
    main()

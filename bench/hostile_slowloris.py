"""Slowloris: /healthz latency and accept errors while thousands of requests stay half-sent.

A real ``beffroi serve`` (one local JSON source) starts with a soft limit on open files of
``--soft-limit`` (1,024 by default, the usual default; the server raises it to the hard limit
itself since the defence). An attacker process then keeps ``--connections`` connections
half-open: each sends a request line and one header, then a further header line every second
(the classic slowloris trickle); when the server closes one, it opens another. Once they are
all open, this script asks for /healthz ``--requests`` times, a new connection each time (so
``accept()`` is measured too), and reports p50/p99, failed requests, and the accept errors the
server logged (asyncio's "socket.accept() out of system resource").

The server runs on core 0, the attacker and this client on core 1.

    .venv/bin/python bench/hostile_slowloris.py --connections 3000 --requests 500

(From a worktree whose venv has another checkout installed, prefix ``PYTHONPATH=.``.)

To measure the code before the defence, run with ``PYTHONPATH`` set to a clean export of it
(see ``benchlib.code_root``); without ``--header-timeout`` the config sets no option it lacks.
"""

from __future__ import annotations

import argparse
import errno
import json
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from api_overhead import free_port, pinned
from benchlib import code_root, header, median, percentile, table, wait_ready

REQUEST_START = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
TRICKLE = b"X-Slow: 1\r\n"
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
ACCEPT_ERROR = "socket.accept() out of system resource"


# --- the attacker: a child process holding N half-sent requests --------------------------


def attack(port: int, count: int, report: Path) -> None:
    """Keep ``count`` half-sent requests open on ``port`` until SIGTERM; write counts to
    ``report`` (JSON) every second."""
    raise_open_files_limit()
    selector = selectors.DefaultSelector()
    stats = {"open": 0, "opened": 0, "closed_by_server": 0, "connect_failed": 0}
    connecting: dict[socket.socket, float] = {}
    established: set[socket.socket] = set()
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)

    def open_one() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            stats["connect_failed"] += 1
            return
        connecting[sock] = time.monotonic()
        selector.register(sock, selectors.EVENT_WRITE)

    def drop(sock: socket.socket) -> None:
        selector.unregister(sock)
        established.discard(sock)
        connecting.pop(sock, None)
        sock.close()

    for _ in range(count):
        open_one()
    next_trickle = next_report = time.monotonic() + 1
    while not stopping:
        for key, events in selector.select(timeout=0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock in connecting:
                del connecting[sock]
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    drop(sock)
                    stats["connect_failed"] += 1
                    open_one()
                    continue
                try:
                    sock.send(REQUEST_START)
                except OSError:
                    drop(sock)
                    open_one()
                    continue
                selector.modify(sock, selectors.EVENT_READ)
                established.add(sock)
                stats["opened"] += 1
            elif events & selectors.EVENT_READ:
                drop(sock)  # the server answered or closed: either way, start another
                stats["closed_by_server"] += 1
                open_one()
        now = time.monotonic()
        for sock, since in list(connecting.items()):
            if now - since > 10:  # the server does not accept: count it, try again
                drop(sock)
                stats["connect_failed"] += 1
                open_one()
        if now >= next_trickle:
            next_trickle = now + 1
            for sock in list(established):
                try:
                    sock.send(TRICKLE)
                except OSError:
                    drop(sock)
                    stats["closed_by_server"] += 1
                    open_one()
        if now >= next_report:
            next_report = now + 1
            stats["open"] = len(established)
            report.write_text(json.dumps(stats))
    stats["open"] = len(established)
    report.write_text(json.dumps(stats))


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the measurement ----------------------------------------------------------------------


def write_config(folder: Path, header_timeout: str | None) -> Path:
    data = folder / "rows.json"
    data.write_text(json.dumps([{"code": "P1", "nom": "Gare"}]))
    server = f"server:\n  header_timeout: {header_timeout}\n" if header_timeout else ""
    config = folder / "beffroi.yaml"
    config.write_text(
        server + "defaults:\n  allow_file_urls: true\nconnectors:\n"
        f"  - id: a\n    type: json_records\n    url: {data.as_uri()}\n    refresh: 1h\n"
        "    id_field: code\n    fields: {name: nom}\n"
    )
    return config


def healthz_once(port: int) -> bool:
    """One GET /healthz on a new connection (raw socket: no client library in the timing)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(HEALTHZ)
            answer = b""
            while chunk := sock.recv(65536):  # Connection: close, so the server ends it
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.1 200 ")


def healthz_latencies(port: int, requests: int, gap_s: float) -> tuple[list[float], int]:
    """Milliseconds of each /healthz answered 200 (new connection each), and the failures.

    After 20 failures the rest are not tried (each could take the 5 s timeout) and count as
    failed too.
    """
    latencies: list[float] = []
    failed = 0
    for sent in range(requests):
        if failed >= 20:
            return latencies, failed + requests - sent
        started = time.perf_counter()
        ok = healthz_once(port)
        if ok:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            failed += 1
        time.sleep(gap_s)
    return latencies, failed


def wait_for_attack(report: Path, count: int, within_s: float) -> dict:
    deadline = time.monotonic() + within_s
    stats: dict = {}
    while time.monotonic() < deadline:
        if report.exists():
            stats = json.loads(report.read_text() or "{}")
            if stats.get("open", 0) >= count:
                break
        time.sleep(0.5)
    return stats


def run(args: argparse.Namespace, folder: Path) -> list[list[str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(folder, args.header_timeout)
    log = folder / "server.log"
    soft = args.soft_limit

    def limit_open_files() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    command = [sys.executable, "-m", "aggregator.cli", "serve", "-c", str(config)]
    with log.open("wb") as sink:
        server = subprocess.Popen(
            pinned(0, [*command, "--port", str(port)]),
            cwd=code_root(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_open_files,
        )
    rows = []
    attacker = None
    try:
        wait_ready(base + "/healthz", 60, server)
        quiet, quiet_failed = healthz_latencies(port, args.requests, args.gap)
        rows.append(["none", "-", *figures(quiet, quiet_failed), "0", "-"])
        report = folder / "attack.json"
        attacker = subprocess.Popen(
            pinned(
                1,
                [
                    sys.executable,
                    __file__,
                    "--attack",
                    str(port),
                    str(args.connections),
                    str(report),
                ],
            ),
            cwd=Path(__file__).parent,
        )
        stats = wait_for_attack(report, args.connections, 60)
        held = stats.get("open", 0)
        latencies, failed = healthz_latencies(port, args.requests, args.gap)
        stats = json.loads(report.read_text())
        accept_errors = log.read_text(errors="replace").count(ACCEPT_ERROR)
        rows.append(
            [
                f"{args.connections:,} half-sent",
                f"{held:,}",
                *figures(latencies, failed),
                str(accept_errors),
                f"{stats['closed_by_server']:,} / {stats['connect_failed']:,}",
            ]
        )
        limits = [line for line in log.read_text().splitlines() if "open files limit" in line]
        print("server: " + (limits[0].split(": ", 1)[1] if limits else "no limit logged"))
    finally:
        if attacker is not None:
            attacker.terminate()
            attacker.wait(timeout=30)
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return rows


def figures(latencies: list[float], failed: int) -> list[str]:
    if not latencies:
        return ["-", "-", str(failed)]
    return [f"{median(latencies):.1f}", f"{percentile(latencies, 99):.1f}", str(failed)]


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--attack":
        attack(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000, help="half-sent requests")
    parser.add_argument("--requests", type=int, default=500, help="/healthz requests measured")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between requests")
    parser.add_argument("--soft-limit", type=int, default=1024, help="server's soft NOFILE")
    parser.add_argument("--header-timeout", help="server.header_timeout (default: the config's)")
    args = parser.parse_args()
    # Stopped from outside: still stop the server and the attacker (the finally clauses).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(1))
    raise_open_files_limit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 100:
        raise SystemExit(f"this needs {args.connections + 100} open files; the limit is {soft}")
    with tempfile.TemporaryDirectory(prefix="beffroi-slowloris-") as folder:
        rows = run(args, Path(folder))
    print(header())
    print(
        f"Server started with a soft limit of {args.soft_limit} open files (hard {hard}); "
        f"header_timeout {args.header_timeout or 'default'}; {args.requests} /healthz requests, "
        "a new connection each.\n"
    )
    print(
        table(
            [
                "attack",
                "held open",
                "p50 ms",
                "p99 ms",
                "failed",
                "accept errors",
                "closed by server / connect failed",
            ],
            rows,
            [False, True, True, True, True, True, True],
        )
    )


if __name__ == "__main__":
    main()

"""Rolling restart under load: requests lost while each API worker is restarted in turn.

``serve --workers 2`` on a Redis store (a redis-server on a free port) serves a records
source; client threads send GETs, each on a new connection (as a phone waking up does), and
count every answer that is not a 200: refused connections, connections closed before the
answer, 5xx. Meanwhile each API worker in turn gets SIGTERM (a rolling restart: the
supervisor starts its replacement, and the next worker is stopped once that one answers).

The same procedure runs, in the same run, on the code being measured and on a peer: another
export of Beffroi given with ``--peer DIR`` (``git archive <commit> | tar -x -C DIR``), e.g.
the code before the stop waited for the first request of freshly accepted connections.

    .venv/bin/python bench/rolling_restart.py --rounds 5 --threads 6 --peer /tmp/beffroi-old
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from api_overhead import free_port
from benchlib import code_root, header, table, wait_ready
from scale_out import start_redis

ROOT = Path(__file__).resolve().parents[1]
ROWS = "[" + ",".join(f'{{"code": "P{i}", "nom": "Parc {i}"}}' for i in range(200)) + "]"


def children_of(pid: int) -> list[int]:
    """The supervisor's live child processes, from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port`` (from /proc): with
    SO_REUSEPORT a request cannot be sent to one worker, so its readiness is read there."""
    listening = set()
    for table_file in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table_file).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                listening.add(inode)
    try:
        links = [str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return any(link.startswith("socket:[") and link[8:-1] in listening for link in links)


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Load:
    """Client threads, a new connection per request; outcomes counted."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.outcomes: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with httpx.Client(timeout=10) as client:  # its own connection
                    response = client.get(self.url)
                outcome = "ok" if response.status_code == 200 else f"http {response.status_code}"
                detail = ""
            except httpx.ConnectError as exc:
                outcome, detail = "refused", repr(exc)
            except httpx.HTTPError as exc:
                outcome, detail = "broken", repr(exc)
            with self._lock:
                self.outcomes[outcome] += 1
                if detail:
                    self.examples.setdefault(outcome, detail)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def measure(code: Path, redis_url: str, folder: Path, rounds: int, threads: int) -> dict:
    port = free_port()
    config = folder / f"rolling-{port}.yaml"
    (folder / "rows.json").write_text(ROWS)
    config.write_text(
        f"""
server:
  cursor_secret: rolling-restart-bench
  rate_limit: {{enabled: false}}
store:
  backend: redis
  url: {redis_url}
  key_prefix: "rolling-{port}:"
defaults:
  allow_file_urls: true
connectors:
  - {{id: parks, type: json_records, url: "file:rows.json", id_field: code, required: true}}
"""
    )
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, "-m", "aggregator.cli", "--log-level", "WARNING", "serve"]
    supervisor = subprocess.Popen(
        [*command, "-c", str(config), "--workers", "2", "--port", str(port)],
        cwd=folder,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    restarts = 0
    started = time.monotonic()
    try:
        wait_ready(base + "/readyz", 60, supervisor)
        time.sleep(1)
        with Load(base + "/v1/sources/parks/records?limit=50", threads) as load:
            time.sleep(2)
            for _ in range(rounds):
                workers = [
                    pid for pid in children_of(supervisor.pid) if "--role api" in command_of(pid)
                ]
                for pid in workers:
                    before = set(children_of(supervisor.pid))
                    os.kill(pid, signal.SIGTERM)
                    restarts += 1
                    deadline = time.monotonic() + 60
                    # The next worker is stopped once the replacement listens on the port.
                    while not any(
                        listens_on(child, port)
                        for child in set(children_of(supervisor.pid)) - before
                    ):
                        assert time.monotonic() < deadline, "no replacement came up"
                        time.sleep(0.05)
                    time.sleep(0.5)
            time.sleep(1)
        elapsed = time.monotonic() - started
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
    failed = sum(n for outcome, n in load.outcomes.items() if outcome != "ok")
    return {
        "requests": sum(load.outcomes.values()),
        "failed": failed,
        "outcomes": dict(load.outcomes),
        "examples": load.examples,
        "restarts": restarts,
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="restarts of every worker")
    parser.add_argument("--threads", type=int, default=6, help="client threads")
    parser.add_argument("--peer", type=Path, help="an export of another Beffroi to compare")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is needed: apt-get install redis-server")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis, url = start_redis(folder)
        try:
            measured = {"this code": measure(code_root(), url, folder, args.rounds, args.threads)}
            if args.peer is not None:
                measured[f"peer ({args.peer.name})"] = measure(
                    args.peer.resolve(), url, folder, args.rounds, args.threads
                )
        finally:
            redis.terminate()
            redis.wait(timeout=10)
    print(header())
    rows = [
        [
            name,
            str(result["restarts"]),
            f"{result['requests']:,}",
            str(result["failed"]),
            ", ".join(f"{k}: {v}" for k, v in sorted(result["outcomes"].items()) if k != "ok")
            or "-",
        ]
        for name, result in measured.items()
    ]
    print(
        table(
            ["code", "worker restarts", "requests", "failed", "failures"],
            rows,
            [False, True, True, True, False],
        )
    )
    for name, result in measured.items():
        for outcome, example in result["examples"].items():
            print(f"\n{name}, {outcome}: {example}")


if __name__ == "__main__":
    main()

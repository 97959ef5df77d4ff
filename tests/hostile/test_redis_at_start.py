"""A process started while Redis is not there yet waits for it instead of dying.

Containers start in any order (Kubernetes has no depends_on; a Redis restart races the
pollers): a poller or API process that finds Redis down at start must stay up, say it is not
ready, and serve the data once Redis arrives — before, it died with a traceback.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis_server import RedisServer, free_port

ROOT = Path(__file__).parents[2]
RECORDS = "/v1/sources/parkings/records"


class Process:
    def __init__(self, config: Path, role: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        command = [sys.executable, "-m", "aggregator.cli", "serve", "-c", str(config)]
        self.popen = subprocess.Popen(
            [*command, "--role", role, "--port", str(self.port)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30)  # a loaded machine can be slow

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            # A bound that only stops a broken test from hanging (not a timing assertion):
            # generous, as a loaded CI machine once took longer than 30 s. On expiry the
            # failure shows the end of the process's log.
            return self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.log.flush()
            tail = Path(self.log.name).read_text(errors="replace")[-3000:]
            raise AssertionError(f"{self.log.name} did not stop within 60 s:\n{tail}") from None
        finally:
            self.log.close()


def until(check, *, within: float = 90.0, processes: list[Process]) -> None:
    """Call ``check()`` until it holds; fail at once if a process died, or after ``within``
    (generous: it only stops a broken test from hanging, and processes that import the app
    can take many seconds to come up on a loaded machine)."""
    deadline = time.monotonic() + within
    while True:
        dead = [p.log.name for p in processes if p.popen.poll() is not None]
        assert not dead, f"a process died: see {dead}"
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"not reached within {within}s"
        time.sleep(0.1)


@pytest.fixture
def redis_not_yet(tmp_path):
    """A redis-server whose port is known but which is not started yet."""
    try:
        server = RedisServer(tmp_path)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield server
    if server.process is not None:
        server.stop()


def test_poller_and_api_started_before_redis_wait_for_it(tmp_path, redis_not_yet):
    (tmp_path / "parkings.json").write_text('[{"code": "P1", "nom": "Gare"}]')
    config = tmp_path / "beffroi.yaml"
    config.write_text(
        f"""
server:
  cursor_secret: redis-at-start-cursor-secret
store:
  backend: redis
  url: {redis_not_yet.url}
  lock_ttl: 2s
defaults:
  allow_file_urls: true
connectors:
  - id: parkings
    type: json_records
    url: file:parkings.json
    refresh: 1s
    required: true
    id_field: code
    fields:
      name: nom
"""
    )
    processes = [Process(config, role, tmp_path / f"{role}.log") for role in ("poller", "api")]
    try:
        for process in processes:  # up, answering, and honest about having no data
            until(lambda p=process: p.get("/healthz").status_code == 200, processes=processes)
            assert process.get("/readyz").status_code == 503
        redis_not_yet.start()
        api = processes[1]
        until(lambda: api.get("/readyz").status_code == 200, processes=processes)
        assert [r["id"] for r in api.get(RECORDS).json()["data"]] == ["parkings:P1"]
    finally:
        codes = [process.stop() for process in processes]
    assert codes == [0, 0]

"""A real ``beffroi serve`` process for the hostile tests: its config, its log, its limits.

Every wait is bounded, and the process is killed if it does not stop on SIGTERM (an event loop
stuck in a regression cannot run its signal handler), so a broken build fails a test instead of
hanging the suite or eating the machine (``address_space`` caps its memory).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis_server import free_port

ROOT = Path(__file__).parents[2]
#: What a test waits at most for the server to come up or a log line to appear (a guard
#: against hanging, not a timing assertion: the machine may be loaded).
WAIT_S = 60.0
SERVE = [sys.executable, "-m", "aggregator.cli", "serve"]
ROWS = [{"code": "P1", "nom": "Gare"}, {"code": "P2", "nom": "Euralille"}]


def source_entry(source_id: str, data_file: Path) -> str:
    """A ``json_records`` source reading ``data_file`` (a local file: no upstream needed)."""
    return (
        f"  - id: {source_id}\n"
        "    type: json_records\n"
        f"    url: {data_file.as_uri()}\n"
        "    refresh: 1h\n"
        "    id_field: code\n"
        "    fields:\n"
        "      name: nom\n"
    )


def write_config(path: Path, *source_ids: str, server: str = "") -> None:
    """A config serving ``source_ids`` from local JSON files, with extra ``server:`` lines."""
    data = path.parent / "rows.json"
    data.write_text(json.dumps(ROWS))
    text = "defaults:\n  allow_file_urls: true\n"
    if server:
        text += "server:\n" + "".join(f"  {line}\n" for line in server.splitlines())
    text += "connectors:\n" + "".join(source_entry(s, data) for s in source_ids)
    path.write_text(text)


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, timeout: float = 10.0) -> httpx.Response:
        return httpx.get(self.base + path, timeout=timeout)

    def wait_for_log(self, text: str, within: float = WAIT_S) -> None:
        deadline = time.monotonic() + within
        while text not in self.log():
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited before logging {text!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not logged within {within:g}s: {text!r}\n{self.log()}")
            time.sleep(0.05)

    def wait_until(self, condition: Callable[[], bool], within: float = WAIT_S) -> None:
        deadline = time.monotonic() + within
        while True:
            with contextlib.suppress(httpx.TransportError, KeyError, ValueError):
                if condition():
                    return
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached within {within:g}s\n{self.log()}")
            time.sleep(0.1)


def _limits(open_files: int | None, address_space: int | None) -> Callable[[], None]:
    def apply() -> None:  # runs in the child, before exec
        if open_files is not None:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return apply


@contextlib.contextmanager
def running_server(
    config: Path,
    *,
    open_files: int | None = None,
    address_space: int | None = 3 << 30,
    wait_ready: bool = True,
) -> Iterator[ServerProcess]:
    """``beffroi serve -c config`` on a free port, stopped (or killed) on exit.

    ``open_files`` sets the child's soft descriptor limit (its hard limit stays), as a system
    whose default soft limit is low would; ``address_space`` caps its memory.
    """
    port = free_port()
    log_path = config.parent / f"server-{port}.log"
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            [*SERVE, "-c", str(config), "--port", str(port)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_limits(open_files, address_space),
        )
    server = ServerProcess(process, port, log_path)
    try:
        if wait_ready:
            server.wait_until(lambda: server.get("/healthz", timeout=2).status_code == 200)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process does not exit (its loop may be stuck)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def raise_own_open_files_limit(wanted: int) -> None:
    """Let this (test) process open ``wanted`` sockets, or skip when the system does not."""
    import pytest

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

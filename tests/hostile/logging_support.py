"""A real ``beffroi serve`` process whose whole output (stdout and stderr) is kept in a file,
for the tests that check what the process writes to its log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from process_signals import all_children_catch
from redis_server import free_port

ROOT = Path(__file__).parents[2]


class LoggedServer:
    """``python -m aggregator.cli --log-level LEVEL serve -c CONFIG`` on a free port."""

    def __init__(
        self,
        config: Path,
        log: Path,
        *,
        level: str = "DEBUG",
        env: Mapping[str, str] = {},
        extra: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "aggregator.cli", "--log-level", level, "serve"]
        command += ["-c", str(config), "--port", str(self.port), *extra]
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    async def sources(self) -> dict[str, dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30) as client:
            answer = (await client.get(self.base + "/v1/sources")).json()
        return {source["id"]: source for source in answer["data"]}

    async def wait_for(
        self, condition: Callable[[dict[str, dict[str, Any]]], bool], within: float = 90.0
    ) -> None:
        """Poll ``/v1/sources`` until ``condition`` holds on it; fail after ``within`` s.

        Async, so that an upstream served by the test's own event loop keeps answering.
        """
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.output()[-2000:]}")
            try:
                if condition(await self.sources()):
                    return
            except (httpx.TransportError, KeyError, ValueError):
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"condition not reached; log tail: {self.output()[-2000:]}")

    async def wait_for_log(self, text: str, count: int = 1, within: float = 60.0) -> None:
        """Wait until ``text`` appears ``count`` times in the output."""
        deadline = time.monotonic() + within
        while self.output().count(text) < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} x{count} not logged: {self.output()[-2000:]}")
            await asyncio.sleep(0.1)

    async def wait_until_children_catch_sigterm(self, count: int, within: float = 60.0) -> None:
        """For ``--workers``: wait until the supervisor's ``count`` processes all have their
        SIGTERM handler (a stop sent sooner kills one still starting)."""
        deadline = time.monotonic() + within
        while not all_children_catch(self.process.pid, count):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"workers not all up: {self.output()[-2000:]}")
            await asyncio.sleep(0.1)

    async def stop(self) -> int:
        """SIGTERM, then wait for a graceful exit (30 s at most); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 - a child process has no event to await
            await asyncio.sleep(0.05)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError("the server did not stop within 30 s of SIGTERM")
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_bytes().decode(errors="replace")

    def kill(self) -> None:
        """Make sure the process is gone (a test's ``finally``)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

"""Shared fixtures: a scriptable upstream HTTP server (see :mod:`upstream_server`), a port with
nothing listening, and a Fetcher whose sleeps are recorded instead of waited."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from upstream_server import Upstream

from aggregator.fetch import Fetcher


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A scriptable HTTP server on 127.0.0.1, on a free port."""
    server = Upstream()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago and has nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` as the Fetcher's clock: records delays, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def sleeps() -> RecordingSleep:
    """The delays the ``fetcher`` fixture was asked to sleep, in ``sleeps.delays``."""
    return RecordingSleep()


@pytest.fixture
async def fetcher(sleeps: RecordingSleep) -> AsyncIterator[Fetcher]:
    """A Fetcher whose backoff sleeps are recorded in ``sleeps.delays`` instead of waited."""
    async with Fetcher(user_agent="Beffroi-tests/0", sleep=sleeps) as instance:
        yield instance


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free port, stopped after the test."""
    from redis_server import RedisServer

    try:
        server = RedisServer(tmp_path)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    server.start()
    yield server
    server.stop()

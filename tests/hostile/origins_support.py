"""Two origins on 127.0.0.1 for the origin-rule tests: the configured upstream and another.

``home`` plays the upstream the operator configured; ``elsewhere`` plays any other host (an
attacker's, an internal service) and records every request it gets, headers included. Both
are real aiohttp servers on their own ports, so they are two origins. Import the fixtures
into a test module (``from .origins_support import elsewhere, home``) to use them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from
from upstream_server import Upstream

from aggregator.api.app import create_app
from aggregator.fetch import Fetcher
from aggregator.runtime import Runtime

BIKE_FIXTURES = Path(__file__).parents[1] / "fixtures" / "bikes"
#: A secret that must only ever reach the configured origin.
API_KEY = "k3y-only-for-home"
#: Text that would show on the public API if a refused body were served.
MARKER = "MARKER-must-never-be-served-5f0c"
#: Where the marker station stands (Rouen, among Lovélo's stations).
NEAR_MARKER = "lat=49.4395&lon=1.0940&radius=2000"


@pytest.fixture
async def home() -> AsyncIterator[Upstream]:
    """The configured upstream."""
    server = Upstream()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def elsewhere() -> AsyncIterator[Upstream]:
    """Another origin: it must not be reached, or not with the configured headers."""
    server = Upstream()
    await server.start()
    yield server
    await server.close()


def origin(upstream: Upstream) -> str:
    return upstream.url("")


def lovelo(name: str) -> bytes:
    """A real Lovélo GBFS 2.3 file: ``station_information`` or ``station_status``."""
    return (BIKE_FIXTURES / f"lovelo-{name}.json").read_bytes()


def marker_station_information() -> bytes:
    """A valid station_information whose one station is named with the marker."""
    station = {"station_id": "m1", "name": MARKER, "lat": 49.4395, "lon": 1.0940, "capacity": 3}
    return orjson.dumps({"last_updated": 1740734700, "ttl": 0, "data": {"stations": [station]}})


def marker_station_status() -> bytes:
    row = {"station_id": "m1", "num_bikes_available": 1, "num_docks_available": 2}
    return orjson.dumps({"last_updated": 1740734700, "ttl": 0, "data": {"stations": [row]}})


def discovery(feeds: Mapping[str, str]) -> bytes:
    """A GBFS 2.3 gbfs.json listing ``feeds`` ({name: url}) in French."""
    listed = [{"name": name, "url": url} for name, url in feeds.items()]
    return orjson.dumps(
        {"last_updated": 1740734700, "ttl": 0, "version": "2.3", "data": {"fr": {"feeds": listed}}}
    )


def runtime_with(config: str, fetcher: Fetcher | None = None, **kwargs: Any) -> Runtime:
    """A runtime from YAML; ``fetcher`` (e.g. one with a test address classifier) is used."""
    runtime = runtime_from(config, **kwargs)
    runtime.fetcher = fetcher  # _ensure_runners keeps a fetcher that is already set
    return runtime


async def served(runtime: Runtime, path: str) -> str:
    """The public API's answer to ``path``, as text."""
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        response = await client.get(path)
        return await response.text()

"""One small json_records source served by a real upstream, for the tests of API-side bounds
(rate limit, admin throttle, response cache): only the ``server`` section differs."""

from __future__ import annotations

import orjson
from aiohttp.test_utils import TestClient, TestServer
from support import eventually, runtime_from
from upstream_server import Reply, Upstream

from aggregator.api.app import create_app
from aggregator.runtime import Runtime

STATIONS = orjson.dumps([{"code": "S1", "nom": "Gare"}])


def stations_yaml(url: str, head: str, fields: str = "") -> str:
    """A config: ``head`` (the server and defaults sections, indented as written here), then
    the one source of stations at ``url``, with extra ``fields`` lines under it."""
    return f"""
    {head}
    connectors:
      - id: stations
        type: json_records
        url: "{url}"
        refresh: 10m
        required: true
        retries: 0
        id_field: code
        {fields}
    """


async def serve_stations(
    upstream: Upstream, yaml: str, replies: Reply | list[Reply] | None = None
) -> tuple[TestClient, Runtime]:
    """The app on ``yaml`` (a config naming ``upstream``'s /stations.json), data loaded."""
    upstream.route("/stations.json", replies if replies is not None else Reply(body=STATIONS))
    runtime = runtime_from(yaml)
    client = TestClient(TestServer(create_app(runtime)))
    await client.start_server()
    await eventually(lambda: runtime.live.snapshot("stations") is not None)
    return client, runtime

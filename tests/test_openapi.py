"""The OpenAPI document and the routes the server really has are the same set."""

import re

import orjson
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from

from aggregator.api.app import create_app


async def test_every_route_is_documented_and_every_documented_route_answers():
    """Each registered GET route is in /v1/openapi.json, and each documented path answers."""
    runtime = runtime_from("connectors: []")
    app = create_app(runtime, poll=False)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/v1/openapi.json")
        document = await response.json()
        assert document["openapi"].startswith("3.1")
        documented = {
            (method.upper(), path)
            for path, operations in document["paths"].items()
            for method in operations
        }
        registered = {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.method not in ("HEAD", "OPTIONS")
        }
        assert documented == registered
        for method, path in sorted(documented):
            concrete = path.replace("{source_id}", "unknown-source")
            answer = await client.request(method, concrete)
            assert answer.status != 405, path
            if "{" not in path:  # a route that exists: answered, or refused for its parameters
                assert answer.status in (200, 400, 403, 503), path


async def test_documented_references_resolve_and_parameters_match_paths():
    """Every $ref points at a component, and each path template's parameters are declared."""
    app = create_app(runtime_from("connectors: []"), poll=False)
    async with TestClient(TestServer(app)) as client:
        document = await (await client.get("/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    text = orjson.dumps(document).decode()
    for ref in {part.split('"')[0] for part in text.split('"$ref":"#/components/schemas/')[1:]}:
        assert ref in schemas, ref
    for path, operations in document["paths"].items():
        for operation in operations.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            in_template = set(re.findall(r"\{(\w+)\}", path))
            assert declared == in_template, path


def test_every_route_has_a_real_example_in_the_api_reference():
    """docs/API.md shows one generated example per route (scripts/api_examples.py)."""
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    sys.path.insert(0, str(root / "scripts"))
    from api_examples import EXAMPLES

    app = create_app(runtime_from("connectors: []"), poll=False)
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method not in ("HEAD", "OPTIONS")
    }
    assert {(method, route) for method, route, _path in EXAMPLES} == routes
    reference = (root / "docs" / "API.md").read_text()
    for method, _route, path in EXAMPLES:
        placeholders = {"@first-event": "/v1/events/", "@subscription": "/v1/subscriptions/"}
        shown = placeholders.get(path, path.split("?")[0])
        assert f"### `{method} {shown}" in reference, path

"""Write the "Examples" part of docs/API.md: one real request and answer per endpoint, on the
demo data (config/demo.yaml, its fixed clock), so the reference never drifts from the code.

    .venv/bin/python scripts/api_examples.py    # rewrites docs/API.md between its markers

tests/test_openapi.py checks that every route has its example here.

A few routes get a second example: an answer with ``include=references``, and the alerts
list, which the demo's realtime capture leaves empty, from config/bart-alert.yaml (BART's
timetable and a real alert of the same day, served at its own fixed clock). Run it with the
checkout's code first on the path (``PYTHONPATH=.`` when the package is installed elsewhere).

Long lists are cut to their first items and long texts shortened, marked with "…".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "API.md"
START, END = "<!-- examples:start -->", "<!-- examples:end -->"
TOKEN = "demo-admin-token"

#: One request per documented route (method, path), in the order the reference shows them.
EXAMPLES: list[tuple[str, str, str]] = [
    ("GET", "/v1/sources/{source_id}", "/v1/sources/caltrain-rt"),
    ("GET", "/v1/sources", "/v1/sources"),
    ("GET", "/v1/sources/{source_id}/records", "/v1/sources/lovelo-stations/records?limit=2"),
    ("GET", "/v1/stops", "/v1/stops?q=gare%20fluviale%20levis"),
    ("GET", "/v1/stops.geojson", "/v1/stops.geojson?q=gare%20fluviale%20levis"),
    ("GET", "/v1/stops/{stop_id}", "/v1/stops/caltrain:lawrence"),
    ("GET", "/v1/stops/{stop_id}/departures", "/v1/stops/caltrain:lawrence/departures?limit=2"),
    (
        "GET",
        "/v1/stops/{stop_id}/departures",
        "/v1/stops/caltrain:lawrence/departures?limit=3&include=references",
    ),
    ("GET", "/v1/departures", "/v1/departures?lat=37.7764&lon=-122.3949&radius=300&per_stop=2"),
    ("GET", "/v1/lines", "/v1/lines?feed=stq"),
    ("GET", "/v1/lines/{line_id}", "/v1/lines/stq:quebec"),
    ("GET", "/v1/lines/{line_id}.geojson", "/v1/lines/stq:quebec.geojson"),
    ("GET", "/v1/trips/{trip_id}", "/v1/trips/caltrain:310"),
    ("GET", "/v1/alerts", "/v1/alerts?lang=en"),
    ("GET", "/v1/vehicles", "/v1/vehicles?line=caltrain:L1"),
    ("GET", "/v1/vehicles", "/v1/vehicles?line=caltrain:L1&include=references"),
    ("GET", "/v1/vehicles.geojson", "/v1/vehicles.geojson?line=caltrain:L1"),
    ("GET", "/v1/bikes/stations", "/v1/bikes/stations?lat=49.4402&lon=1.0944&limit=2"),
    (
        "GET",
        "/v1/bikes/stations.geojson",
        "/v1/bikes/stations.geojson?lat=49.4402&lon=1.0944&limit=2",
    ),
    ("GET", "/v1/parkings", "/v1/parkings?lat=50.6366&lon=3.0706"),
    ("GET", "/v1/parkings.geojson", "/v1/parkings.geojson?lat=50.6366&lon=3.0706"),
    ("GET", "/v1/places", "/v1/places?lat=46.3235&lon=-0.4588&limit=2"),
    ("GET", "/v1/places.geojson", "/v1/places.geojson?lat=46.3235&lon=-0.4588&limit=2"),
    ("GET", "/v1/places/{place_id}", "/v1/places/niort-pharmacies:node/770416806"),
    ("GET", "/v1/events", "/v1/events?limit=2"),
    ("GET", "/v1/agenda", "/v1/agenda"),
    ("GET", "/v1/events/{event_id}", "@first-event"),
    ("GET", "/v1/categories", "/v1/categories"),
    ("GET", "/v1/news", "/v1/news?limit=2"),
    (
        "GET",
        "/v1/news/{item_id}",
        "/v1/news/guardian-news:https%3A%2F%2Fwww.theguardian.com%2Ffootball%2Flive%2F2018%2Fjan"
        "%2F31%2Ftottenham-hotspur-v-manchester-united-premier-league-live",
    ),
    ("GET", "/v1/waste/collections", "/v1/waste/collections?lat=44.8452&lon=-0.5909"),
    ("GET", "/v1/home", "/v1/home?lat=37.7764&lon=-122.3949"),
    ("GET", "/v1/stream", "/v1/stream?stops=caltrain:lawrence"),
    ("GET", "/healthz", "/healthz"),
    ("GET", "/readyz", "/readyz"),
    ("GET", "/metrics", "/metrics"),
    ("GET", "/v1/openapi.json", "/v1/openapi.json"),
    ("GET", "/v1/catalog", "/v1/catalog"),
    ("GET", "/v1/catalog.ttl", "/v1/catalog.ttl"),
    ("GET", "/ogc", "/ogc"),
    ("GET", "/ogc/", "/ogc/"),
    ("GET", "/ogc/conformance", "/ogc/conformance"),
    ("GET", "/ogc/collections", "/ogc/collections"),
    ("GET", "/ogc/collections/{collection_id}", "/ogc/collections/paris-events"),
    (
        "GET",
        "/ogc/collections/{collection_id}/items",
        "/ogc/collections/lovelo-bikes/items?bbox=1.08,49.43,1.11,49.45&limit=2",
    ),
    (
        "GET",
        "/ogc/collections/{collection_id}/items/{feature_id}",
        "/ogc/collections/caltrain/items/caltrain:lawrence",
    ),
    (
        "GET",
        "/v1/events.ics",
        "/v1/events.ics?q=brasserie&from=2023-11-01T00:00:00Z&to=2024-11-01T00:00:00Z",
    ),
    ("GET", "/v1/agenda.ics", "/v1/agenda.ics"),
    (
        "GET",
        "/v1/events.csv",
        "/v1/events.csv?q=brasserie&from=2023-11-01T00:00:00Z&to=2024-11-01T00:00:00Z",
    ),
    ("GET", "/v1/agenda.csv", "/v1/agenda.csv"),
    ("GET", "/v1/places.csv", "/v1/places.csv?lat=46.3235&lon=-0.4588&radius=300"),
    (
        "GET",
        "/v1/bikes/stations.csv",
        "/v1/bikes/stations.csv?lat=49.4402&lon=1.0944&radius=300",
    ),
    ("GET", "/v1/parkings.csv", "/v1/parkings.csv?lat=50.6366&lon=3.0706"),
    ("GET", "/problems/{code}", "/problems/invalid_parameter?lang=en"),
    ("GET", "/", "/"),
    ("POST", "/v1/subscriptions", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions/{subscription_id}", "@subscription"),
    ("PATCH", "/v1/subscriptions/{subscription_id}", "@subscription"),
    ("DELETE", "/v1/subscriptions/{subscription_id}", "@subscription"),
    ("GET", "/v1/admin/sources/{source_id}", "/v1/admin/sources/stq"),
    ("POST", "/v1/admin/sources/{source_id}/refresh", "/v1/admin/sources/stq/refresh"),
    ("POST", "/v1/admin/reload", "/v1/admin/reload"),
]
#: Examples answered by another configuration than the demo's, shown after the demo's example
#: of the same route: (method, route, path, configuration file, where the answer comes from).
OTHER_CONFIGS: list[tuple[str, str, str, str, str]] = [
    (
        "GET",
        "/v1/alerts",
        "/v1/alerts?lang=en",
        "bart-alert.yaml",
        "The demo's Caltrain alerts capture holds no alert. This one is a real alert: BART's "
        "alerts feed as captured on 2019-08-07 at 17:45Z, served with BART's timetable of "
        "that day by `config/bart-alert.yaml` (its clock fixed at the capture; "
        "`beffroi serve -c config/bart-alert.yaml`).",
    ),
]
#: The JSON bodies of the examples that send one. The endpoint and keys are what a browser's
#: PushSubscription.toJSON() gives (a real P-256 point and auth secret).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/subscriptions"): {
        "target": {
            "type": "webpush",
            "endpoint": "https://push.example.net/wpush/v2/gAAAAABn-example",
            "keys": {
                "p256dh": "BAsNX43uEMRpu_SUd6p42L_J-r3fltwyZcTJSJUIrM0D03gWIs0R6rmWRJhlE8iqAptlNB89"
                "jgehDX1RMZ_apu4",
                "auth": "Bqj5Qo0qQ2nnJ0Ue8PsK5g",
            },
        },
        "topics": {"lines": ["caltrain:L1"], "stops": ["caltrain:lawrence"]},
        "lang": "fr",
    },
    ("PATCH", "@subscription"): {"topics": {"agenda": True}, "lang": "en"},
}


def shorten(value: Any, depth: int = 0) -> Any:
    """The answer cut for reading: lists to 2 items, big objects to 3 keys, strings to 160."""
    if isinstance(value, list):
        kept = [shorten(v, depth + 1) for v in value[:2]]
        return [*kept, f"… {len(value) - 2} more"] if len(value) > 2 else kept
    if isinstance(value, dict):
        items = list(value.items())
        # A document's paths or schemas (a big map of objects), not a record.
        if depth >= 1 and len(items) > 24 and all(isinstance(v, dict) for _, v in items):
            kept = {k: shorten(v, depth + 1) for k, v in items[:3]}
            return {**kept, "…": f"{len(items) - 3} more"}
        return {k: shorten(v, depth + 1) for k, v in items}
    if isinstance(value, str) and len(value) > 160:
        return value[:157] + "…"
    return value


#: One example as shown: method, path, status, media type, body text, a note before it.
Shown = tuple[str, str, int, str, str, str]


async def collect_other(config_name: str, paths: list[str]) -> list[tuple[int, str, str]]:
    """(status, media type, body text) of GET ``paths`` on another configuration."""
    from aggregator.api.app import create_app
    from aggregator.config import load_config
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    types = discover_connector_types()
    config = load_config(ROOT / "config" / config_name, connector_types=config_models(types))
    runtime = Runtime(config, types)
    await runtime.start(poll=False)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()
    out = []
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        for path in paths:
            response = await client.get(path)
            body = await response.read()
            text = orjson.dumps(shorten(orjson.loads(body)), option=orjson.OPT_INDENT_2).decode()
            out.append((response.status, response.content_type, text))
    await runtime.stop()
    return out


async def collect() -> list[Shown]:
    sys.path.insert(0, str(ROOT / "tests"))
    from aggregator.api.app import create_app
    from aggregator.config import load_config
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    os.environ["BEFFROI_ADMIN_TOKEN"] = TOKEN  # the demo reads its admin token from there
    types = discover_connector_types()
    config = load_config(ROOT / "config" / "demo.yaml", connector_types=config_models(types))
    # Notifications on, in a throw-away database; the example endpoint is a made-up name,
    # so it is not resolved (as allow_private_push_endpoints does for a local push service).
    scratch = tempfile.TemporaryDirectory()
    notifications = config.notifications.model_copy(
        update={
            "enabled": True,
            "database": str(Path(scratch.name) / "subscriptions.sqlite3"),
            "allow_private_push_endpoints": True,
        }
    )
    config = config.model_copy(update={"notifications": notifications})
    runtime = Runtime(config, types)
    await runtime.start(poll=False)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()
    out: list[Shown] = []
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        subscription: dict[str, str] = {}
        for method, route, path in EXAMPLES:
            body = BODIES.get((method, path))
            headers = {"Authorization": f"Bearer {TOKEN}"} if "/admin/" in path else {}
            if path == "@first-event":
                first = (await (await client.get("/v1/events?limit=1")).json())["data"][0]
                path = f"/v1/events/{first['id']}"
            if path == "@subscription":
                path = f"/v1/subscriptions/{subscription['id']}"
                headers = {"Authorization": f"Bearer {subscription['secret']}"}
            if path.startswith("/v1/stream"):
                async with client.get(path) as response:
                    text = ""
                    while text.count("\n\n") < 3:  # the retry field, a board, alerts
                        text += (await response.content.readline()).decode()
                    out.append((method, path, response.status, response.content_type, text, ""))
                continue
            response = await client.request(method, path, headers=headers, json=body)
            if path == "/v1/subscriptions" and response.status == 201:
                subscription = (await response.json())["data"]
            body = await response.read()
            kind = response.content_type
            if kind.endswith("json"):
                text = orjson.dumps(
                    shorten(orjson.loads(body)), option=orjson.OPT_INDENT_2
                ).decode()
            else:
                lines = body.decode().splitlines()
                text = "\n".join(
                    lines[:12] + ([f"… {len(lines) - 12} more lines"] if len(lines) > 12 else [])
                )
            # Links are absolute: shown at the address the reference's curl examples use.
            text = text.replace(str(client.make_url("")).rstrip("/"), "http://localhost:8080")
            out.append((method, path, response.status, kind, text, ""))
            for other_method, other_route, other_path, config_name, note in OTHER_CONFIGS:
                if (other_method, other_route) == (method, route):
                    [(status, kind, text)] = await collect_other(config_name, [other_path])
                    out.append((other_method, other_path, status, kind, text, note))
    await runtime.stop()
    scratch.cleanup()
    return out


def render(examples: list[Shown]) -> str:
    parts = [
        START,
        "",
        "Generated by `.venv/bin/python scripts/api_examples.py` on the demo data (its clock is",
        "fixed at 2023-11-07T17:06 in California). Lists are cut to two items.",
        "",
    ]
    for method, path, status, kind, text, note in examples:
        fence = "json" if kind.endswith("json") else "text"
        auth = ' -H "Authorization: Bearer $BEFFROI_ADMIN_TOKEN"' if "/admin/" in path else ""
        if path.startswith("/v1/subscriptions/"):
            auth = ' -H "Authorization: Bearer $SECRET"'
        flag = f" -X {method}" if method != "GET" else ""
        body = BODIES.get(
            (method, "@subscription" if path.startswith("/v1/subscriptions/") else path)
        )
        if body is not None:
            flag += " -H 'Content-Type: application/json' -d '" + orjson.dumps(body).decode() + "'"
        parts += [f"### `{method} {path.split('?')[0]}`", ""]
        if note:
            parts += [note, ""]
        parts += [
            "```sh",
            f"curl -s{flag}{auth} 'localhost:8080{path}'",
            "```",
            "",
            f"`{status}` `{kind}`",
            "",
            f"```{fence}",
            text.strip("\n"),
            "```",
            "",
        ]
    return "\n".join([*parts, END])


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    block = render(asyncio.run(collect()))
    doc = API_DOC.read_text()
    if START in doc:
        before, rest = doc.split(START, 1)
        after = rest.split(END, 1)[1]
        updated = before + block + after
    else:
        updated = doc.rstrip("\n") + "\n\n## Examples\n\n" + block + "\n"
    API_DOC.write_text(updated)
    print(f"wrote {len(EXAMPLES)} examples to {API_DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sync tokens on /v1/places: real deltas by content, paged, with the list's filters.

The upstream is a real aiohttp server on 127.0.0.1 serving the demo's real places (Niort's
pharmacies from OpenStreetMap, config/demo-data/PROVENANCE.md), edited between polls: a
pharmacy's hours changed, one closed for good, one opened.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import CONNECTOR_TYPES, config_from, eventually, runtime_from, sync_all
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.runtime import Runtime

DEMO = Path(__file__).parents[2] / "config" / "demo-data" / "niort-pharmacies-osm.geojson"
ORIGINAL = json.loads(DEMO.read_text(encoding="utf-8"))
SECRET = "test-cursor-secret-shared-by-processes"
#: Niort's town hall: most of the pharmacies are within 3 km.
CENTRE = "&lat=46.3235&lon=-0.4588&radius=3000"


def _config(upstream, store: str = "") -> str:
    return f"""
server:
  cursor_secret: {SECRET}
{store}
defaults: {{timezone: Europe/Paris}}
clock: {{fixed: "2025-07-15T10:00:00+02:00"}}
connectors:
  - id: niort
    type: places
    url: '{upstream.url("/pharmacies.geojson")}'
    format: geojson
    id_field: "@id"
    category: pharmacy
    fields: {{name: name, opening_hours: opening_hours, phone: phone, city: "addr:city"}}
"""


def _feature(osm_id: str) -> dict:
    return next(f for f in ORIGINAL["features"] if f["properties"]["@id"] == osm_id)


CHANGED, CLOSED = "node/6290892159", "node/6290880955"
OPENED = "node/9999999001"


def edited(name: str = "Pharmacie du Donjon") -> bytes:
    """The export after an edit: one pharmacy's hours changed, one removed, one added."""
    document = copy.deepcopy(ORIGINAL)
    features = [f for f in document["features"] if f["properties"]["@id"] != CLOSED]
    for feature in features:
        if feature["properties"]["@id"] == CHANGED:
            feature["properties"]["opening_hours"] = "Mo-Sa 09:00-19:00"
    opened = copy.deepcopy(_feature(CHANGED))
    opened["properties"].update({"@id": OPENED, "name": name})
    opened["id"] = OPENED
    document["features"] = [*features, opened]
    return json.dumps(document).encode()


async def poll(runtime) -> None:
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)


async def sync(client, query: str = "", token: str = "start", limit: int = 100) -> dict:
    return await sync_all(client, "/v1/places", query, token, limit)


@pytest.fixture
async def served(upstream):
    upstream.route("/pharmacies.geojson", Reply(body=DEMO.read_bytes()))
    runtime = runtime_from(_config(upstream))
    await poll(runtime)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        yield runtime, client


def place_ids(runtime) -> set[str]:
    return {p["id"] for p in runtime.live.snapshot("niort").data["places"]}


async def test_a_delta_shows_exactly_what_changed_upstream(served, upstream):
    """Start: every place. The same places in other bytes: an empty delta. New hours, a
    pharmacy gone, one opened: exactly those, evaluated at meta.at, the gone one as a
    tombstone."""
    runtime, client = served
    start = await sync(client)
    assert set(start["changed"]) == place_ids(runtime) and len(start["changed"]) > 20
    assert start["removed"] == []

    upstream.route(
        "/pharmacies.geojson",
        Reply(body=json.dumps({**ORIGINAL, "timestamp": "2024-01-01T00:00:00Z"}).encode()),
    )
    before = runtime.live.snapshot("niort").version
    await poll(runtime)
    assert runtime.live.snapshot("niort").version != before
    same = await sync(client, token=start["token"])
    assert same["changed"] == {} and same["removed"] == []

    upstream.route("/pharmacies.geojson", Reply(body=edited()))
    await poll(runtime)
    response = await client.get(f"/v1/places?sync={same['token']}")
    body = await response.json()
    assert body["meta"]["at"] == "2025-07-15T10:00:00+02:00"
    changed = {p["id"]: p for p in body["data"]["changed"]}
    assert set(changed) == {"niort:" + CHANGED, "niort:" + OPENED}
    assert changed["niort:" + CHANGED]["opening_hours"]["raw"] == "Mo-Sa 09:00-19:00"
    assert changed["niort:" + CHANGED]["open_now"] is True  # a Tuesday, 10:00
    assert body["data"]["removed"] == [{"id": "niort:" + CLOSED, "reason": "deleted"}]
    after = await sync(client, token=body["meta"]["sync_token"])
    assert after["changed"] == {} and after["removed"] == []


async def test_a_sync_is_paged_and_goes_with_a_place_and_a_text(served, upstream):
    """Pages of 5 cover every place once; lat/lon/radius, q and category select what the
    list would (with distance_m); a place renamed out of q is a filtered_out tombstone."""
    runtime, client = served
    whole = await sync(client)
    paged = await sync(client, limit=5)
    assert paged["pages"] == -(-len(whole["changed"]) // 5) > 1
    assert paged["changed"].keys() == whole["changed"].keys()

    where = CENTRE + "&q=pharmacie&category=pharmacy"
    listed = await client.get(f"/v1/places?limit=100{where}")
    expected = {p["id"]: p["distance_m"] for p in (await listed.json())["data"]}
    assert 1 < len(expected) < len(whole["changed"])
    synced = await sync(client, where)
    assert {i: p["distance_m"] for i, p in synced["changed"].items()} == expected

    word = "&q=donjon"
    first = await sync(client, word)
    assert first["changed"] == {}
    upstream.route("/pharmacies.geojson", Reply(body=edited()))
    await poll(runtime)
    second = await sync(client, word, first["token"])
    assert set(second["changed"]) == {"niort:" + OPENED}
    upstream.route("/pharmacies.geojson", Reply(body=edited("Pharmacie des Halles")))
    await poll(runtime)
    third = await sync(client, word, second["token"])
    assert third["changed"] == {}
    assert third["removed"] == [{"id": "niort:" + OPENED, "reason": "filtered_out"}]


async def test_clock_filters_geojson_and_bad_tokens_are_refused(served):
    """open_now/open_at change with the clock, GeoJSON has no room for tombstones, a token
    belongs to its filters and to this server: 400s naming the parameter and a code."""
    _runtime, client = served
    token = (await sync(client, CENTRE))["token"]
    for path, parameter, code in (
        ("/v1/places?sync=start&open_now=true", "open_now", "not_with_sync"),
        ("/v1/places?sync=start&open_at=2025-07-15T12:00:00Z", "open_at", "not_with_sync"),
        # The map's twin does not declare sync (its OpenAPI operation has no such parameter).
        ("/v1/places.geojson?sync=start", "sync", "unknown_parameter_accepted"),
        ("/v1/places?sync=start&format=geojson", "sync", "sync_json_only"),
        (f"/v1/places?sync={token}", "sync", "sync_other_query"),
        (f"/v1/places?sync={token[:-3]}abc{CENTRE}", "sync", "sync_token_unknown"),
    ):
        response = await client.get(path)
        assert response.status == 400, path
        error = (await response.json())["errors"][0]
        assert (error["parameter"], error["code"]) == (parameter, code), path


async def test_a_token_of_a_forgotten_log_asks_for_a_full_resync(served, upstream):
    """A memory store does not outlive its process: the old token is a 410 sync_expired."""
    _runtime, client = served
    token = (await sync(client))["token"]
    restarted = runtime_from(_config(upstream))
    await poll(restarted)
    async with TestClient(TestServer(create_app(restarted, poll=False))) as other:
        response = await other.get(f"/v1/places?sync={token}&lang=fr")
        assert response.status == 410
        problem = await response.json()
        assert problem["code"] == "sync_expired" and problem["detail_language"] == "fr"


def _caught_up(follower: Runtime, poller: Runtime) -> bool:
    mine, theirs = follower.live.snapshot("niort"), poller.live.snapshot("niort")
    return mine is not None and theirs is not None and mine.version == theirs.version


async def test_with_redis_a_token_works_on_another_process_and_after_a_restart(
    upstream, redis_server
):
    """The change log lives in Redis: a token issued by one process is answered by another,
    and by a process started after both stopped."""
    upstream.route("/pharmacies.geojson", Reply(body=DEMO.read_bytes()))
    text = _config(
        upstream, f"store:\n  backend: redis\n  url: {redis_server.url}\n  key_prefix: 'ps:'"
    )
    poller = Runtime(config_from(text), CONNECTOR_TYPES)  # type: ignore[arg-type]
    api = Runtime(config_from(text), CONNECTOR_TYPES, role="api")  # type: ignore[arg-type]
    async with (
        TestClient(TestServer(create_app(poller, poll=False))) as first,
        TestClient(TestServer(create_app(api, poll=False))) as second,
    ):
        await poll(poller)
        await eventually(lambda: _caught_up(api, poller))
        token = (await sync(first))["token"]
        upstream.route("/pharmacies.geojson", Reply(body=edited()))
        await poll(poller)
        await eventually(lambda: _caught_up(api, poller))
        delta = await sync(second, token=token)
        assert set(delta["changed"]) == {"niort:" + CHANGED, "niort:" + OPENED}
        assert delta["removed"] == [{"id": "niort:" + CLOSED, "reason": "deleted"}]
        token = delta["token"]
    restarted = Runtime(config_from(text), CONNECTOR_TYPES, role="api")  # type: ignore[arg-type]
    async with TestClient(TestServer(create_app(restarted, poll=False))) as third:
        await eventually(lambda: _caught_up(restarted, poller))
        after = await sync(third, token=token)
        assert after["changed"] == {} and after["removed"] == []

"""GBFS as a large real system publishes it (the shape of Paris's Vélib' Métropole feed):
``num_bikes_available_types`` as a list of single-key objects, ``lastUpdatedOther`` where
``last_updated`` should be, a one-hour ``ttl`` while stations report every minute. Hand-made
files of that shape, served by a real local upstream, read through the whole server."""

from __future__ import annotations

import orjson
from aiohttp.test_utils import TestClient, TestServer
from upstream_server import Reply

from aggregator.api.app import create_app
from connectors.bikes import gbfs_files as files

from .helpers import runtime_from

NOW = 1_764_840_000  # the deployment clock below, 2025-12-04T09:20:00Z

CONFIG = """
defaults: {timezone: Europe/Paris}
clock: {fixed: "2025-12-04T10:20:00+01:00"}
connectors:
  - id: velib
    type: gbfs
    max_age: 5m
    files:
      station_information: {info}
      station_status: {status}
"""


def _information() -> bytes:
    stations = [
        {
            "station_id": 1,
            "name": "Mairie du 16ÃƒÂ¨me",
            "lat": 48.8637,
            "lon": 2.2769,
            "capacity": 20,
        },
        {
            "station_id": 2,
            "name": "Gare de Lyon – Rue d’Austerlitz",
            "lat": 48.8443,
            "lon": 2.3744,
            "capacity": 30,
        },
    ]
    return orjson.dumps({"lastUpdatedOther": NOW - 60, "ttl": 3600, "data": {"stations": stations}})


def _status() -> bytes:
    stations = [
        {
            "station_id": 1,
            "num_bikes_available": 5,
            "num_bikes_available_types": [{"mechanical": 3}, {"ebike": 2}],
            "num_docks_available": 15,
            "is_installed": 1,
            "is_renting": 1,
            "is_returning": 1,
            "last_reported": NOW - 50 * 60,  # this station has been silent for 50 minutes
        },
        {
            "station_id": 2,
            "num_bikes_available": 4,
            "num_bikes_available_types": [{"mechanical": 4}, {"ebike": 0}],
            "num_docks_available": 26,
            "is_installed": 1,
            "is_renting": 1,
            "is_returning": 1,
            "last_reported": NOW - 40,
        },
    ]
    return orjson.dumps({"lastUpdatedOther": NOW - 30, "ttl": 3600, "data": {"stations": stations}})


async def test_velib_shaped_feed_gives_ebikes_feed_time_and_per_station_staleness(upstream):
    upstream.route("/info.json", Reply(body=_information()))
    upstream.route("/status.json", Reply(body=_status()))
    text = CONFIG.replace("{info}", upstream.url("/info.json"))
    runtime = runtime_from(text.replace("{status}", upstream.url("/status.json")))
    await runtime.poll_once("velib")
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        response = await client.get("/v1/bikes/stations?lat=48.85&lon=2.33&radius=5000")
        body = await response.json()
        source = (await (await client.get("/v1/sources/velib")).json())["data"]
    stations = {s["id"]: s for s in body["data"]}
    silent, fresh = stations["velib:1"], stations["velib:2"]
    assert (silent["bikes_available"], silent["ebikes_available"]) == (5, 2)
    assert fresh["ebikes_available"] == 0  # published as 0: zero, not unknown
    # The feed time is read from lastUpdatedOther: 30 s old, not stale.
    assert body["meta"]["feeds"]["velib"]["age_s"] == 30.0
    assert body["meta"]["feeds"]["velib"]["stale"] is False
    assert source["stats"]["feed_last_updated"] is not None
    # Names double-encoded in the feed itself are repaired, and each repair reported; a name
    # that is not mojibake (an en dash, a curly apostrophe) is left exactly as sent.
    assert silent["name"] == "Mairie du 16ème"
    assert fresh["name"] == "Gare de Lyon – Rue d’Austerlitz"
    assert source["state"] == "degraded"
    assert source["issues"]["count"] == 1
    detail = runtime.statuses["velib"].to_json(runtime.clock.now(), detail=True)
    assert detail["issues"]["examples"] == [
        "station '1': name repaired from mojibake ('Mairie du 16ÃƒÂ¨me' → 'Mairie du 16ème')"
    ]
    # Each station by its own report: 50 minutes silent is stale despite the 1 h ttl.
    assert silent["freshness"] == {"age_s": 3000.0, "stale": True}
    assert fresh["freshness"] == {"age_s": 40.0, "stale": False}


def test_every_published_form_of_the_ebike_count():
    electric = frozenset({"ebike-type"})
    forms = [
        ({"num_ebikes_available": 2}, 2),  # Lyft
        ({"vehicle_types_available": [{"vehicle_type_id": "ebike-type", "count": 2}]}, 2),
        ({"num_bikes_available_types": {"mechanical": 3, "ebike": 2}}, 2),  # 2.x-era dict
        ({"num_bikes_available_types": [{"mechanical": 3}, {"ebike": 2}]}, 2),  # Vélib'
        ({"num_bikes_available_types": [{"mechanical": 3}]}, None),  # no e-bike key: unknown
        ({"num_bikes_available": 3}, None),
    ]
    for status, expected in forms:
        assert files.ebikes_of(status, electric) == expected, status


def test_feed_time_variants_and_version_fallback():
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Paris")
    for key in ("last_updated", "lastUpdatedOther", "lastUpdated"):
        stamp, ttl = files.header({key: NOW, "ttl": 60}, zone)
        assert stamp is not None and stamp.timestamp() == NOW and ttl == 60
    assert files.header({"ttl": 60}, zone) == (None, 60)
    assert files.version_of({"station_status": {}, "station_information": {"version": "2.2"}}) == (
        "2.2"
    )
    assert files.version_of({"station_status": {}}) is None

"""The gbfs connector type on real feeds (Lovélo GBFS 2.3, Bay Wheels pre-2.x) and GBFS 3.0."""

from __future__ import annotations

import orjson
import pytest
from upstream_server import Reply

from aggregator.config import ConfigError

from .helpers import config_from, fixture, runtime_from

LOVELO = """
defaults: {timezone: Europe/Paris}
clock: {fixed: "2025-02-28T10:12:00+01:00"}
connectors:
  - id: lovelo
    type: gbfs
    files:
      station_information: {info}
      station_status: {status}
"""


def lovelo_runtime(upstream, **status_reply):
    upstream.route("/info.json", Reply(body=fixture("lovelo-station_information.json")))
    upstream.route(
        "/status.json", Reply(body=fixture("lovelo-station_status.json"), **status_reply)
    )
    text = LOVELO.replace("{info}", upstream.url("/info.json"))
    return runtime_from(text.replace("{status}", upstream.url("/status.json")))


async def test_gbfs_2_3_files_configured_directly_give_namespaced_stations(upstream):
    """Lovélo's real 2.3 files, named one by one (no gbfs.json), join into 122 stations."""
    runtime = lovelo_runtime(upstream)
    assert (await runtime.poll_once("lovelo")).outcome == "changed"
    stations = {s["id"]: s for s in runtime.live.snapshot("lovelo").data.stations}
    assert len(stations) == 122
    calende = stations["lovelo:5288"]
    assert calende["name"] == "131 - CALENDE"
    assert calende["address"] == "Place de la Calende, 76000 ROUEN"
    assert (calende["lat"], calende["lon"]) == (49.43954661258192, 1.0939798343708844)
    assert calende["capacity"] == 10
    assert (calende["bikes_available"], calende["docks_available"]) == (5, 5)
    assert calende["is_renting"] is calende["is_returning"] is calende["is_installed"] is True
    assert calende["last_reported"] == "2025-02-28T10:10:49+01:00"
    # Lovélo publishes no vehicle_types and no e-bike count: unknown, not zero.
    assert calende["ebikes_available"] is None


async def test_uninstalled_station_neither_rents_nor_returns(upstream):
    """Station 5121, marked not installed in the real feed, is neither renting nor returning."""
    runtime = lovelo_runtime(upstream)
    await runtime.poll_once("lovelo")
    station = next(
        s for s in runtime.live.snapshot("lovelo").data.stations if s["id"].endswith(":5121")
    )
    assert station["is_installed"] is False
    assert station["is_renting"] is False and station["is_returning"] is False


async def test_staleness_follows_the_publishers_last_updated(upstream):
    """The source reports the age of the feed's last_updated, judged on the deployment clock."""
    runtime = lovelo_runtime(upstream)
    await runtime.poll_once("lovelo")
    snapshot = runtime.live.snapshot("lovelo")
    connector_type = runtime.connector_types["gbfs"]
    live = connector_type.live_status(snapshot, runtime.clock.now())
    # last_updated 1740733845 = 09:10:45Z; the clock says 09:12:00Z.
    assert live == {"feed_age_s": 75.0, "feed_stale": False}
    later = runtime.clock.now().replace(hour=11)
    assert connector_type.live_status(snapshot, later)["feed_stale"] is True


async def test_a_file_is_not_fetched_again_before_its_ttl(upstream):
    """With Lovélo's ttl of 15 s, a second poll right away asks upstream nothing."""
    runtime = lovelo_runtime(upstream)
    assert (await runtime.poll_once("lovelo")).outcome == "changed"
    assert (await runtime.poll_once("lovelo")).outcome == "unchanged"
    assert upstream.hits("/status.json") == upstream.hits("/info.json") == 1


async def test_an_expired_ttl_means_a_conditional_request(upstream):
    """Once a file's ttl has run out it is asked for again, conditionally (ETag → 304)."""
    runtime = lovelo_runtime(upstream, headers={"ETag": '"v1"'})
    connector = runtime.connectors["lovelo"]
    clock = [1000.0]
    connector.monotonic = lambda: clock[0]
    await runtime.poll_once("lovelo")
    clock[0] += 16  # past the 15 s ttl
    assert (await runtime.poll_once("lovelo")).outcome == "unchanged"
    requests = upstream.requests("/status.json")
    assert len(requests) == 2
    assert requests[1]["If-None-Match"] == '"v1"'


async def test_pre_2x_feed_booleans_ebikes_and_free_bikes(upstream):
    """Bay Wheels' real pre-2.x files: 0/1 flags, Lyft's e-bike counts, 720 free bikes."""
    for name in ("station_information", "station_status", "free_bike_status", "system_alerts"):
        upstream.route(f"/{name}.json", Reply(body=fixture(f"baywheels-{name}.json.gz")))
    runtime = runtime_from(
        f"""
        connectors:
          - id: baywheels
            type: gbfs
            files:
              station_information: {upstream.url("/station_information.json")}
              station_status: {upstream.url("/station_status.json")}
              free_bike_status: {upstream.url("/free_bike_status.json")}
              system_alerts: {upstream.url("/system_alerts.json")}
        """
    )
    assert (await runtime.poll_once("baywheels")).outcome == "changed"
    network = runtime.live.snapshot("baywheels").data
    station = next(
        s for s in network.stations if s["id"] == "baywheels:ed707a89-a68d-4921-a4cb-16c268e45a5b"
    )
    assert station["name"] == "San Fernando St at 7th St"
    assert (station["bikes_available"], station["ebikes_available"]) == (20, 2)
    assert station["docks_available"] == 3
    assert station["is_renting"] is True and station["is_installed"] is True
    assert len(network.stations) == 496
    assert sum(1 for s in network.stations if s["is_renting"] is False) == 6
    assert network.free_vehicles == 720
    assert runtime.statuses["baywheels"].stats["free_vehicles"] == 720


def _v3_documents(base: str) -> dict[str, bytes]:
    """A small GBFS 3.0 system after the 3.0 reference (RFC 3339 times, localised names)."""
    header = {"last_updated": "2025-03-01T08:00:00+01:00", "ttl": 60, "version": "3.0"}
    docs = {
        "gbfs": {
            **header,
            "data": {
                "feeds": [
                    {"name": n, "url": f"{base}/v3/{n}.json"}
                    for n in (
                        "system_information",
                        "vehicle_types",
                        "station_information",
                        "station_status",
                        "vehicle_status",
                        "system_alerts",
                    )
                ]
            },
        },
        "system_information": {
            **header,
            "data": {"system_id": "v3", "name": [{"text": "Vélos de test", "language": "fr"}]},
        },
        "vehicle_types": {
            **header,
            "data": {
                "vehicle_types": [
                    {
                        "vehicle_type_id": "classic",
                        "form_factor": "bicycle",
                        "propulsion_type": "human",
                    },
                    {
                        "vehicle_type_id": "vae",
                        "form_factor": "bicycle",
                        "propulsion_type": "electric_assist",
                    },
                ]
            },
        },
        "station_information": {
            **header,
            "data": {
                "stations": [
                    {
                        "station_id": "gare",
                        "name": [
                            {"text": "Station Gare", "language": "en"},
                            {"text": "Gare Lille Flandres", "language": "fr"},
                        ],
                        "lat": 50.6366,
                        "lon": 3.0705,
                        "capacity": 20,
                    }
                ]
            },
        },
        "station_status": {
            **header,
            "data": {
                "stations": [
                    {
                        "station_id": "gare",
                        "num_vehicles_available": 7,
                        "vehicle_types_available": [
                            {"vehicle_type_id": "classic", "count": 4},
                            {"vehicle_type_id": "vae", "count": 3},
                        ],
                        "num_docks_available": 13,
                        "is_installed": True,
                        "is_renting": True,
                        "is_returning": False,
                        "last_reported": "2025-03-01T07:59:30+01:00",
                    }
                ]
            },
        },
        "vehicle_status": {
            **header,
            "data": {
                "vehicles": [
                    {"vehicle_id": "a", "is_reserved": False, "is_disabled": False},
                    {"vehicle_id": "b", "is_reserved": True, "is_disabled": False},
                    {
                        "vehicle_id": "c",
                        "is_reserved": False,
                        "is_disabled": False,
                        "station_id": "gare",
                    },
                ]
            },
        },
        "system_alerts": {
            **header,
            "data": {
                "alerts": [
                    {
                        "alert_id": "works",
                        "type": "station_move",
                        "station_ids": ["gare"],
                        "summary": [{"text": "Travaux devant la gare", "language": "fr"}],
                    }
                ]
            },
        },
    }
    return {name: orjson.dumps(doc) for name, doc in docs.items()}


async def test_gbfs_3_auto_discovery_localised_names_and_electric_types(upstream):
    """A 3.0 gbfs.json leads to every file; e-bikes come from vehicle_types' propulsion."""
    for name, body in _v3_documents(upstream.url("")).items():
        upstream.route("/v3/gbfs.json" if name == "gbfs" else f"/v3/{name}.json", Reply(body=body))
    runtime = runtime_from(
        f"""
        defaults: {{languages: [fr, en]}}
        clock: {{fixed: "2025-03-01T08:01:00+01:00"}}
        connectors:
          - id: v3
            type: gbfs
            discovery_url: {upstream.url("/v3/gbfs.json")}
        """
    )
    assert (await runtime.poll_once("v3")).outcome == "changed"
    network = runtime.live.snapshot("v3").data
    (station,) = network.stations
    assert station["name"] == "Gare Lille Flandres"
    assert (station["bikes_available"], station["ebikes_available"]) == (7, 3)
    assert station["is_returning"] is False
    assert station["last_reported"] == "2025-03-01T07:59:30+01:00"
    assert station["alert_ids"] == ["v3:works"]
    assert network.free_vehicles == 1  # one reserved, one docked
    assert network.system["name"] == "Vélos de test"
    assert runtime.statuses["v3"].stats["gbfs_version"] == "3.0"
    assert upstream.hits("/v3/gbfs.json") == 1


async def test_gbfs_2_discovery_picks_the_deployments_language(upstream):
    """A 2.x gbfs.json lists feeds per language: the deployment's first language is read."""
    discovery = {
        "last_updated": 1740733845,
        "ttl": 15,
        "version": "2.3",
        "data": {
            lang: {
                "feeds": [
                    {"name": "station_information", "url": upstream.url(f"/{lang}/info.json")},
                    {"name": "station_status", "url": upstream.url(f"/{lang}/status.json")},
                ]
            }
            for lang in ("en", "fr")
        },
    }
    upstream.route("/gbfs.json", Reply(body=orjson.dumps(discovery)))
    upstream.route("/fr/info.json", Reply(body=fixture("lovelo-station_information.json")))
    upstream.route("/fr/status.json", Reply(body=fixture("lovelo-station_status.json")))
    runtime = runtime_from(
        f"""
        defaults: {{languages: [fr]}}
        connectors:
          - id: lovelo
            type: gbfs
            discovery_url: {upstream.url("/gbfs.json")}
        """
    )
    assert (await runtime.poll_once("lovelo")).outcome == "changed"
    assert runtime.statuses["lovelo"].record_count == 122
    assert upstream.hits("/en/status.json") == 0


async def test_a_failing_optional_file_keeps_the_stations(upstream):
    """system_alerts answering 500 is reported as an issue; the stations still load."""
    upstream.route("/alerts.json", Reply(status=500))
    upstream.route("/info.json", Reply(body=fixture("lovelo-station_information.json")))
    upstream.route("/status.json", Reply(body=fixture("lovelo-station_status.json")))
    runtime = runtime_from(
        f"""
        connectors:
          - id: lovelo
            type: gbfs
            retries: 0
            files:
              station_information: {upstream.url("/info.json")}
              station_status: {upstream.url("/status.json")}
              system_alerts: {upstream.url("/alerts.json")}
        """
    )
    assert (await runtime.poll_once("lovelo")).outcome == "changed"
    status = runtime.statuses["lovelo"]
    assert status.record_count == 122
    assert "system_alerts" in status.issue_samples[0] and "500" in status.issue_samples[0]


async def test_a_failing_station_status_fails_the_poll(upstream):
    """Without station_status there is no availability: the poll fails and says why."""
    upstream.route("/info.json", Reply(body=fixture("lovelo-station_information.json")))
    upstream.route("/status.json", Reply(status=404))
    runtime = runtime_from(
        f"""
        connectors:
          - id: lovelo
            type: gbfs
            files:
              station_information: {upstream.url("/info.json")}
              station_status: {upstream.url("/status.json")}
        """
    )
    outcome = await runtime.poll_once("lovelo")
    assert outcome.outcome == "failed" and "404" in (outcome.error or "")
    assert runtime.live.snapshot("lovelo") is None


def test_config_needs_discovery_or_both_station_files():
    """A gbfs source with neither gbfs.json nor station_status is a config error naming both."""
    with pytest.raises(ConfigError) as caught:
        config_from(
            """
            connectors:
              - id: bikes
                type: gbfs
                files: {station_information: "https://example.org/si.json"}
            """
        )
    assert "discovery_url" in str(caught.value) and "station_status" in str(caught.value)

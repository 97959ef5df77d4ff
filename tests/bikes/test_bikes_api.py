"""/v1/bikes/stations over a GBFS source (Lovélo, real) and V'Lille mapped from OGC API Features."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from aggregator.api.app import create_app
from connectors.bikes.source import INDEX_NAME

from .helpers import FIXTURES, config_from, runtime_from

VLILLE = """
  - id: vlille
    type: bike_stations
    title: V'Lille (hand-made sample shaped like ilevia:vlille_temps_reel)
    url: file:{file}
    id_field: libelle
    fields:
      name: nom
      address: adresse
      bikes_available: nbvelosdispo
      docks_available: nbplacesdispo
      is_installed: etat
      is_renting: etatconnexion
      is_returning: etatconnexion
      last_reported: datemiseajour
    values:
      is_installed: {"EN SERVICE": true, "HORS SERVICE": false}
      is_renting: {CONNECTED: true, DISCONNECTED: false}
      is_returning: {CONNECTED: true, DISCONNECTED: false}
"""
CONFIG = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
clock: {fixed: "2025-03-01T09:00:00+01:00"}
connectors:
  - id: lovelo
    type: gbfs
    files:
      station_information: file:lovelo-station_information.json
      station_status: file:lovelo-station_status.json
""" + VLILLE.replace("{file}", "vlille_temps_reel-handmade.geojson")
GARE_LILLE_FLANDRES = (50.636763, 3.070576)


@pytest.fixture
async def runtime():
    runtime = runtime_from(CONFIG, base_dir=FIXTURES)
    for source_id in runtime.connectors:
        assert (await runtime.poll_once(source_id)).outcome == "changed"
    return runtime


@pytest.fixture
async def client(runtime):
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def get_json(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


async def test_vlille_mapped_by_yaml_alone_nearest_first(client):
    """V'Lille stations come nearest first from the station, with namespaced ids and distance."""
    lat, lon = GARE_LILLE_FLANDRES
    body = await get_json(client, f"/v1/bikes/stations?lat={lat}&lon={lon}&radius=1500")
    stations = body["data"]
    assert [s["id"] for s in stations] == ["vlille:36", "vlille:12", "vlille:8", "vlille:19"]
    distances = [s["distance_m"] for s in stations]
    assert distances == sorted(distances) and distances[0] == 0.0
    gare = stations[0]
    assert gare["name"] == "GARE LILLE FLANDRES" and gare["address"] == "PLACE DES BUISSES"
    assert (gare["bikes_available"], gare["docks_available"]) == (11, 25)
    assert gare["is_renting"] is gare["is_returning"] is gare["is_installed"] is True
    assert gare["ebikes_available"] is None
    assert gare["freshness"] == {"age_s": 19.0, "stale": False}  # reported 08:59:41


async def test_vlille_states_map_onto_renting_and_returning(client):
    """A disconnected station rents nothing; one out of service neither rents nor returns."""
    lat, lon = GARE_LILLE_FLANDRES
    body = await get_json(client, f"/v1/bikes/stations?lat={lat}&lon={lon}&radius=1500")
    by_id = {s["id"]: s for s in body["data"]}
    opera = by_id["vlille:12"]
    assert opera["is_installed"] is True and opera["is_renting"] is False
    assert opera["freshness"]["stale"] is True  # its last report is from 06:12
    concert = by_id["vlille:19"]
    assert concert["is_installed"] is False
    assert concert["is_renting"] is False and concert["is_returning"] is False


async def test_an_unlisted_state_is_reported_not_guessed(runtime):
    """'EN TRAVAUX' is not in the value map: is_installed stays unknown and the source says so."""
    roubaix = next(
        s for s in runtime.live.snapshot("vlille").data.stations if s["id"] == "vlille:204"
    )
    assert roubaix["is_installed"] is None
    status = runtime.statuses["vlille"]
    assert status.issue_count == 1
    assert "'EN TRAVAUX' is not listed in values.is_installed" in status.issue_samples[0]


async def test_radius_limit_and_source_filter(client):
    """radius and limit bound the answer; source= keeps one bike source."""
    lat, lon = GARE_LILLE_FLANDRES
    body = await get_json(client, f"/v1/bikes/stations?lat={lat}&lon={lon}&radius=700&limit=2")
    assert [s["id"] for s in body["data"]] == ["vlille:36", "vlille:12"]
    rouen = await get_json(client, "/v1/bikes/stations?lat=49.4395&lon=1.0940&radius=300")
    assert rouen["data"][0]["id"] == "lovelo:5288"
    only = await get_json(
        client, "/v1/bikes/stations?lat=49.4395&lon=1.0940&radius=300&source=vlille"
    )
    assert only["data"] == []
    assert set(only["meta"]["sources"]) == {"vlille"}


async def test_gbfs_feed_freshness_follows_last_updated(client):
    """Lovélo's capture is a day old at the demo clock: its feed and stations are flagged stale."""
    body = await get_json(client, "/v1/bikes/stations?lat=49.4395&lon=1.0940&radius=300")
    feed = body["meta"]["feeds"]["lovelo"]
    assert feed["last_updated"] == "2025-02-28T10:10:45+01:00" and feed["stale"] is True
    assert body["data"][0]["freshness"]["stale"] is True
    # Our own poll succeeded just now, but what it brought is a day old: the source is stale
    # for its content (issue 20), everywhere at once.
    fresh = body["meta"]["sources"]["lovelo"]
    assert (fresh["state"], fresh["stale_reason"]) == ("stale", "content_outdated")
    sources = await get_json(client, "/v1/sources/lovelo")
    assert sources["data"]["stats"]["feed_stale"] is True
    assert sources["data"]["state"] == "stale"
    assert sources["data"]["content"]["reason"] == "content_outdated"


async def test_geojson_puts_longitude_first(client):
    """format=geojson is an RFC 7946 FeatureCollection of [lon, lat] points."""
    lat, lon = GARE_LILLE_FLANDRES
    response = await client.get(f"/v1/bikes/stations?lat={lat}&lon={lon}&limit=1&format=geojson")
    assert response.headers["Content-Type"].startswith("application/geo+json")
    body = await response.json(content_type=None)
    (feature,) = body["features"]
    assert feature["id"] == "vlille:36"
    assert feature["geometry"] == {"type": "Point", "coordinates": [3.070576, 50.636763]}
    assert feature["properties"]["bikes_available"] == 11
    assert "sources" in body["meta"]


async def test_bad_parameters_are_problems(client):
    """Missing lat, an unknown source or a huge radius are 400s naming the parameter."""
    missing = await get_json(client, "/v1/bikes/stations?lon=3.07", status=400)
    assert missing["errors"][0]["parameter"] == "lat"
    unknown = await get_json(client, "/v1/bikes/stations?lat=50&lon=3&source=lovel", status=400)
    assert unknown["errors"][0]["parameter"] == "source"
    await get_json(client, "/v1/bikes/stations?lat=50&lon=3&radius=99999", status=400)


async def test_index_is_built_per_snapshot_not_per_request(runtime, client):
    """The index exists as soon as the snapshot does; requests never rebuild it."""

    def must_not_build(_snapshot):
        raise AssertionError("the index was built on request")

    await get_json(client, "/v1/bikes/stations?lat=50.6368&lon=3.0706")
    first = runtime.live.index("vlille", INDEX_NAME, must_not_build)
    await get_json(client, "/v1/bikes/stations?lat=50.6368&lon=3.0706")
    assert runtime.live.index("vlille", INDEX_NAME, must_not_build) is first
    assert len(first) == 5


async def test_opendatasoft_v1_records_map_the_same_way(upstream):
    """The older Opendatasoft vlille-realtime records (fields + geometry) give the same model."""
    from upstream_server import Reply

    upstream.route("/ods.json", Reply.file(FIXTURES / "vlille-realtime-ods-v1-handmade.json"))
    text = "connectors:\n" + VLILLE.replace("file:{file}", upstream.url("/ods.json"))
    runtime = runtime_from(text)
    assert (await runtime.poll_once("vlille")).outcome == "changed"
    stations = runtime.live.snapshot("vlille").data.stations
    assert [(s["id"], s["lat"], s["lon"], s["bikes_available"]) for s in stations] == [
        ("vlille:8", 50.632366, 3.062313, 14),
        ("vlille:12", 50.637486, 3.065902, 15),
    ]
    assert runtime.statuses["vlille"].issue_count == 0


def test_value_maps_must_name_mapped_fields():
    """A value map for a field that is not mapped is a config error, not a silent no-op."""
    from aggregator.config import ConfigError

    with pytest.raises(ConfigError, match="is_renting"):
        config_from(
            """
            connectors:
              - id: v
                type: bike_stations
                url: https://example.org/v.json
                id_field: libelle
                values: {is_renting: {CONNECTED: true}}
            """
        )


async def test_openapi_documents_the_endpoint(client):
    """The OpenAPI document lists /v1/bikes/stations with its parameters and GeoJSON form."""
    document = await get_json(client, "/v1/openapi.json")
    operation = document["paths"]["/v1/bikes/stations"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "lat", "lon", "radius", "limit", "cursor", "fields", "source", "format", "lang", "_",
        "commune",
    }  # fmt: skip
    geo = document["paths"]["/v1/bikes/stations.geojson"]["get"]
    assert list(geo["responses"]["200"]["content"]) == ["application/geo+json"]

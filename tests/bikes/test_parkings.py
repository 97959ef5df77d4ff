"""The parkings connector type and /v1/parkings, on data shaped like Lille's park-and-ride set."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from aggregator.api.app import create_app

from .helpers import FIXTURES, runtime_from

CONFIG = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
clock: {fixed: "2025-03-01T09:00:00+01:00"}
connectors:
  - id: relais
    type: parkings
    url: file:parkings-relais-ods-v1-handmade.json
    id_field: libelle
    fields:
      name: nom
      city: commune
      capacity: capacite
      free_spaces: nbplacesdispo
      state: etat
      last_updated: datemiseajour
    values:
      state: {OUVERT: open, FERME: closed, COMPLET: full}
"""
CALMETTE = (50.6080246, 3.03906918)


@pytest.fixture
async def runtime():
    runtime = runtime_from(CONFIG, base_dir=FIXTURES)
    assert (await runtime.poll_once("relais")).outcome == "changed"
    return runtime


@pytest.fixture
async def client(runtime):
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def get_json(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


async def test_car_parks_nearest_first_with_free_spaces_and_freshness(client):
    """Car parks near CHR Calmette come nearest first with free spaces, capacity and age."""
    lat, lon = CALMETTE
    body = await get_json(client, f"/v1/parkings?lat={lat}&lon={lon}&radius=3000")
    parkings = body["data"]
    assert [p["id"] for p in parkings] == ["relais:CAL1", "relais:PDP1"]
    calmette = parkings[0]
    assert calmette["name"] == "CHR B Calmette" and calmette["city"] == "Lille"
    assert (calmette["free_spaces"], calmette["capacity"]) == (246, 250)
    assert calmette["state"] == "open" and calmette["distance_m"] == 0.0
    assert calmette["freshness"] == {"age_s": 94.0, "stale": False}
    assert calmette["last_updated"] == "2025-03-01T08:58:26+01:00"
    assert body["meta"]["sources"]["relais"]["state"] == "degraded"  # see the unknown state


async def test_states_open_full_closed_unknown(runtime):
    """OUVERT with no space is full, FERME closed, a word the map lacks is unknown and reported."""
    states = {p["id"]: p["state"] for p in runtime.live.snapshot("relais").data["parkings"]}
    assert states == {
        "relais:CAL1": "open",
        "relais:PDP1": "full",
        "relais:QCA1": "closed",
        "relais:SPH1": "unknown",
    }
    assert any("'INCONNU'" in issue for issue in runtime.statuses["relais"].issue_samples)


async def test_a_closed_car_park_reported_hours_ago_is_stale(client):
    """4 Cantons last reported at 05:10: its figures are flagged stale at 09:00."""
    body = await get_json(client, "/v1/parkings?lat=50.6133&lon=3.1408&radius=100")
    (cantons,) = body["data"]
    assert cantons["state"] == "closed" and cantons["freshness"]["stale"] is True


async def test_geojson_and_bad_parameters(client):
    """format=geojson puts longitude first; a missing lon is a 400 naming it."""
    lat, lon = CALMETTE
    response = await client.get(f"/v1/parkings?lat={lat}&lon={lon}&limit=1&format=geojson")
    body = await response.json(content_type=None)
    assert body["features"][0]["geometry"]["coordinates"] == [3.03906918, 50.6080246]
    problem = await get_json(client, f"/v1/parkings?lat={lat}", status=400)
    assert problem["errors"][0]["parameter"] == "lon"


async def test_car_parks_are_cacheable_like_bike_stations(client):
    """Like its peers, /v1/parkings says how long it may be kept (the source's refresh
    interval) and answers a revalidation with its ETag by a 304; an empty answer is `[]`."""
    lat, lon = CALMETTE
    for path in (f"/v1/parkings?lat={lat}&lon={lon}", "/v1/parkings?lat=0&lon=0"):
        response = await client.get(path)
        assert response.status == 200
        assert response.headers["Cache-Control"].startswith("public, max-age=")
        assert int(response.headers["Cache-Control"].split("=")[1]) > 0
        etag = response.headers["ETag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304 and again.headers["ETag"] == etag
    assert (await get_json(client, "/v1/parkings?lat=0&lon=0"))["data"] == []

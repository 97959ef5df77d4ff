"""config/lille.yaml: valid as shipped, and its mappings read data shaped like Lille's feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import ConfigError, load_config
from aggregator.registry import config_models
from aggregator.runtime import Runtime

from .helpers import TYPES, fixture

LILLE = Path(__file__).parents[2] / "config" / "lille.yaml"


@pytest.fixture
def runtime() -> Runtime:
    environ = {"BEFFROI_CURSOR_SECRET": "a-shared-secret"}  # the one setting it requires
    return Runtime(load_config(LILLE, connector_types=config_models(TYPES), environ=environ), TYPES)


def test_lille_config_refuses_to_start_without_a_cursor_secret():
    """An empty default would let two processes refuse each other's page cursors."""
    with pytest.raises(ConfigError, match="set BEFFROI_CURSOR_SECRET to a long random secret"):
        load_config(LILLE, connector_types=config_models(TYPES), environ={})


def test_lille_config_validates_with_every_publisher(runtime):
    """With only the cursor secret set, the file loads, naming Ilévia, V'Lille, parks, events."""
    types = {c.id: c.type for c in runtime.config.connectors}
    assert types == {
        "communes": "communes",
        "ilevia": "gtfs",
        "ilevia-rt": "gtfs_rt",
        "ilevia-perturbations": "mapped_alerts",
        "vlille": "bike_stations",
        "parkings-relais": "parkings",
        "mel-places": "places",
        "openagenda-lille": "opendatasoft",
        "mel-conseil": "opendatasoft",
        "lille-news": "news",
        "mel-collecte": "waste",
    }
    assert runtime.config.connector("ilevia-rt").feed == "ilevia"
    assert runtime.config.connector("ilevia-perturbations").feed == "ilevia"
    assert runtime.config.connector("mel-conseil").channel == "agenda"
    assert runtime.config.connector("openagenda-lille").where == 'location_city = "Lille"'


def test_lille_vlille_mapping_reads_the_collections_shape(runtime):
    """The shipped V'Lille mapping turns a vlille_temps_reel-shaped document into stations."""
    result = runtime.connectors["vlille"].parse(fixture("vlille_temps_reel-handmade.geojson"))
    stations = {s["id"]: s for s in result.data.stations}
    assert len(stations) == 5
    gare = stations["vlille:36"]
    assert (gare["name"], gare["bikes_available"], gare["is_renting"]) == (
        "GARE LILLE FLANDRES",
        11,
        True,
    )
    assert stations["vlille:12"]["is_renting"] is False  # DISCONNECTED


def test_lille_parkings_mapping_reads_the_park_and_ride_shape(runtime):
    """The shipped car-park mapping reads Opendatasoft v1 park-and-ride records."""
    result = runtime.connectors["parkings-relais"].parse(
        fixture("parkings-relais-ods-v1-handmade.json")
    )
    by_id = {p["id"]: p for p in result.data["parkings"]}
    assert by_id["parkings-relais:CAL1"]["free_spaces"] == 246
    assert by_id["parkings-relais:PDP1"]["state"] == "full"

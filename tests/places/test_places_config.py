"""A places source's config errors name the key; a broken body keeps the last good data."""

from __future__ import annotations

import pytest
from bikes.helpers import config_from, runtime_from

from aggregator.config import ConfigError

from .helpers import FIXTURES

SOURCE = """
defaults: {{timezone: Europe/Paris, allow_file_urls: true}}
connectors:
  - id: p
    type: places
    url: file:lille-places-overpass-handmade.json
    format: overpass
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ("    category: castle", "'castle' is not a category"),
        ("    home_categories: [bakery]", "'bakery' is not a category"),
        ("    values: {category: {'amenity=townhall': mairie}}", "values.category"),
        ("    holidays: {country: XX}", "'XX' is not a country"),
        ("    holidays: {country: FR, subdivision: '99'}", "subdivision '99'"),
    ],
)
def test_config_errors_name_what_is_wrong(extra, said):
    with pytest.raises(ConfigError) as error:
        config_from(SOURCE.format(extra=extra), base_dir=FIXTURES)
    assert said in str(error.value)


async def test_a_broken_body_keeps_the_last_good_places(tmp_path):
    """An Overpass answer cut short (not JSON) fails the poll with the reason, and the
    places read before keep being served."""
    body = tmp_path / "places.json"
    body.write_bytes((FIXTURES / "lille-places-overpass-handmade.json").read_bytes())
    source = SOURCE.format(extra="").replace("lille-places-overpass-handmade.json", "places.json")
    runtime = runtime_from(source, base_dir=tmp_path)
    assert (await runtime.poll_once("p")).outcome == "changed"
    kept = len(runtime.live.snapshot("p").data["places"])
    body.write_bytes(b'{"elements": [')
    outcome = await runtime.poll_once("p")
    assert outcome.outcome == "failed"
    assert "not JSON" in (runtime.statuses["p"].last_error or "")
    assert len(runtime.live.snapshot("p").data["places"]) == kept


def test_lilles_places_source_reads_an_overpass_answer():
    """config/lille.yaml's mel-places reads an `out center` answer: OSM's categories, the
    swimming pools its query keeps, ways at their centre, the home screen's categories."""
    from pathlib import Path

    from bikes.helpers import TYPES

    from aggregator.config import load_config
    from aggregator.registry import config_models
    from aggregator.runtime import Runtime

    lille = Path(__file__).parents[2] / "config" / "lille.yaml"
    environ = {"BEFFROI_CURSOR_SECRET": "s"}
    runtime = Runtime(
        load_config(lille, connector_types=config_models(TYPES), environ=environ), TYPES
    )
    source = runtime.config.connector("mel-places")
    assert source.home_categories == ["pharmacy", "town_hall", "recycling_centre"]
    result = runtime.connectors["mel-places"].parse(
        (FIXTURES / "lille-places-overpass-handmade.json").read_bytes()
    )
    categories = {p["id"]: p["category"] for p in result.data["places"]}
    assert categories["mel-places:node/101"] == "town_hall"
    assert categories["mel-places:way/202"] == "library"
    assert categories["mel-places:node/606"] == "recycling_centre"


async def test_opendatasoft_records_with_free_text_hours():
    """Explore v2.1 records: positions from geo_point_2d, a per-source category, and hours
    in free French text kept as text and reported with the record's id."""
    config = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
connectors:
  - id: dech
    type: places
    url: file:decheteries-ods-v21-handmade.json
    id_field: id_site
    category: recycling_centre
    fields:
      name: nom
      opening_hours: horaires_osm
      lat: geo_point_2d.lat
      lon: geo_point_2d.lon
      wheelchair: accessible
    values:
      wheelchair: {oui: "yes", non: "no"}
"""
    runtime = runtime_from(config, base_dir=FIXTURES)
    assert (await runtime.poll_once("dech")).outcome == "changed"
    places = {p["id"]: p for p in runtime.live.snapshot("dech").data["places"]}
    assert places["dech:D01"]["category"] == "recycling_centre"
    assert places["dech:D01"]["wheelchair"] == "yes"
    assert (places["dech:D02"]["lat"], places["dech:D02"]["lon"]) == (50.6942, 3.1746)
    issues = runtime.statuses["dech"].issue_samples
    assert any("'dech:D02'" in i and "du lundi au samedi" in i for i in issues)

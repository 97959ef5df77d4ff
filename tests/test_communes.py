"""The communes reference on real boundaries (IGN ADMIN EXPRESS COG 2018, via the demo's
extract): the source type's parse, and which commune a point is in — inside, outside, on a
shared border, in the hole of a polygon (an enclave) — checked against a plain loop over
every polygon with shapely."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point, shape
from support import runtime_from

from aggregator.communes import EMPTY, CommuneIndex
from connectors.communes.connector import build_commune_index

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "config" / "demo-data"
EXTRACT = DEMO / "communes-demo-extract.geojson"
FEATURES = json.loads(EXTRACT.read_text())["features"]

CONFIG = """
defaults: {allow_file_urls: true}
connectors:
  - id: communes
    type: communes
    url: file:communes-demo-extract.geojson
    fields: {code: code, name: nom}
"""
#: Rouen's town hall, in Rouen.
ROUEN_HOTEL_DE_VILLE = (1.0993, 49.4431)
#: A vertex of the border Rouen (76540) shares with Sotteville-lès-Rouen (76681).
ROUEN_SOTTEVILLE_BORDER = (1.10986, 49.42535)
#: A point inside the hole of Val-de-Reuil's polygon (27701), which Le Vaudreuil fills.
VAL_DE_REUIL_HOLE = (1.1962380269171256, 49.26018)


def loop_lookup(lon: float, lat: float, features=FEATURES) -> str | None:
    """The peer: every polygon tested in turn; on a border, the smallest code."""
    point = Point(lon, lat)
    codes = sorted(f["properties"]["code"] for f in features if shape(f["geometry"]).covers(point))
    return codes[0] if codes else None


@pytest.fixture(scope="module")
def index() -> CommuneIndex:
    return CommuneIndex.build(
        (f["properties"]["code"], f["properties"]["nom"], shape(f["geometry"])) for f in FEATURES
    )


async def test_the_demo_extract_loads_every_commune_with_its_code_and_name():
    """The 33 features load as communes: INSEE code, name, polygon; nothing dropped."""
    runtime = runtime_from(CONFIG, base_dir=DEMO)
    assert (await runtime.poll_once("communes")).outcome == "changed"
    snapshot = runtime.live.snapshot("communes")
    assert snapshot.record_count == 33
    assert snapshot.data["communes"]["76540"] == {"code": "76540", "name": "Rouen"}
    assert snapshot.stats == {"rows": 33, "communes": 33, "dropped": 0}
    index = build_commune_index({"communes": snapshot}, None)
    assert len(index) == 33 and index.key == (("communes", snapshot.version),)
    # The same snapshots give back the same index (no rebuild when nothing changed).
    assert build_commune_index({"communes": snapshot}, index) is index


async def test_rows_without_a_code_a_name_or_a_polygon_are_dropped_and_named(tmp_path):
    """A broken row costs that commune alone, and the source's issues say which and why."""
    rouen, paris, niort, bordeaux = (
        next(f for f in FEATURES if f["properties"]["code"] == code)
        for code in ("76540", "75056", "79191", "33063")
    )
    broken = [
        rouen,
        {**paris, "properties": {"code": "7505", "nom": "Paris"}},  # a code of 4 digits
        {**niort, "properties": {"code": "79191", "nom": ""}},
        {**bordeaux, "geometry": {"type": "Point", "coordinates": [-0.57, 44.84]}},
        rouen,  # twice
    ]
    (tmp_path / "broken.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": broken})
    )
    runtime = runtime_from(CONFIG.replace("communes-demo-extract", "broken"), base_dir=tmp_path)
    assert (await runtime.poll_once("communes")).outcome == "changed"
    assert list(runtime.live.snapshot("communes").data["communes"]) == ["76540"]
    issues = runtime.statuses["communes"].issue_samples
    assert any("no INSEE commune code at 'code' (got '7505')" in i for i in issues)
    assert any("commune 79191: no name" in i for i in issues)
    assert any("commune 33063: a 'Point' geometry, not a (Multi)Polygon" in i for i in issues)
    assert any("commune 76540 appears twice" in i for i in issues)


def test_a_point_inside_a_commune_is_in_it(index):
    """Rouen's town hall is in Rouen."""
    assert index.locate(*ROUEN_HOTEL_DE_VILLE) == {"code": "76540", "name": "Rouen"}


@pytest.mark.parametrize(
    "where",
    [
        (-122.4194, 37.7749),  # San Francisco (Caltrain)
        (13.0645, 52.3906),  # Potsdam
        (0.5, 50.0),  # the Channel, off Dieppe
        (1.0993, 49.2),  # Normandy, between the bundled communes
    ],
)
def test_a_point_outside_every_commune_is_in_none(index, where):
    """Outside every polygon: no commune (null in the answers), never the nearest one."""
    assert index.locate(*where) is None
    assert loop_lookup(*where) is None


def test_a_point_on_a_shared_border_goes_to_the_smaller_code(index):
    """Both polygons cover a point of their common border: the smaller code wins, whatever
    the order of the file."""
    point = Point(*ROUEN_SOTTEVILLE_BORDER)
    covering = sorted(
        f["properties"]["code"] for f in FEATURES if shape(f["geometry"]).covers(point)
    )
    assert covering == ["76540", "76681"]
    assert index.locate(*ROUEN_SOTTEVILLE_BORDER)["code"] == "76540"
    shuffled = CommuneIndex.build(
        (f["properties"]["code"], f["properties"]["nom"], shape(f["geometry"]))
        for f in reversed(FEATURES)
    )
    assert shuffled.locate(*ROUEN_SOTTEVILLE_BORDER)["code"] == "76540"


def test_a_point_in_a_hole_is_in_the_enclave_not_in_the_commune_around_it(index):
    """Val-de-Reuil's polygon has a hole that Le Vaudreuil fills: a point there is in Le
    Vaudreuil; without Le Vaudreuil's polygon, in no commune (not Val-de-Reuil)."""
    val_de_reuil = shape(
        next(f for f in FEATURES if f["properties"]["code"] == "27701")["geometry"]
    )
    assert any(len(part.interiors) for part in val_de_reuil.geoms)
    assert not val_de_reuil.covers(Point(*VAL_DE_REUIL_HOLE))
    assert index.locate(*VAL_DE_REUIL_HOLE) == {"code": "27528", "name": "Vaudreuil"}
    without = [f for f in FEATURES if f["properties"]["code"] != "27528"]
    alone = CommuneIndex.build(
        (f["properties"]["code"], f["properties"]["nom"], shape(f["geometry"])) for f in without
    )
    assert alone.locate(*VAL_DE_REUIL_HOLE) is None


def demo_points() -> list[tuple[float, float]]:
    """(lon, lat) of the demo's located French and foreign records."""
    points = []
    bikes = json.loads((DEMO / "lovelo-station-information.json").read_text())
    points += [(s["lon"], s["lat"]) for s in bikes["data"]["stations"]]
    events = json.loads((DEMO / "openagenda-paris-events-ods-v1.json").read_text())
    for record in events["records"]:
        if where := record["fields"].get("location_coordinates"):
            points.append((where[1], where[0]))
    for feature in json.loads((DEMO / "niort-pharmacies-osm.geojson").read_text())["features"]:
        point = shape(feature["geometry"]).representative_point()
        points.append((point.x, point.y))
    return [*points, ROUEN_SOTTEVILLE_BORDER, VAL_DE_REUIL_HOLE, (-122.4194, 37.7749)]


def test_the_vectorised_lookup_agrees_with_a_loop_over_every_polygon(index):
    """Every demo record (Rouen's stations, Paris' events, Niort's pharmacies, and the edge
    cases above): one STRtree query gives what testing each polygon in turn gives."""
    points = demo_points()
    lons, lats = zip(*points, strict=True)
    positions = index.locate_many(lons, lats)
    found = [index.codes[p] if p >= 0 else None for p in positions]
    assert found == [loop_lookup(lon, lat) for lon, lat in points]
    assert found.count(None) == 1  # San Francisco: the extract has every French record's
    # Every commune of the extract but the 6 of Bordeaux's waste zones and Val-de-Reuil.
    assert len(set(found) - {None}) == 26


def test_records_without_coordinates_and_an_empty_reference_give_no_commune(index):
    """NaN coordinates are in no commune; with no communes loaded, nothing is in one."""
    positions = index.locate_many([np.nan, ROUEN_HOTEL_DE_VILLE[0]], [49.0, np.nan])
    assert positions.tolist() == [-1, -1]
    assert EMPTY.locate(*ROUEN_HOTEL_DE_VILLE) is None
    assert EMPTY.locate_many([], []).tolist() == []

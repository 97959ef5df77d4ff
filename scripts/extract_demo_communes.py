r"""Cut the demo's commune boundaries out of a checkout of gregoiredavid/france-geojson.

    python scripts/extract_demo_communes.py FRANCE_GEOJSON_DIR \
        > config/demo-data/communes-demo-extract.geojson

Keeps the communes that contain a French record of the demo data (a Lovélo station, a Paris
event's place, a Niort pharmacy, the representative point of a Bordeaux waste zone), plus the
communes named in EXTRA (Val-de-Reuil, whose polygon has a hole, and Le Vaudreuil, the
enclave that fills it, for the tests). Features are copied
unchanged (properties ``code``, ``nom``), sorted by code. See config/demo-data/PROVENANCE.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shapely import STRtree
from shapely.geometry import Point, shape

DEMO = Path(__file__).resolve().parent.parent / "config" / "demo-data"
#: The départements whose communes the demo's records fall in.
DEPARTMENTS = ("14", "26", "27", "33", "75", "76", "78", "79", "91", "92", "93", "94", "95")
#: Communes kept although no record falls in them: an enclave and the commune around it.
EXTRA = ("27528", "27701")


def demo_points() -> list[tuple[float, float]]:
    """(lon, lat) of every French located record of the demo data."""
    points = []
    bikes = json.loads((DEMO / "lovelo-station-information.json").read_text())
    points += [(s["lon"], s["lat"]) for s in bikes["data"]["stations"]]
    events = json.loads((DEMO / "openagenda-paris-events-ods-v1.json").read_text())
    for record in events["records"]:
        if where := record["fields"].get("location_coordinates"):
            points.append((where[1], where[0]))
    pharmacies = json.loads((DEMO / "niort-pharmacies-osm.geojson").read_text())
    for feature in pharmacies["features"]:
        point = shape(feature["geometry"]).representative_point()
        points.append((point.x, point.y))
    for zone in json.loads((DEMO / "bordeaux-metropole-collection-zones.json").read_text()):
        geometry = zone["geo_shape"]
        point = shape(geometry.get("geometry", geometry)).representative_point()
        points.append((point.x, point.y))
    return points


def main(checkout: Path) -> None:
    features = []
    for department in DEPARTMENTS:
        pattern = f"{department}-*/communes-{department}-*.geojson"
        (path,) = (checkout / "departements").glob(pattern)
        features += json.loads(path.read_text())["features"]
    tree = STRtree([shape(f["geometry"]) for f in features])
    kept = {
        features[i]["properties"]["code"]: features[i]
        for i in (int(i) for x, y in demo_points() for i in tree.query(Point(x, y), "intersects"))
    }
    kept |= {f["properties"]["code"]: f for f in features if f["properties"]["code"] in EXTRA}
    out = {"type": "FeatureCollection", "features": [kept[code] for code in sorted(kept)]}
    sys.stdout.write(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

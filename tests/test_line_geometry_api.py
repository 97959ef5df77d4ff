"""GET /v1/lines/{line_id}?format=geojson on the bundled real feeds: Caltrain 2023 has
shapes.txt, the Québec ferries 2026 do not (their lines are drawn through their stops)."""

import csv
import io
import zipfile

import jsonschema_rs
import test_transit_api
from test_transit_api import CONFIG_DIR, get_json

#: The demo's Caltrain and STQ feeds, served as test_transit_api serves them.
client = test_transit_api.client

CALTRAIN_ZIP = CONFIG_DIR / "demo-data" / "caltrain-2023-11.gtfs.zip"


async def get_geojson(client, path):
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/geo+json")
    return await response.json(content_type=None)


def _shape_sizes() -> dict[str, int]:
    """Points per shape in the demo's shapes.txt, read plainly with the csv module."""
    sizes: dict[str, int] = {}
    with zipfile.ZipFile(CALTRAIN_ZIP) as z, z.open("shapes.txt") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, "utf-8-sig")):
            sizes[row["shape_id"]] = sizes.get(row["shape_id"], 0) + 1
    return sizes


async def test_a_line_with_shapes_gives_a_linestring_per_direction_and_shape(client):
    """Caltrain L1: LineStrings from shapes.txt, [lon, lat], both ways, every trip counted."""
    body = await get_geojson(client, "/v1/lines/caltrain:L1?format=geojson")
    assert body["type"] == "FeatureCollection"
    assert "data" not in body and body["meta"]["sources"]["caltrain"]["state"] == "ok"
    features = body["features"]
    assert {f["properties"]["direction_id"] for f in features} == {0, 1}
    assert {f["properties"]["geometry_source"] for f in features} == {"shapes.txt"}
    sizes = _shape_sizes()
    for feature in features:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "LineString"
        coordinates = feature["geometry"]["coordinates"]
        native = feature["properties"]["shape_id"].removeprefix("caltrain:")
        assert len(coordinates) == sizes[native]
        # [lon, lat]: the Peninsula is near 122° W, 37.5° N.
        assert all(-123 < lon < -121 and 37 < lat < 38 for lon, lat in coordinates)
        assert feature["properties"]["line_id"] == "caltrain:L1"
    west, south, east, north = body["bbox"]
    assert west < east and south < north and west > -123 and north < 38
    line = await get_json(client, "/v1/lines/caltrain:L1")
    for direction in line["data"]["directions"]:
        drawn = [
            f for f in features if f["properties"]["direction_id"] == direction["direction_id"]
        ]
        assert sum(f["properties"]["trips"] for f in drawn) == direction["trips"]
        assert direction["headsign"] in {h for f in drawn for h in f["properties"]["headsigns"]}


async def test_a_line_without_shapes_is_drawn_through_its_stops(client):
    """The ferries have no shapes.txt: each direction goes through the stops of its page."""
    line = await get_json(client, "/v1/lines/stq:quebec")
    body = await get_geojson(client, "/v1/lines/stq:quebec?format=geojson")
    features = body["features"]
    assert len(features) == len(line["data"]["directions"]) >= 1
    for feature, direction in zip(features, line["data"]["directions"], strict=True):
        assert feature["properties"]["geometry_source"] == "stops"
        assert feature["properties"]["shape_id"] is None
        assert feature["properties"]["direction_id"] == direction["direction_id"]
        stops = [[stop["lon"], stop["lat"]] for stop in direction["stops"]]
        assert feature["geometry"]["coordinates"] == stops


async def test_format_json_is_the_line_page_as_before(client):
    """format=json (the default) answers the same enveloped line, with the same ETag."""
    plain = await client.get("/v1/lines/caltrain:L1")
    explicit = await client.get("/v1/lines/caltrain:L1?format=json")
    assert plain.headers["Content-Type"].startswith("application/json")
    assert plain.headers["ETag"] == explicit.headers["ETag"]
    assert (await plain.json())["data"] == (await explicit.json())["data"]


async def test_line_geojson_is_cached_like_any_answer(client):
    """The GeoJSON answer has an ETag; sending it back gives a bodiless 304."""
    first = await client.get("/v1/lines/caltrain:L1?format=geojson")
    etag = first.headers["ETag"]
    again = await client.get(
        "/v1/lines/caltrain:L1?format=geojson", headers={"If-None-Match": etag}
    )
    assert again.status == 304


async def test_bad_format_and_unknown_line_are_problems(client):
    """A format other than json/geojson is a 400 naming it; an unknown line stays a 404."""
    bad = await get_json(client, "/v1/lines/caltrain:L1?format=kml", status=400)
    assert bad["errors"][0]["parameter"] == "format" and "geojson" in bad["detail"]
    missing = await get_json(client, "/v1/lines/caltrain:NOPE?format=geojson", status=404)
    assert "caltrain:NOPE" in missing["detail"]


async def test_line_geojson_matches_its_documented_schema(client):
    """Both kinds of answer match the geo+json schema /v1/openapi.json declares for the
    GeoJSON route, /v1/lines/{line_id}.geojson; the legacy ?format=geojson answers the same."""
    document = await (await client.get("/v1/openapi.json")).json()
    geo = document["paths"]["/v1/lines/{line_id}.geojson"]["get"]
    content = geo["responses"]["200"]["content"]
    assert list(content) == ["application/geo+json"]
    assert "format" not in {p["name"] for p in geo["parameters"]}
    params = document["paths"]["/v1/lines/{line_id}"]["get"]["parameters"]
    assert next(p for p in params if p["name"] == "format")["schema"]["enum"] == ["json"]
    validator = jsonschema_rs.validator_for(
        {**content["application/geo+json"]["schema"], "components": document["components"]}
    )
    for line in ("caltrain:L1", "caltrain:L6", "stq:quebec"):
        body = await get_geojson(client, f"/v1/lines/{line}.geojson")
        assert [e.message for e in validator.iter_errors(body)] == [], line
        legacy = await get_geojson(client, f"/v1/lines/{line}?format=geojson")
        assert {**legacy, "meta": None} == {**body, "meta": None}, line

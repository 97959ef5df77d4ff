"""The commune of every located item, and ``commune=`` on every list, on real data: Rouen's
bike stations, Niort's pharmacies, Paris' events, Bordeaux's waste zones and Caltrain's stops
with the demo's communes; Lille's car parks and the Belgian railways' Lille stations with
Lille's. Expected communes come from a plain loop over the polygons (shapely), not from the
code under test. Also: sources loaded before the communes, communes that change, and the
catalogue's spatial coverage."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF, SKOS
from shapely.geometry import Point, shape
from support import runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.runtime import RUNTIME

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "config" / "demo-data"
FIXTURES = Path(__file__).parent / "fixtures"
DEMO_COMMUNES = json.loads((DEMO / "communes-demo-extract.geojson").read_text())["features"]
LILLE_COMMUNES = (FIXTURES / "communes" / "lille-villeneuve-d-ascq-2018.geojson").read_bytes()

COMMUNES = """
  - id: communes
    type: communes
    url: {url}
    fields: {{code: code, name: nom}}
"""
DEMO_SOURCES = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
clock: {fixed: "2019-09-10T12:00:00+02:00"}
connectors:
  - id: lovelo-bikes
    type: gbfs
    files:
      station_information: file:lovelo-station-information.json
      station_status: file:lovelo-station-status.json
  - id: niort-pharmacies
    type: places
    url: file:niort-pharmacies-osm.geojson
    format: geojson
    id_field: "@id"
    category: pharmacy
    fields: {name: name}
  - id: paris-events
    type: opendatasoft
    export_url: file:openagenda-paris-events-ods-v1.json
    timezone: Europe/Paris
  - id: bordeaux-waste
    type: waste
    url: file:bordeaux-metropole-collection-zones.json
    fields: {id: gid, name: commune, geometry: geo_shape, stream: type, weekdays: jour_col}
    values:
      stream: {OM: household, TRI: recycling}
  - id: caltrain
    type: gtfs
    url: file:caltrain-2023-11.gtfs.zip
"""
LILLE_SOURCES = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
clock: {fixed: "2025-03-01T09:00:00+01:00"}
connectors:
  - id: relais
    type: parkings
    url: file:bikes/parkings-relais-ods-v1-handmade.json
    id_field: libelle
    fields: {name: nom, city: commune, capacity: capacite, free_spaces: nbplacesdispo}
  - id: sncb
    type: gtfs
    url: file:communes/nmbs-lille-extract.gtfs.zip
"""
EVENT_WINDOW = "from=2018-01-01T00:00:00%2B01:00&to=2018-12-31T00:00:00%2B01:00"


def loop_commune(lon: float, lat: float, features=DEMO_COMMUNES) -> dict | None:
    """The peer: each polygon tested in turn, the smallest code on a border."""
    found = sorted(
        (f["properties"]["code"], f["properties"]["nom"])
        for f in features
        if shape(f["geometry"]).covers(Point(lon, lat))
    )
    return {"code": found[0][0], "name": found[0][1]} if found else None


async def poll_all(runtime) -> None:
    for source_id in runtime.connectors:
        assert (await runtime.poll_once(source_id)).outcome == "changed", source_id
    await runtime.live.settled()


@pytest.fixture
async def demo():
    runtime = runtime_from(
        DEMO_SOURCES + COMMUNES.format(url="file:communes-demo-extract.geojson"), base_dir=DEMO
    )
    await poll_all(runtime)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        yield client


@pytest.fixture
async def lille():
    communes = COMMUNES.format(url="file:communes/lille-villeneuve-d-ascq-2018.geojson")
    runtime = runtime_from(LILLE_SOURCES + communes, base_dir=FIXTURES)
    await poll_all(runtime)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        yield client


async def get(client, path: str, status: int = 200, **headers: str) -> dict:
    response = await client.get(path, headers=headers)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


async def csv_rows(client, path: str) -> list[dict]:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return list(csv.DictReader(io.StringIO(await response.text())))


async def test_bike_stations_carry_their_commune_and_filter_on_it(demo):
    """Every Lovélo station within 4 km of Rouen's centre has the commune its point is in;
    commune=76681 keeps Sotteville-lès-Rouen's, all of them."""
    near = "/v1/bikes/stations?lat=49.4431&lon=1.0993&radius=4000&limit=100"
    body = await get(demo, near)
    stations = body["data"]
    assert len(stations) == body["meta"]["total"] > 50
    for station in stations:
        assert station["commune"] == loop_commune(station["lon"], station["lat"]), station["id"]
    expected = {s["id"] for s in stations if s["commune"]["code"] == "76681"}
    body = await get(demo, near + "&commune=76681")
    assert {s["id"] for s in body["data"]} == expected and len(expected) == body["meta"]["total"]
    assert {s["commune"]["name"] for s in body["data"]} == {"Sotteville-lès-Rouen"}


async def test_places_carry_their_commune_and_filter_on_it(demo):
    """Niort's pharmacies: each in its commune; commune=79003 lists Aiffres' alone."""
    places = (await get(demo, "/v1/places?limit=100"))["data"]
    assert len(places) == 33
    for place in places:
        assert place["commune"] == loop_commune(place["lon"], place["lat"]), place["id"]
    aiffres = {p["id"] for p in places if p["commune"]["code"] == "79003"}
    assert aiffres
    listed = (await get(demo, "/v1/places?limit=100&commune=79003"))["data"]
    assert {p["id"] for p in listed} == aiffres
    one = listed[0]["id"]
    detail = (await get(demo, f"/v1/places/{one}"))["data"]
    assert detail["commune"] == {"code": "79003", "name": "Aiffres"}
    geojson = await get(demo, "/v1/places?limit=100&commune=79003&format=geojson")
    assert {f["properties"]["commune"]["code"] for f in geojson["features"]} == {"79003"}


async def test_events_carry_their_commune_and_filter_on_it(demo):
    """Paris' events of 2018 (some held in Rouen, Palaiseau, Villejuif, Montreuil): each
    occurrence's place in its commune (or none without a place); commune=75056 keeps Paris'
    and the total says how many."""
    everything = (await get(demo, f"/v1/events?{EVENT_WINDOW}&limit=100"))["data"]
    assert everything
    in_paris = []
    for event in everything:
        where = event.get("location") or {}
        expected = None
        if where.get("lat") is not None:
            expected = loop_commune(where["lon"], where["lat"])
        assert event["commune"] == expected, event["id"]
        if expected and expected["code"] == "75056":
            in_paris.append(event["id"])
    assert 0 < len(in_paris) < len(everything)
    body = await get(demo, f"/v1/events?{EVENT_WINDOW}&limit=100&commune=75056")
    assert [e["id"] for e in body["data"]] == in_paris
    assert body["meta"]["total"] == len(in_paris)
    detail = (await get(demo, f"/v1/events/{in_paris[0]}"))["data"]
    assert detail["commune"] == {"code": "75056", "name": "Paris"}


async def test_a_sync_of_one_commune_lists_its_occurrences_only(demo):
    """sync=start with commune=: the changed records are the commune's, with their commune."""
    body = await get(demo, "/v1/events?sync=start&commune=75056&limit=100")
    changed = body["data"]["changed"]
    assert changed and {e["commune"]["code"] for e in changed} == {"75056"}


async def test_stops_outside_every_commune_say_null_and_a_commune_lists_its_own(demo, lille):
    """Caltrain's stops are in no French commune; with Lille's communes, the Belgian railways'
    Lille Flandres is in Lille, Tourcoing and Mouscron in none of the two loaded."""
    caltrain = (await get(demo, "/v1/stops?q=san&limit=5"))["data"]
    assert caltrain and all(stop["commune"] is None for stop in caltrain)
    assert (await get(demo, "/v1/stops?commune=76540"))["data"] == []
    lille_communes = json.loads(LILLE_COMMUNES)["features"]
    near = []
    for lat, lon in ((50.6333, 3.0667), (50.7167, 3.15)):  # Lille Flandres, Tourcoing
        near += (await get(lille, f"/v1/stops?lat={lat}&lon={lon}&radius=5000"))["data"]
    assert {s["id"] for s in near} >= {"sncb:8728600", "sncb:8728654", "sncb:8889011"}
    for stop in near:
        assert stop["commune"] == loop_commune(stop["lon"], stop["lat"], lille_communes)
    in_lille = (await get(lille, "/v1/stops?commune=59350"))["data"]
    assert [(s["id"], s["name"]) for s in in_lille] == [("sncb:8728600", "Lille Flandres(FR)")]
    by_name = (await get(lille, "/v1/stops?q=roubaix&commune=59350"))["data"]
    assert by_name == []
    detail = (await get(lille, "/v1/stops/sncb:8728600"))["data"]
    assert detail["commune"] == {"code": "59350", "name": "Lille"}


async def test_car_parks_carry_their_commune_and_filter_on_it(lille):
    """Lille's park-and-ride: Quatre Cantons is in Villeneuve-d'Ascq, the others in Lille."""
    near = "/v1/parkings?lat=50.62&lon=3.1&radius=10000"
    parkings = (await get(lille, near))["data"]
    assert {p["id"]: p["commune"]["code"] for p in parkings} == {
        "relais:CAL1": "59350",
        "relais:PDP1": "59350",
        "relais:QCA1": "59009",
        "relais:SPH1": "59350",
    }
    only = (await get(lille, near + "&commune=59009"))["data"]
    assert [(p["id"], p["commune"]["name"]) for p in only] == [("relais:QCA1", "Villeneuve-d'Ascq")]


async def test_waste_zones_are_in_the_commune_of_their_representative_point(demo):
    """Bordeaux's zones under its centre are in Bordeaux (a point inside each polygon)."""
    zones = (await get(demo, "/v1/waste/collections?lat=44.8452&lon=-0.5909"))["data"]["zones"]
    assert zones and {z["commune"]["code"] for z in zones} == {"33063"}


@pytest.mark.parametrize(
    ("value", "code", "english", "french"),
    [
        (
            "5935",
            "commune_code_form",
            "is not an INSEE commune code",
            "n'est pas un code commune INSEE",
        ),
        ("59350", "unknown_commune", "not the INSEE code of a commune", "d'aucune commune"),
    ],
)
async def test_a_commune_code_is_checked_in_both_languages(demo, value, code, english, french):
    """A code of the wrong form, or one the communes do not know, is a 400 naming commune."""
    for path in (
        "/v1/places",
        "/v1/events",
        "/v1/stops",
        "/v1/bikes/stations?lat=49&lon=1",
        "/v1/places.csv",
        "/v1/events.ics",
        "/v1/agenda.ics",
    ):
        joined = "&" if "?" in path else "?"
        for language, text in (("en", english), ("fr", french)):
            body = await get(
                demo, f"{path}{joined}commune={value}", 400, **{"Accept-Language": language}
            )
            (error,) = body["errors"]
            assert (error["parameter"], error["code"]) == ("commune", code)
            assert text in error["detail"], (path, language, error)


async def test_a_source_loaded_before_the_communes_is_tagged_once_they_load(demo):
    """Pharmacies polled first have no commune (and no code is known yet); once the communes
    load, the same snapshot's records are tagged, without polling the pharmacies again."""
    text = DEMO_SOURCES + COMMUNES.format(url="file:communes-demo-extract.geojson")
    runtime = runtime_from(text, base_dir=DEMO)
    await runtime.poll_once("niort-pharmacies")
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        before = (await get(client, "/v1/places?limit=100"))["data"]
        assert len(before) == 33 and all(p["commune"] is None for p in before)
        exported = await csv_rows(client, "/v1/places.csv")
        assert len(exported) == 33 and {r["commune_code"] for r in exported} == {""}
        await get(client, "/v1/places?commune=79191", 400)
        version = runtime.live.snapshot("niort-pharmacies").version
        await runtime.poll_once("communes")
        await runtime.live.settled()
        after = (await get(client, "/v1/places?limit=100"))["data"]
        assert runtime.live.snapshot("niort-pharmacies").version == version
        assert all(p["commune"] == loop_commune(p["lon"], p["lat"]) for p in after)
        assert (await get(client, "/v1/places?commune=79191"))["data"]
        # The CSV twin follows too (its finished file is of the data before the communes).
        exported = await csv_rows(client, "/v1/places.csv")
        assert [(r["id"], r["commune_code"]) for r in exported] == [
            (p["id"], p["commune"]["code"]) for p in after
        ]


async def test_communes_that_change_retag_the_records_they_cover(upstream):
    """A communes file without Niort, then with it (a new vintage): Niort's pharmacies go
    from no commune to Niort when the communes change, the pharmacies unchanged."""
    without_niort = [f for f in DEMO_COMMUNES if f["properties"]["code"] != "79191"]
    first = json.dumps({"type": "FeatureCollection", "features": without_niort}).encode()
    second = json.dumps({"type": "FeatureCollection", "features": DEMO_COMMUNES}).encode()
    upstream.route("/communes.geojson", [Reply(body=first), Reply(body=second)])
    text = DEMO_SOURCES + COMMUNES.format(url=upstream.url("/communes.geojson"))
    runtime = runtime_from(text, base_dir=DEMO)
    await runtime.poll_once("niort-pharmacies")
    await runtime.poll_once("communes")
    await runtime.live.settled()
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        before = {
            p["id"]: p["commune"] for p in (await get(client, "/v1/places?limit=100"))["data"]
        }
        assert None in before.values() and {"code": "79003", "name": "Aiffres"} in before.values()
        await get(client, "/v1/places?commune=79191", 400)
        assert (await runtime.poll_once("communes")).outcome == "changed"
        await runtime.live.settled()
        after = {p["id"]: p["commune"] for p in (await get(client, "/v1/places?limit=100"))["data"]}
        assert None not in after.values()
        moved = {i for i in after if before[i] != after[i]}
        assert moved == {i for i, c in before.items() if c is None}
        assert {after[i]["code"] for i in moved} == {"79191"}


async def test_the_lookup_runs_once_per_records_and_communes(demo):
    """Requests read the tags: the lookup runs again only for new records or new communes."""
    runtime = demo.app[RUNTIME]
    calls = []

    def points():
        calls.append(1)
        return ["a"], [1.0993], [49.4431]

    basis = object()
    first = runtime.communes.of("test:rouen", basis, points)
    assert runtime.communes.of("test:rouen", basis, points) is first
    assert first.of("a") == {"code": "76540", "name": "Rouen"} and len(calls) == 1
    runtime.communes.of("test:rouen", object(), points)  # new records
    assert len(calls) == 2


async def test_the_catalogue_states_each_datasets_communes(demo):
    """dct:spatial: one INSEE URI per commune the source's records are in, each a
    dct:Location with its code and name; none for Caltrain."""
    text = await (await demo.get("/v1/catalog.ttl")).text()
    graph = Graph().parse(data=text, format="turtle")

    def covered(source_id: str) -> set[str]:
        (dataset,) = graph.subjects(DCTERMS.identifier, Literal(source_id))
        assert (dataset, RDF.type, DCAT.Dataset) in graph
        return {str(node) for node in graph.objects(dataset, DCTERMS.spatial)}

    uri = "http://id.insee.fr/geo/commune/{}".format
    assert covered("niort-pharmacies") == {
        uri(code) for code in ("79003", "79081", "79162", "79191", "79355")
    }
    assert covered("bordeaux-waste") == {
        uri(code) for code in ("33056", "33063", "33069", "33075", "33281", "33449")
    }
    assert uri("76540") in covered("lovelo-bikes") and covered("caltrain") == set()
    niort = URIRef(uri("79191"))
    assert (niort, RDF.type, DCTERMS.Location) in graph
    assert str(graph.value(niort, SKOS.prefLabel)) == "Niort"
    assert str(graph.value(niort, DCTERMS.identifier)) == "79191"


async def test_the_communes_are_served_as_the_sources_records(demo):
    """/v1/sources/communes/records lists the communes by id: code and name."""
    body = await get(demo, "/v1/sources/communes/records?limit=100")
    records = {r["id"]: r for r in body["data"]}
    assert len(records) == 33
    assert records["communes:76540"] == {"id": "communes:76540", "code": "76540", "name": "Rouen"}


def commune_cells(rows: list[dict], items: list[dict]) -> None:
    """The rows' commune columns are the JSON items' ``commune``, row for row."""
    assert [r["id"] for r in rows] == [i["id"] for i in items]
    for row, item in zip(rows, items, strict=True):
        commune = item["commune"] or {"code": "", "name": ""}
        assert (row["commune_code"], row["commune_name"]) == (commune["code"], commune["name"])


async def test_the_csv_exports_take_the_commune_filter_and_say_each_rows_commune(demo, lille):
    """events.csv, places.csv, bikes/stations.csv (demo), parkings.csv (Lille): the rows of
    the commune asked, only, each with the JSON list's commune in its two columns."""
    rows = await csv_rows(demo, f"/v1/events.csv?{EVENT_WINDOW}&commune=75056")
    every = await csv_rows(demo, f"/v1/events.csv?{EVENT_WINDOW}")
    listed = await get(demo, f"/v1/events?{EVENT_WINDOW}&limit=100&commune=75056")
    commune_cells(rows, listed["data"])
    assert {r["commune_name"] for r in rows} == {"Paris"}
    assert len(rows) < len(every)
    # Unfiltered: located occurrences in several communes, unlocated ones with empty cells.
    everything = (await get(demo, f"/v1/events?{EVENT_WINDOW}&limit=100"))["data"]
    commune_cells(every, everything)
    assert len({r["commune_code"] for r in every}) > 2
    places = await csv_rows(demo, "/v1/places.csv?commune=79003")
    json_places = (await get(demo, "/v1/places?limit=100&commune=79003"))["data"]
    commune_cells(places, json_places)
    assert places and {r["commune_name"] for r in places} == {"Aiffres"}
    all_places = await csv_rows(demo, "/v1/places.csv")
    commune_cells(all_places, (await get(demo, "/v1/places?limit=100"))["data"])
    near = "lat=49.4431&lon=1.0993&radius=4000"
    bikes = await csv_rows(demo, f"/v1/bikes/stations.csv?{near}&commune=76681")
    json_bikes = (await get(demo, f"/v1/bikes/stations?{near}&commune=76681&limit=100"))["data"]
    commune_cells(bikes, json_bikes)
    assert bikes and {r["commune_code"] for r in bikes} == {"76681"}
    near = "lat=50.62&lon=3.1&radius=10000"
    parkings = await csv_rows(lille, f"/v1/parkings.csv?{near}")
    commune_cells(parkings, (await get(lille, f"/v1/parkings?{near}"))["data"])
    only = await csv_rows(lille, f"/v1/parkings.csv?{near}&commune=59009")
    assert [(r["id"], r["commune_name"]) for r in only] == [("relais:QCA1", "Villeneuve-d'Ascq")]


async def test_the_agenda_export_takes_the_commune_filter():
    """agenda.csv: Paris' events as a council's agenda (channel agenda), filtered by commune
    as /v1/agenda is."""
    agenda = DEMO_SOURCES.replace(
        "    export_url: file:openagenda-paris-events-ods-v1.json\n",
        "    export_url: file:openagenda-paris-events-ods-v1.json\n    channel: agenda\n",
    )
    assert "channel: agenda" in agenda
    runtime = runtime_from(
        agenda + COMMUNES.format(url="file:communes-demo-extract.geojson"), base_dir=DEMO
    )
    for source_id in ("paris-events", "communes"):
        await runtime.poll_once(source_id)
    await runtime.live.settled()
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        rows = await csv_rows(client, f"/v1/agenda.csv?{EVENT_WINDOW}&commune=75056")
        listed = (await get(client, f"/v1/agenda?{EVENT_WINDOW}&limit=100&commune=75056"))["data"]
        every = await csv_rows(client, f"/v1/agenda.csv?{EVENT_WINDOW}")
    commune_cells(rows, listed)
    assert rows and {r["commune_code"] for r in rows} == {"75056"}
    assert len(rows) < len(every)

"""/v1/catalog: the demo's sources as a DCAT-AP 3.0 catalogue, validated by pyshacl against
the official SHACL shapes (tests/fixtures/dcat_ap), the same graph from JSON-LD and Turtle."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pyshacl import validate
from rdflib import Graph
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF

from aggregator.api.app import create_app
from aggregator.api.catalog import dataset_ids
from aggregator.config import load_config
from aggregator.registry import config_models, discover_connector_types
from aggregator.runtime import Runtime

ROOT = Path(__file__).parents[1]
SHAPES = Path(__file__).parent / "fixtures" / "dcat_ap" / "dcat-ap-SHACL.ttl"
TYPES = discover_connector_types()


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return Graph().parse(SHAPES, format="turtle")


@pytest.fixture
async def client():
    types = discover_connector_types()
    config = load_config(ROOT / "config" / "demo.yaml", connector_types=config_models(types))
    runtime = Runtime(config, types)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def fetch(client, query: str = "", accept: str = "") -> tuple[str, str]:
    answer = await client.get(f"/v1/catalog{query}", headers={"Accept": accept} if accept else {})
    assert answer.status == 200, await answer.text()
    return answer.headers["Content-Type"], await answer.text()


async def test_the_catalogue_conforms_to_dcat_ap_in_both_serialisations(client, shapes):
    jsonld_type, jsonld = await fetch(client)
    turtle_type, turtle = await fetch(client, "?format=ttl")
    assert jsonld_type.startswith("application/ld+json")
    assert turtle_type.startswith("text/turtle")
    assert (await fetch(client, accept="text/turtle"))[1] == turtle
    from_jsonld = Graph().parse(data=jsonld, format="json-ld")
    from_turtle = Graph().parse(data=turtle, format="turtle")
    assert isomorphic(from_jsonld, from_turtle)
    # RDFS inference: the shapes ask several values to be of class rdfs:Resource, which every
    # IRI is under RDFS semantics (not without inference).
    conforms, _report, text = validate(from_turtle, shacl_graph=shapes, inference="rdfs")
    assert conforms, text
    demo = load_config(ROOT / "config" / "demo.yaml", connector_types=config_models(TYPES))
    assert sorted(dataset_ids(from_turtle)) == sorted(c.id for c in demo.connectors if c.enabled)


async def test_each_dataset_says_licence_period_frequency_and_where_it_is_served(client):
    graph = Graph().parse(data=(await fetch(client, "?format=ttl"))[1], format="turtle")
    (caltrain,) = [
        dataset
        for dataset in graph.subjects(RDF.type, DCAT.Dataset)
        if str(graph.value(dataset, DCTERMS.identifier)) == "caltrain"
    ]
    period = graph.value(caltrain, DCTERMS.temporal)
    assert str(graph.value(period, DCAT.startDate)) == "2023-09-23"
    assert str(graph.value(period, DCAT.endDate)) == "2024-06-01"
    assert str(graph.value(caltrain, DCTERMS.accrualPeriodicity)).endswith("/frequency/HOURLY")
    urls = {str(graph.value(d, DCAT.accessURL)) for d in graph.objects(caltrain, DCAT.distribution)}
    paths = {url.split("/", 3)[3] for url in urls}
    assert paths == {"v1/stops", "v1/lines", "ogc/collections/caltrain/items"}
    licences = {
        str(graph.value(d, DCTERMS.license)) for d in graph.objects(caltrain, DCAT.distribution)
    }
    assert licences == {"https://spdx.org/licenses/GPL-3.0-only.html"}


async def test_an_unknown_format_is_a_clear_400(client):
    answer = await client.get("/v1/catalog?format=rdfxml&lang=en")
    assert answer.status == 400
    assert "'rdfxml' is not one of: jsonld, ttl" in (await answer.json(content_type=None))["detail"]


async def test_each_located_source_has_its_ogc_collection_as_a_distribution(client):
    """A GeoJSON distribution conforming to OGC API - Features per collection /ogc lists."""
    graph = Graph().parse(data=(await fetch(client, "?format=ttl"))[1], format="turtle")
    collections = (await (await client.get("/ogc/collections")).json())["collections"]
    assert collections
    ogc = {}
    for distribution in graph.subjects(RDF.type, DCAT.Distribution):
        if str(graph.value(distribution, DCAT.mediaType)).endswith("application/geo+json"):
            url = str(graph.value(distribution, DCAT.accessURL))
            ogc[url.split("/")[-2]] = distribution
    assert sorted(ogc) == sorted(c["id"] for c in collections)
    for distribution in ogc.values():
        assert str(graph.value(distribution, DCTERMS.conformsTo)) == (
            "http://www.opengis.net/doc/IS/ogcapi-features-1/1.0"
        )
        assert str(graph.value(distribution, DCTERMS["format"])).endswith("/file-type/GEOJSON")


async def test_each_distribution_names_the_format_it_is_served_in(client):
    """A calendar is text/calendar (EU file type ICS), a CSV export text/csv, the rest JSON."""
    graph = Graph().parse(data=(await fetch(client, "?format=ttl"))[1], format="turtle")
    formats = {}
    for distribution in graph.subjects(RDF.type, DCAT.Distribution):
        path = str(graph.value(distribution, DCAT.accessURL)).split("/", 3)[3]
        media_type = str(graph.value(distribution, DCAT.mediaType)).rsplit("/", 2)[-2:]
        file_type = str(graph.value(distribution, DCTERMS["format"])).rsplit("/", 1)[-1]
        formats[path] = ("/".join(media_type), file_type)
    assert formats["v1/events.ics"] == ("text/calendar", "ICS")
    assert formats["v1/events.csv"] == ("text/csv", "CSV")
    assert formats["v1/events"] == ("application/json", "JSON")
    assert formats["ogc/collections/machbar/items"] == ("application/geo+json", "GEOJSON")

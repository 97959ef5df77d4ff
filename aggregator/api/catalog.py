"""``/v1/catalog``: the sources as a DCAT-AP catalogue, for data portals to harvest.

Each enabled source is a ``dcat:Dataset`` (title, description, publisher, modification date,
update frequency, temporal coverage where the data has one, spatial coverage as the communes
its records are in) with one ``dcat:Distribution`` per
endpoint that re-publishes it (access URL, media type, licence, conformance to this API's
OpenAPI document), and for a located source one more: its OGC API - Features collection
(GeoJSON, conforming to that standard). The graph is built with rdflib and written as
JSON-LD (the default) or Turtle (``Accept: text/turtle`` or ``?format=ttl``); the tests
validate it against the official DCAT-AP 3.0 SHACL shapes with pyshacl.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import PurePosixPath
from typing import Any

from aiohttp import web
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from aggregator.api.features_layers import collections as ogc_collections
from aggregator.api.params import QueryParams
from aggregator.api.routing import ApiRouter, Param
from aggregator.api.schemas import array_of, choice, obj, ref
from aggregator.communes import coverage
from aggregator.config.licences import licence_url
from aggregator.config.models import ConnectorConfig
from aggregator.runtime import Runtime, runtime_of
from aggregator.status import SourceStatus

FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
FILE_TYPE = Namespace("http://publications.europa.eu/resource/authority/file-type/")
LANGUAGE = Namespace("http://publications.europa.eu/resource/authority/language/")
IANA = Namespace("https://www.iana.org/assignments/media-types/")
INSEE_COMMUNE = Namespace("http://id.insee.fr/geo/commune/")

#: The standard an OGC collection's distribution conforms to (OGC API - Features - Part 1).
OGC_API_FEATURES = "http://www.opengis.net/doc/IS/ogcapi-features-1/1.0"

MEDIA_TYPES = {"jsonld": "application/ld+json", "ttl": "text/turtle"}
RDF_FORMATS = {"jsonld": "json-ld", "ttl": "turtle"}
#: ISO 639-1 → the EU language authority's codes (the deployment's answer languages).
LANGUAGES = {"fr": "FRA", "en": "ENG", "de": "DEU", "nl": "NLD", "es": "SPA", "it": "ITA"}

#: Where each source type's data is re-published: (path, what it is). {id}: the source id.
ENDPOINTS: dict[str, tuple[tuple[str, str], ...]] = {
    "gtfs": (
        ("/v1/stops", "Stops, with their departures at /v1/stops/{stop_id}/departures"),
        ("/v1/lines", "Lines, with their stops and shapes"),
    ),
    "gtfs_rt": (
        ("/v1/alerts", "Service alerts"),
        ("/v1/vehicles", "Vehicle positions"),
    ),
    "gbfs": (
        ("/v1/bikes/stations", "Bike-share stations and their availability"),
        ("/v1/bikes/stations.csv", "Bike-share stations and their availability, as CSV"),
    ),
    "bike_stations": (
        ("/v1/bikes/stations", "Bike-share stations and their availability"),
        ("/v1/bikes/stations.csv", "Bike-share stations and their availability, as CSV"),
    ),
    "parkings": (
        ("/v1/parkings", "Car parks and their free spaces"),
        ("/v1/parkings.csv", "Car parks and their free spaces, as CSV"),
    ),
    "places": (
        ("/v1/places", "Public places and their opening hours"),
        ("/v1/places.csv", "Public places and their opening hours, as CSV"),
    ),
}
#: The media type and EU file type of a distribution, by its path's suffix (JSON otherwise).
FORMATS = {
    ".csv": ("text/csv", FILE_TYPE.CSV),
    ".ics": ("text/calendar", FILE_TYPE.ICS),
}
EVENT_TYPES = frozenset({"ics", "openagenda", "opendatasoft"})


def endpoints_of(source: ConnectorConfig) -> tuple[tuple[str, str], ...]:
    if source.type in ENDPOINTS:
        return ENDPOINTS[source.type]
    if source.type in EVENT_TYPES:
        channel = getattr(source, "channel", "events")
        return (
            (f"/v1/{channel}", f"{channel.capitalize()}: occurrences, filters, sync"),
            (f"/v1/{channel}.ics", f"{channel.capitalize()} as a calendar to subscribe to"),
            (f"/v1/{channel}.csv", f"{channel.capitalize()} as CSV"),
        )
    return (("/v1/sources/{id}/records", "The source's records, as mapped"),)


def frequency_of(interval_s: float) -> URIRef:
    """The EU frequency vocabulary's term for a refresh interval."""
    for limit, term in ((60, "UPDATE_CONT"), (3600, "HOURLY"), (86400, "DAILY")):
        if interval_s <= limit:
            return FREQUENCY[term]
    return FREQUENCY["WEEKLY"] if interval_s <= 7 * 86400 else FREQUENCY["MONTHLY"]


def build_catalog(runtime: Runtime, base: str) -> Graph:
    """The catalogue of ``runtime``'s sources, with every address under ``base``."""
    settings = runtime.config.catalog
    graph = Graph()
    graph.bind("dcat", DCAT)
    graph.bind("dct", DCTERMS)
    graph.bind("foaf", FOAF)
    catalog = URIRef(f"{base}/v1/catalog")
    graph.add((catalog, RDF.type, DCAT.Catalog))
    graph.add((catalog, DCTERMS.title, Literal(settings.title)))
    graph.add((catalog, DCTERMS.description, Literal(settings.description)))
    publisher = _agent(graph, base, settings.publisher or settings.title, settings.publisher_url)
    graph.add((catalog, DCTERMS.publisher, publisher))
    graph.add((catalog, FOAF.homepage, _typed(graph, URIRef(f"{base}/"), FOAF.Document)))
    if settings.licence is not None:
        graph.add((catalog, DCTERMS.license, _licence(graph, settings.licence)))
    for language in runtime.languages:
        if language in LANGUAGES:
            term = _typed(graph, LANGUAGE[LANGUAGES[language]], DCTERMS.LinguisticSystem)
            graph.add((catalog, DCTERMS.language, term))
    modified = [s.last_change for s in runtime.statuses.values() if s.last_change is not None]
    if modified:
        graph.add((catalog, DCTERMS.modified, _instant(max(modified))))
    for source in runtime.config.connectors:
        status = runtime.statuses.get(source.id)
        if source.enabled and status is not None:
            dataset = _dataset(graph, runtime, base, source, status)
            graph.add((catalog, DCAT.dataset, dataset))
    return graph


def _dataset(
    graph: Graph, runtime: Runtime, base: str, source: ConnectorConfig, status: SourceStatus
) -> URIRef:
    dataset = URIRef(f"{base}/v1/catalog#{source.id}")
    title = source.title or source.id
    graph.add((dataset, RDF.type, DCAT.Dataset))
    graph.add((dataset, DCTERMS.identifier, Literal(source.id)))
    graph.add((dataset, DCTERMS.title, Literal(title)))
    description = source.description or f"{title}, polled from its publisher {status.refresh}."
    graph.add((dataset, DCTERMS.description, Literal(description)))
    if source.attribution:
        graph.add((dataset, DCTERMS.publisher, _agent(graph, base, source.attribution, None)))
    if status.last_change is not None:
        graph.add((dataset, DCTERMS.modified, _instant(status.last_change)))
    frequency = _typed(graph, frequency_of(status.interval_s), DCTERMS.Frequency)
    graph.add((dataset, DCTERMS.accrualPeriodicity, frequency))
    period = _period(status.stats)
    if period is not None:
        graph.add((dataset, DCTERMS.temporal, _temporal(graph, *period)))
    for code, name in _communes_covered(runtime, source.id):
        graph.add((dataset, DCTERMS.spatial, _commune(graph, code, name)))
    for path, what in endpoints_of(source):
        distribution = _distribution(graph, base, source, path.replace("{id}", source.id), what)
        graph.add((dataset, DCAT.distribution, distribution))
    if source.id in ogc_collections(runtime):
        what = f"OGC API - Features collection {source.id}, as GeoJSON"
        distribution = _distribution(
            graph, base, source, f"/ogc/collections/{source.id}/items", what, ogc=True
        )
        graph.add((dataset, DCAT.distribution, distribution))
    return dataset


def _distribution(
    graph: Graph, base: str, source: ConnectorConfig, path: str, what: str, *, ogc: bool = False
) -> BNode:
    """One way the source is re-published; ``ogc``: an OGC API - Features collection's items
    (GeoJSON, conforming to that standard) rather than a /v1 endpoint."""
    # A blank node per distribution, labelled by what it is so that it is stable.
    node = BNode(hashlib.blake2b(f"{source.id} {path}".encode(), digest_size=8).hexdigest())
    graph.add((node, RDF.type, DCAT.Distribution))
    graph.add((node, DCTERMS.title, Literal(what)))
    graph.add((node, DCAT.accessURL, URIRef(f"{base}{path}")))
    if ogc:
        mime, file_type = "application/geo+json", FILE_TYPE.GEOJSON
    else:
        default = ("application/json", FILE_TYPE.JSON)
        mime, file_type = FORMATS.get(PurePosixPath(path).suffix, default)
    graph.add((node, DCTERMS["format"], _typed(graph, file_type, DCTERMS.MediaTypeOrExtent)))
    media_type = _typed(graph, IANA[mime], DCTERMS.MediaType)
    graph.add((node, DCAT.mediaType, media_type))
    conforms = URIRef(OGC_API_FEATURES if ogc else f"{base}/v1/openapi.json")
    standard = _typed(graph, conforms, DCTERMS.Standard)
    graph.add((node, DCTERMS.conformsTo, standard))
    if source.licence is not None:
        graph.add((node, DCTERMS.license, _licence(graph, source.licence)))
    return node


def _agent(graph: Graph, base: str, name: str, url: str | None) -> URIRef:
    label = hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    agent = URIRef(url) if url else URIRef(f"{base}/v1/catalog#agent-{label}")
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, Literal(name)))
    return agent


def _licence(graph: Graph, licence: str) -> URIRef:
    url = licence_url(licence)
    assert url is not None
    node = _typed(graph, URIRef(url), DCTERMS.LicenseDocument)
    if url != licence:
        graph.add((node, DCTERMS.identifier, Literal(licence)))
    return node


def _communes_covered(runtime: Runtime, source_id: str) -> list[tuple[str, str]]:
    """The communes the source's records are in (looked up once per snapshot version)."""
    snapshot = runtime.live.snapshot(source_id)
    if snapshot is None:
        return []
    kind = runtime.connector_types[snapshot.source_type]
    return coverage(runtime.communes, source_id, snapshot, kind)


def _commune(graph: Graph, code: str, name: str) -> URIRef:
    # The INSEE's URI of the commune in its geographic code (COG) as linked data: DCAT-AP's
    # named-place lists (EU Places, GeoNames) do not identify every commune by its code.
    node = _typed(graph, INSEE_COMMUNE[code], DCTERMS.Location)
    graph.add((node, DCTERMS.identifier, Literal(code)))
    graph.add((node, SKOS.prefLabel, Literal(name, lang="fr")))
    return node


def _typed(graph: Graph, node: URIRef, kind: URIRef) -> URIRef:
    graph.add((node, RDF.type, kind))
    return node


def _temporal(graph: Graph, start: date, end: date) -> BNode:
    period = BNode(f"period-{start.isoformat()}-{end.isoformat()}")
    graph.add((period, RDF.type, DCTERMS.PeriodOfTime))
    graph.add((period, DCAT.startDate, Literal(start, datatype=XSD.date)))
    graph.add((period, DCAT.endDate, Literal(end, datatype=XSD.date)))
    return period


def _period(stats: dict[str, Any]) -> tuple[date, date] | None:
    """A timetable's service period, from its status figures."""
    try:
        return date.fromisoformat(stats["valid_from"]), date.fromisoformat(stats["valid_until"])
    except (KeyError, TypeError, ValueError):
        return None


def _instant(value: datetime) -> Literal:
    return Literal(value.astimezone(UTC).replace(microsecond=0), datatype=XSD.dateTime)


def serialize(graph: Graph, form: str) -> bytes:
    return graph.serialize(format=RDF_FORMATS[form], encoding="utf-8")


def negotiated_form(request: web.Request, params: QueryParams) -> str:
    """``jsonld`` or ``ttl``: ``?format=`` first, then the Accept header."""
    if "format" in request.query:
        return params.choice("format", tuple(RDF_FORMATS), "jsonld")
    accept = request.headers.get("Accept", "")
    return "ttl" if "text/turtle" in accept and "ld+json" not in accept else "jsonld"


def public_base(runtime: Runtime, request: web.Request) -> str:
    configured = runtime.config.catalog.public_url
    if configured:
        return configured.rstrip("/")
    return str(request.url.origin())


async def catalog_turtle(request: web.Request) -> web.Response:
    return _catalog(request, "ttl")


async def catalog_document(request: web.Request) -> web.Response:
    if negotiated_form(request, QueryParams(request.query)) == "ttl":
        # One body shape per operation (generated clients need it): Turtle is its own.
        raise web.HTTPSeeOther(location="/v1/catalog.ttl")
    return _catalog(request, "jsonld")


def _catalog(request: web.Request, form: str) -> web.Response:
    runtime = runtime_of(request)
    graph = build_catalog(runtime, public_base(runtime, request))
    body = serialize(graph, form)
    response = web.Response(body=body, content_type=MEDIA_TYPES[form], charset="utf-8")
    response.headers["Vary"] = "Accept"
    # Harvesters come back daily; the data's modification dates are in the document.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def dataset_ids(graph: Graph) -> Iterable[str]:
    """The sources a catalogue lists (what the tests and the docs compare)."""
    for dataset in graph.subjects(RDF.type, DCAT.Dataset):
        yield str(graph.value(dataset, DCTERMS.identifier))


#: A node of the catalogue's JSON-LD (expanded form, as rdflib writes it).
JSON_LD_VALUE = obj(
    {
        "@id": {"type": "string"},
        "@value": {"type": "string"},
        "@type": {"type": "string"},
        "@language": {"type": "string"},
    },
    title="JsonLdValue",
)
JSON_LD_NODE = {
    **obj(
        {"@id": {"type": "string"}, "@type": array_of({"type": "string"})},
        ["@id"],
        title="JsonLdNode",
        description="A subject of the graph: its IRI (or blank node), its classes, and its "
        "properties, each an array of values, by property IRI.",
    ),
    "additionalProperties": array_of(ref("JsonLdValue")),
}


def register_catalog(router: ApiRouter) -> None:
    router.add_schema("JsonLdValue", JSON_LD_VALUE)
    node = router.add_schema("JsonLdNode", JSON_LD_NODE)
    described = (
        "One dcat:Dataset per source, with a dcat:Distribution for each endpoint that "
        "re-publishes it; for data portals to harvest (docs/OPEN-DATA.md)."
    )
    router.get(
        "/v1/catalog",
        catalog_document,
        summary="The sources as a DCAT-AP 3.0 catalogue, in JSON-LD",
        description=described + " `Accept: text/turtle` or `format=ttl` redirect (303) to "
        "its Turtle, /v1/catalog.ttl.",
        tags=["open data"],
        params=[Param("format", "jsonld (the default), or ttl for Turtle.", choice(RDF_FORMATS))],
        response=array_of(node),
        media_type="application/ld+json",
        enveloped=False,
        errors=[303],
    )
    router.get(
        "/v1/catalog.ttl",
        catalog_turtle,
        summary="The sources as a DCAT-AP 3.0 catalogue, in Turtle",
        description=described,
        tags=["open data"],
        response={"type": "string"},
        media_type="text/turtle",
        enveloped=False,
    )

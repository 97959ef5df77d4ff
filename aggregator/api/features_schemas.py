"""The schemas of the OGC API - Features answers, as /v1/openapi.json declares them.

They follow the building blocks of OGC API - Features - Part 1: Core (landing page,
conformance declaration, collections, a collection, a feature collection and a feature in
GeoJSON), typed the house way (every object's members, ``items`` on every array) so the
clients generated from the document read them. A feature's ``properties`` are the ``/v1``
item of its kind without what the geometry already says (see ``features_layers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aggregator.api.features_layers import NOT_PROPERTIES, FeatureKind
from aggregator.api.routing import ApiRouter
from aggregator.api.schemas import array_of, enum, obj, ref

#: The conformance classes served (Part 1: Core, and GeoJSON).
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"

_TEXT = {"type": "string"}

LINK = obj(
    {
        "href": {"type": "string", "format": "uri"},
        "rel": _TEXT,
        "type": _TEXT,
        "title": _TEXT,
    },
    ["href", "rel", "type", "title"],
    title="OgcLink",
    description="A link (RFC 8288 relation, media type, title).",
)
_LINKS = array_of(ref("OgcLink"))

LANDING_PAGE = obj(
    {"title": _TEXT, "description": _TEXT, "links": _LINKS, "meta": ref("Meta")},
    ["title", "links"],
    title="OgcLandingPage",
    description="Links to the API definition, the conformance declaration and the collections.",
)
CONFORMANCE_DECLARATION = obj(
    {"conformsTo": array_of(enum(CONFORMANCE)), "meta": ref("Meta")},
    ["conformsTo"],
    title="OgcConformance",
)
EXTENT = obj(
    {
        "spatial": obj(
            {
                "bbox": array_of(array_of({"type": "number"}, minItems=4, maxItems=4)),
                "crs": {"type": "string", "const": CRS84},
            },
            ["bbox", "crs"],
            title="OgcSpatialExtent",
        ),
        "temporal": obj(
            {
                "interval": array_of(
                    array_of({"type": ["string", "null"], "format": "date-time"}, minItems=2)
                ),
                "trs": {"type": "string", "const": GREGORIAN},
            },
            ["interval", "trs"],
            title="OgcTemporalExtent",
        ),
    },
    title="OgcExtent",
    description="The bounding box of the features (computed from the data), and for events "
    "the first start and last end of their occurrences.",
)


def collection_schema(kinds: Sequence[FeatureKind]) -> dict[str, Any]:
    """A collection, its ``kind`` one of those the installed connector types offer."""
    return obj(
        {
            "id": _TEXT,
            "title": _TEXT,
            "description": _TEXT,
            "links": _LINKS,
            "extent": ref("OgcExtent"),
            "itemType": {"type": "string", "const": "feature"},
            "crs": array_of({"type": "string", "const": CRS84}),
            "storageCrs": {"type": "string", "const": CRS84},
            # No kind installed, no collection: an empty enum would be a type without values.
            "kind": enum([kind.name for kind in kinds], "What the features are.")
            if kinds
            else {"type": "string", "description": "What the features are."},
            "meta": ref("Meta"),
        },
        ["id", "title", "links", "itemType", "crs", "kind"],
        title="OgcCollection",
        description="One source's located records; extent is absent until its data is loaded.",
    )


COLLECTIONS = obj(
    {"links": _LINKS, "collections": array_of(ref("OgcCollection")), "meta": ref("Meta")},
    ["links", "collections"],
    title="OgcCollections",
)
POINT = obj(
    {
        "type": {"type": "string", "const": "Point"},
        "coordinates": array_of({"type": "number"}, minItems=2, maxItems=2),
    },
    ["type", "coordinates"],
    title="OgcPoint",
    description="A GeoJSON Point: [longitude, latitude] (WGS 84, CRS84 axis order).",
)


def properties_name(kind: FeatureKind) -> str:
    return "Ogc" + "".join(part.capitalize() for part in kind.name.split("_")) + "Properties"


def properties_schema(kind: FeatureKind) -> dict[str, Any]:
    """The /v1 item schema of ``kind`` without the members a feature's geometry replaces."""
    item: Mapping[str, Any] = kind.item_schema
    kept = {k: v for k, v in item["properties"].items() if k not in NOT_PROPERTIES}
    needed = [k for k in item.get("required", ()) if k in kept]
    return obj(
        kept,
        needed,
        title=properties_name(kind),
        description=f"{kind.title}: what /v1 answers for one, without its coordinates.",
    )


def feature_schemas(kinds: Sequence[FeatureKind]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A feature (in a collection) and a feature answer, their properties one of ``kinds``'."""
    properties: dict[str, Any] = (
        {"anyOf": [ref(properties_name(kind)) for kind in kinds]}
        if kinds
        else obj({}, [], title="OgcNoProperties", description="No kind is installed.")
    )
    members: dict[str, Any] = {
        "type": {"type": "string", "const": "Feature"},
        "id": _TEXT,
        "geometry": ref("OgcPoint"),
        "properties": properties,
        "links": _LINKS,
    }
    feature = obj(
        members,
        ["type", "id", "geometry", "properties"],
        title="OgcFeature",
        description="An RFC 7946 Feature; its properties follow its collection's kind.",
    )
    answer = obj(
        {**members, "meta": ref("Meta")},
        ["type", "id", "geometry", "properties", "links"],
        title="OgcFeatureAnswer",
        description="One feature, with its links (self, collection) and the answer's meta.",
    )
    return feature, answer


FEATURE_COLLECTION = obj(
    {
        "type": {"type": "string", "const": "FeatureCollection"},
        "features": array_of(ref("OgcFeature")),
        "links": _LINKS,
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
        "timeStamp": {"type": "string", "format": "date-time"},
        "meta": ref("Meta"),
    },
    ["type", "features", "links", "numberMatched", "numberReturned", "timeStamp"],
    title="OgcFeatureCollection",
    description="One page of a collection's features (RFC 7946), with next/prev links.",
)


def register_schemas(router: ApiRouter, kinds: Sequence[FeatureKind]) -> dict[str, dict[str, str]]:
    """Register the OGC schemas, with the properties of ``kinds`` (and the named schemas
    these refer to); their refs."""
    for kind in kinds:
        # The properties refer to these (LocationType, EventLocation...): the type's routes
        # declare them too, identically.
        for name, schema in kind.schemas.items():
            router.add_schema(name, schema)
        router.add_schema(properties_name(kind), properties_schema(kind))
    feature, feature_answer = feature_schemas(kinds)
    router.add_schema("OgcLink", LINK)
    router.add_schema("OgcExtent", EXTENT)
    router.add_schema("OgcPoint", POINT)
    router.add_schema("OgcFeature", feature)
    return {
        name: router.add_schema(name, schema)
        for name, schema in (
            ("OgcLandingPage", LANDING_PAGE),
            ("OgcConformance", CONFORMANCE_DECLARATION),
            ("OgcCollection", collection_schema(kinds)),
            ("OgcCollections", COLLECTIONS),
            ("OgcFeatureCollection", FEATURE_COLLECTION),
            ("OgcFeatureAnswer", feature_answer),
        )
    }

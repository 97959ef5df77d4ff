"""The typing rules every schema of /v1/openapi.json follows, so generated clients are typed.

Clients generated from the document (openapi-python-client, openapi-typescript) turn an object
without typed properties into an empty record, an array without ``items`` into ``unknown[]``, a
schema without a type into ``Any``; openapi-python-client drops a whole model (and the answers
that use it) over one property it cannot read, and reads ``allOf: [Base]`` plus properties as
Base alone. :func:`schema_problems` walks the whole document (components, parameters, every
response) and names each place that breaks a rule, so a route added later is held to them too.

The helpers of ``aggregator.api.schemas`` (``obj``, ``array_of``, ``enum``, ``nullable``,
``extend``, ``dictionary``, ``point_features``) write schemas that pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

#: String properties with these names carry a fixed vocabulary: they must list it (enum/const).
FIXED_VOCABULARIES = frozenset(
    {
        "attendance_mode",
        "cause",
        "channel",
        "effect",
        "geometry_source",
        "location_type",
        "mode",
        "occupancy",
        "outcome",
        "schedule_relationship",
        "severity",
        "state",
        "status",
    }
)
#: What makes a schema say what it holds.
_TYPING_KEYS = ("type", "$ref", "enum", "const", "anyOf", "oneOf")
_CONTAINERS = ("object", "array")


def schema_problems(document: Mapping[str, Any]) -> list[str]:
    """Every breach of the typing rules in ``document``, as ``where: what`` lines."""
    problems: list[str] = []
    for where, schema in _document_schemas(document):
        problems.extend(_check(schema, where))
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                media = list(response.get("content", {}))
                if len(media) > 1:
                    problems.append(
                        f"{method.upper()} {path} {status}: one operation, one body shape "
                        f"(declare the other representation as its own route): {media}"
                    )
    return problems


def _document_schemas(document: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        yield f"#/components/schemas/{name}", schema
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            at = f"{method.upper()} {path}"
            for param in operation.get("parameters", []):
                yield f"{at} parameter {param.get('name')}", param.get("schema")
            for status, response in operation.get("responses", {}).items():
                for media, content in response.get("content", {}).items():
                    yield f"{at} {status} {media}", content.get("schema")
            body = operation.get("requestBody", {})
            for media, content in body.get("content", {}).items():
                yield f"{at} request {media}", content.get("schema")


def _check(schema: Any, where: str) -> Iterator[str]:
    if not isinstance(schema, Mapping) or not schema:
        yield f"{where}: no schema (an empty or missing schema is read as Any)"
        return
    if not any(key in schema for key in _TYPING_KEYS):
        yield f"{where}: untyped schema (give it a type, a $ref, an enum or a const)"
    if "allOf" in schema:
        yield (
            f"{where}: allOf (openapi-python-client reads allOf plus properties as the first "
            "member alone): write the schema out whole, e.g. with schemas.extend()"
        )
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    shapes = [kind for kind in kinds if kind != "null"]
    if any(kind in _CONTAINERS for kind in shapes) and len(shapes) > 1:
        yield f"{where}: type {kinds} mixes an object or array with other shapes"
    if "enum" in schema and not kinds:
        yield f"{where}: enum without a type"
    if "object" in kinds:
        yield from _check_object(schema, where)
    if "array" in kinds and not isinstance(schema.get("items"), Mapping):
        yield f"{where}: array without items"
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, member in enumerate(schema.get(key, [])):
            yield from _check(member, f"{where}/{key}/{i}")
    if "items" in schema:
        yield from _check(schema["items"], f"{where}/items")
    if "not" in schema:
        yield from _check(schema["not"], f"{where}/not")


def _check_object(schema: Mapping[str, Any], where: str) -> Iterator[str]:
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    if not properties and not (isinstance(extra, Mapping) and extra):
        yield (
            f"{where}: object without typed properties (give it properties, or an "
            "additionalProperties schema for a map)"
        )
    if extra is True or extra == {}:
        yield f"{where}: additionalProperties without a schema"
    for name in schema.get("required", []):
        if properties and name not in properties:
            yield f"{where}: required {name!r} is not among its properties"
    for name, member in properties.items():
        at = f"{where}/{name}"
        yield from _check(member, at)
        if name in FIXED_VOCABULARIES and _is_free_string(member):
            yield f"{at}: a fixed vocabulary without its enum"
    if isinstance(extra, Mapping) and extra:
        yield from _check(extra, f"{where}/additionalProperties")


def _is_free_string(schema: Any) -> bool:
    if not isinstance(schema, Mapping) or "enum" in schema or "const" in schema:
        return False
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return "string" in kinds

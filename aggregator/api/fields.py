"""``fields=``: a list answer cut down to the top-level item fields an app shows.

A list route opts in by declaring :data:`FIELDS`; the conventions middleware then applies the
selection to whatever the handler returns, so every list does it the same way. The names a
client may ask for are the properties of the route's documented item schema: the document
and the check are one rule, and a misspelt name is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aggregator.api import schemas as api_schemas
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Param, Route

#: Kept whatever ``fields`` says: what an app joins and pages on.
ALWAYS_KEPT = frozenset({"id"})

FIELDS = Param(
    "fields",
    "Only these top-level fields of each item (comma-separated names of the item schema's "
    "properties; id is always kept). A smaller answer for a list screen.",
    api_schemas.csv("[A-Za-z_][A-Za-z0-9_]*"),
)


def item_fields(router: ApiRouter, route: Route) -> frozenset[str]:
    """The properties of the items of ``route``'s documented list answer."""
    response = route.response or {}
    # A list, or a list among other answers (events: a page, or the changes since a sync).
    lists = [response, *response.get("oneOf", ())]
    items = next((a["items"] for a in lists if a.get("type") == "array" and "items" in a), {})
    return frozenset(_properties(router, items))


def _properties(router: ApiRouter, schema: Mapping[str, Any]) -> set[str]:
    """Property names of ``schema``, through ``$ref`` and ``allOf`` (a Line extends a
    LineSummary)."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = router.schemas.get(ref.rsplit("/", 1)[-1], {})
    names = set(schema.get("properties") or ())
    for part in schema.get("allOf", ()):
        names |= _properties(router, part)
    return names


def select_fields(
    result: ApiResult, request_query: Mapping[str, str], allowed: frozenset[str]
) -> ApiResult:
    """``result`` with each item cut to the asked fields (a GeoJSON feature: its properties)."""
    wanted = QueryParams(request_query).csv("fields")
    unknown = [name for name in wanted if name not in allowed]
    if unknown:
        raise BadParameter(
            "fields",
            "unknown_field",
            value=repr(unknown[0]),
            accepted=", ".join(sorted(allowed)),
        )
    keep = ALWAYS_KEPT | set(wanted)
    data = result.data
    if result.enveloped and isinstance(data, list):
        data = [_cut(item, keep) for item in data]
    elif isinstance(data, dict) and isinstance(data.get("features"), list):
        data = {
            **data,
            "features": [
                {**feature, "properties": _cut(feature.get("properties") or {}, keep)}
                for feature in data["features"]
            ],
        }
    return replace(result, data=data)


def _cut(item: Any, keep: set[str] | frozenset[str]) -> Any:
    if not isinstance(item, Mapping):
        return item
    return {key: value for key, value in item.items() if key in keep}

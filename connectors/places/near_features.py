"""A "near" list (bike stations, car parks: records in a :class:`PlaceIndex` per source) as an
OGC API Features collection kind (see :mod:`aggregator.api.features_layers`): each feature's
properties are those its ``/v1`` list answers, with its commune."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aggregator.api.features_layers import (
    Context,
    FeatureKind,
    Layer,
    indexed_layer,
    record_layer,
    selected,
)
from aggregator.model import Snapshot

from .geo import PlaceIndex
from .query import index_communes


def near_feature_kind(
    name: str,
    title: str,
    schema: Mapping[str, Any],
    index_name: str,
    build_index: Callable[[Snapshot], Any],
    *,
    communes_kind: str,
) -> FeatureKind:
    """The kind ``name`` whose collections are the sources' indexes called ``index_name``;
    ``communes_kind`` names the commune lookups the ``/v1`` list shares."""

    def layer(source_id: str, index: PlaceIndex) -> Layer:
        def props(record: Any, ctx: Context) -> dict[str, Any]:
            communes = index_communes(ctx.runtime, communes_kind, source_id, index)
            return {**selected(record, schema), "commune": communes.of(record["id"])}

        return record_layer(index.records, props)

    return FeatureKind(name, title, schema, indexed_layer(index_name, build_index, layer))

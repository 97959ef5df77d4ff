"""Car parks as an OGC API Features collection per source (see
:mod:`aggregator.api.features_layers`), their properties those of ``/v1/parkings``."""

from __future__ import annotations

from typing import Any

from aggregator.api.features_layers import (
    Context,
    FeatureKind,
    Layer,
    indexed_layer,
    record_layer,
    selected,
)
from connectors.places.geo import PlaceIndex
from connectors.places.query import index_communes

from .connector import INDEX_NAME, build_index
from .routes import PARKING_SCHEMA


def _layer(source_id: str, index: PlaceIndex) -> Layer:
    def props(parking: Any, ctx: Context) -> dict[str, Any]:
        communes = index_communes(ctx.runtime, "parkings", source_id, index)
        return {**selected(parking, PARKING_SCHEMA), "commune": communes.of(parking["id"])}

    return record_layer(index.records, props)


PARKINGS = FeatureKind(
    "parkings",
    "Car parks",
    PARKING_SCHEMA,
    indexed_layer(INDEX_NAME, build_index, _layer),
)

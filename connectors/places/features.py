"""Public places as an OGC API Features collection per source (see
:mod:`aggregator.api.features_layers`), their properties those of ``/v1/places`` (opening
hours evaluated at the request's time)."""

from __future__ import annotations

from typing import Any

from aggregator.api.features_layers import (
    Context,
    FeatureKind,
    Layer,
    indexed_layer,
    properties_of,
    record_layer,
)

from .connector import INDEX_NAME, build_index
from .placeindex import PlacesIndex
from .routes import PLACE_SCHEMA, render


def _layer(_source_id: str, index: PlacesIndex) -> Layer:
    def props(place: Any, ctx: Context) -> dict[str, Any]:
        return properties_of(render(index, place, ctx.now, ctx.runtime))

    return record_layer(index.geo.records, props)


PLACES = FeatureKind(
    "places", "Places", PLACE_SCHEMA, indexed_layer(INDEX_NAME, build_index, _layer)
)

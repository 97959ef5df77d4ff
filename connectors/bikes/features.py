"""Bike-share stations as an OGC API Features collection per source (see
:mod:`aggregator.api.features_layers`), their properties those of ``/v1/bikes/stations``."""

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

from .routes import STATION_SCHEMA
from .source import INDEX_NAME, build_index


def _layer(source_id: str, index: PlaceIndex) -> Layer:
    def props(station: Any, ctx: Context) -> dict[str, Any]:
        communes = index_communes(ctx.runtime, "bikes", source_id, index)
        return {**selected(station, STATION_SCHEMA), "commune": communes.of(station["id"])}

    return record_layer(index.records, props)


BIKE_STATIONS = FeatureKind(
    "bike_stations",
    "Bike stations",
    STATION_SCHEMA,
    indexed_layer(INDEX_NAME, build_index, _layer),
)

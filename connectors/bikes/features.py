"""Bike-share stations as an OGC API Features collection per source (see
:mod:`aggregator.api.features_layers`), their properties those of ``/v1/bikes/stations``."""

from __future__ import annotations

from connectors.places.near_features import near_feature_kind

from .routes import STATION_SCHEMA
from .source import INDEX_NAME, build_index

BIKE_STATIONS = near_feature_kind(
    "bike_stations", "Bike stations", STATION_SCHEMA, INDEX_NAME, build_index, communes_kind="bikes"
)

"""Car parks as an OGC API Features collection per source (see
:mod:`aggregator.api.features_layers`), their properties those of ``/v1/parkings``."""

from __future__ import annotations

from connectors.places.near_features import near_feature_kind

from .connector import INDEX_NAME, build_index
from .routes import PARKING_SCHEMA

PARKINGS = near_feature_kind(
    "parkings", "Car parks", PARKING_SCHEMA, INDEX_NAME, build_index, communes_kind="parkings"
)

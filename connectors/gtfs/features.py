"""A timetable's stops as an OGC API Features collection (see
:mod:`aggregator.api.features_layers`): every stop with coordinates, in stop id order, its
properties those of ``/v1/stops/{stop_id}`` (lines, alerts, commune)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aggregator.api.features_layers import (
    LAYER_INDEX,
    Context,
    FeatureKind,
    Layer,
    properties_of,
)
from aggregator.model import Snapshot
from aggregator.runtime import Runtime

from .routes import stop_with_alerts
from .schemas import ALL, STOP
from .timetable import Timetable


def stop_layer(runtime: Runtime, source_id: str) -> Layer | None:
    def build(snapshot: Snapshot) -> Layer:
        tt: Timetable = snapshot.data
        lat = np.asarray(tt.stop_lat, dtype=np.float64)
        lon = np.asarray(tt.stop_lon, dtype=np.float64)
        # A stop without coordinates (a generic node may have none) is not a feature.
        located: list[int] = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon)).tolist()
        located.sort(key=lambda i: tt.stop_ids[i])
        ids = [f"{source_id}:{tt.stop_ids[i]}" for i in located]
        rows = np.asarray(located, dtype=np.int64)

        def props(i: int, ctx: Context) -> dict[str, Any]:
            return properties_of(stop_with_alerts(ctx.runtime, source_id, tt, int(rows[i])))

        return Layer(
            keys=ids,
            ids=ids,
            lon=lon[rows] if len(rows) else np.empty(0),
            lat=lat[rows] if len(rows) else np.empty(0),
            starts=None,
            ends=None,
            properties=props,
            by_id={feature: i for i, feature in enumerate(ids)},
        )

    return runtime.live.index(source_id, f"{LAYER_INDEX}:stops", build)


STOPS = FeatureKind("stops", "Stops", STOP, stop_layer, ALL)

"""Each event source's located occurrences as an OGC API Features collection (see
:mod:`aggregator.api.features_layers`), read from the combined event index in its
(start, id) order, their properties those of ``/v1/events`` (localised, with their
commune)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aggregator.api.features_layers import (
    Context,
    FeatureKind,
    LatestLayers,
    Layer,
    properties_of,
)
from aggregator.runtime import Runtime

from .api import INDEX_NAME
from .index import EventIndex
from .routes import _commune_of, _communes, _localized
from .schemas import ALL, EVENT


def _events_of(index: EventIndex, source_id: str) -> Layer:
    """The located occurrences of one source, in the index's (start, id) order.

    An occurrence merged with a duplicate from another source keeps the richer record's
    source: it is a feature of that source's collection only.
    """
    code = index.source_names.index(source_id) if source_id in index.source_names else -1
    chosen = np.flatnonzero(
        (index.source == code) & np.isfinite(index.lat) & np.isfinite(index.lon)
    )
    positions = chosen.tolist()
    records = index.records

    def props(i: int, ctx: Context) -> dict[str, Any]:
        record = records[positions[i]]

        def render(rec: Any) -> dict[str, Any]:
            return _localized(rec, ctx.language, ctx.runtime)

        item = properties_of(index.localized(record, ctx.language, ctx.runtime.languages, render))
        item["commune"] = _commune_of(_communes(ctx.runtime, index), index, record)
        return item

    ids = [records[p]["id"] for p in positions]
    return Layer(
        keys=[index.keys[p] for p in positions],
        ids=ids,
        lon=index.lon[chosen],
        lat=index.lat[chosen],
        starts=index.starts[chosen],
        ends=index.ends[chosen],
        properties=props,
        by_id={feature: i for i, feature in enumerate(ids)},
    )


#: The layers of the current combined index (a new index, new layers; the old ones go).
_LAYERS = LatestLayers(_events_of)


def event_layer(runtime: Runtime, source_id: str) -> Layer | None:
    if runtime.live.snapshot(source_id) is None:
        return None
    index: EventIndex | None = runtime.live.combined(INDEX_NAME)
    return None if index is None else _LAYERS.get(index, source_id)


EVENTS = FeatureKind("events", "Events", EVENT, event_layer, ALL)

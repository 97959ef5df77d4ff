"""The OGC API Features collections: one per located source, read from the indexes the
``/v1`` lists already keep.

A :class:`Layer` is one source's features in a stable order (by id; events by start, then
id, like ``/v1/events``) with their coordinates in numpy arrays, so a ``bbox`` or
``datetime`` filter is a vectorised mask and a page boundary is a key (keyset paging). It is
built once per snapshot (``runtime.live.index``) or, for events, once per combined event
index; a feature's properties are made only for the page served, by the same functions as
the ``/v1`` answers (``stop_json``, the places' ``render``, the events' localisation).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aggregator.model import Snapshot
from aggregator.runtime import Runtime
from connectors.bikes.routes import STATION_SCHEMA, bike_sources
from connectors.bikes.source import INDEX_NAME as BIKE_INDEX
from connectors.bikes.source import build_index as build_bike_index
from connectors.events.api import EVENT_TYPES
from connectors.events.api import INDEX_NAME as EVENT_INDEX
from connectors.events.index import EventIndex
from connectors.events.routes import _localized as localized_event
from connectors.events.schemas import EVENT
from connectors.gtfs.routes import _with_alerts as stop_with_alerts
from connectors.gtfs.routes import gtfs_sources
from connectors.gtfs.schemas import STOP
from connectors.gtfs.timetable import Timetable
from connectors.parkings.connector import INDEX_NAME as PARKING_INDEX
from connectors.parkings.connector import build_index as build_parking_index
from connectors.parkings.routes import PARKING_SCHEMA, parking_sources
from connectors.places.connector import INDEX_NAME as PLACE_INDEX
from connectors.places.connector import build_index as build_place_index
from connectors.places.geo import PlaceIndex
from connectors.places.placeindex import PlacesIndex
from connectors.places.routes import PLACE_SCHEMA, place_sources
from connectors.places.routes import render as render_place

#: The name of a layer among a snapshot's indexes.
LAYER_INDEX = "ogc_features"
#: Members of the /v1 items that a feature does not repeat in its properties: the point is
#: its geometry, and a distance has no meaning without a point asked about.
NOT_PROPERTIES = frozenset({"lat", "lon", "distance_m", "freshness"})


@dataclass(frozen=True)
class Context:
    """What making a feature's properties needs from the request."""

    runtime: Runtime
    language: str
    now: datetime


@dataclass(frozen=True)
class Layer:
    """One collection's features, sorted by ``keys`` (ids, or (start, id) for events)."""

    keys: Sequence[Any]
    ids: Sequence[str]
    lon: np.ndarray
    lat: np.ndarray
    #: Epoch seconds of each feature's time interval (events), None for timeless features.
    starts: np.ndarray | None
    ends: np.ndarray | None
    properties: Callable[[int, Context], dict[str, Any]]
    by_id: Mapping[str, int]

    def __len__(self) -> int:
        return len(self.ids)

    def bbox(self) -> list[float] | None:
        """The smallest [west, south, east, north] holding every feature (None: empty)."""
        if not len(self.ids):
            return None
        return [
            float(self.lon.min()),
            float(self.lat.min()),
            float(self.lon.max()),
            float(self.lat.max()),
        ]

    def interval(self) -> tuple[float, float] | None:
        """The first start and the last end, in epoch seconds (None: timeless or empty)."""
        if self.starts is None or self.ends is None or not len(self.ids):
            return None
        return float(self.starts.min()), float(self.ends.max())


@dataclass(frozen=True)
class Kind:
    """A kind of located record: its sources, its properties' schema, its layers."""

    name: str
    title: str
    #: The /v1 item schema the properties come from (minus :data:`NOT_PROPERTIES`).
    item_schema: Mapping[str, Any]
    sources: Callable[[Runtime], list[str]]
    layer: Callable[[Runtime, str], Layer | None]


def _selected(record: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The members of ``record`` that the properties' schema declares, in its order."""
    return {
        name: record[name]
        for name in schema["properties"]
        if name not in NOT_PROPERTIES and name in record
    }


def _points(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    lon = np.array([r["lon"] for r in records], dtype=np.float64)
    lat = np.array([r["lat"] for r in records], dtype=np.float64)
    return lon, lat


def _record_layer(
    records: Sequence[Mapping[str, Any]], props: Callable[[Mapping[str, Any], Context], dict]
) -> Layer:
    """A layer of records with ``id``, ``lat`` and ``lon`` (a :class:`PlaceIndex`'s)."""
    ordered = sorted(records, key=lambda r: r["id"])
    ids = [r["id"] for r in ordered]
    lon, lat = _points(ordered)
    return Layer(
        keys=ids,
        ids=ids,
        lon=lon,
        lat=lat,
        starts=None,
        ends=None,
        properties=lambda i, ctx: props(ordered[i], ctx),
        by_id={feature: i for i, feature in enumerate(ids)},
    )


def _indexed(
    runtime: Runtime, source_id: str, name: str, build: Callable[[Snapshot], Any]
) -> Callable[[Snapshot], Any]:
    """A layer builder reading the connector's own index of the same snapshot."""

    def builder(snapshot: Snapshot) -> Any:
        index = runtime.live.index(source_id, name, build)
        return None if index is None else _LAYER_OF[name](index, snapshot)

    return builder


def _bike_layer(index: PlaceIndex, _snapshot: Snapshot) -> Layer:
    return _record_layer(index.records, lambda r, _ctx: _selected(r, STATION_SCHEMA))


def _parking_layer(index: PlaceIndex, _snapshot: Snapshot) -> Layer:
    return _record_layer(index.records, lambda r, _ctx: _selected(r, PARKING_SCHEMA))


def _place_layer(index: PlacesIndex, _snapshot: Snapshot) -> Layer:
    def props(place: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
        rendered = render_place(index, place, ctx.now)
        return {k: v for k, v in rendered.items() if k not in NOT_PROPERTIES}

    return _record_layer(index.geo.records, props)


_LAYER_OF: dict[str, Callable[[Any, Snapshot], Layer]] = {
    BIKE_INDEX: _bike_layer,
    PARKING_INDEX: _parking_layer,
    PLACE_INDEX: _place_layer,
}


def _snapshot_layer(index_name: str, build: Callable[[Snapshot], Any]) -> Callable:
    def layer(runtime: Runtime, source_id: str) -> Layer | None:
        builder = _indexed(runtime, source_id, index_name, build)
        return runtime.live.index(source_id, f"{LAYER_INDEX}:{index_name}", builder)

    return layer


def _stop_layer(runtime: Runtime, source_id: str) -> Layer | None:
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
            stop = stop_with_alerts(ctx.runtime, source_id, tt, int(rows[i]))
            return {k: v for k, v in stop.items() if k not in NOT_PROPERTIES}

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


#: Event layers by combined index (a new index, a new layer) and source.
_EVENT_LAYERS: weakref.WeakKeyDictionary[EventIndex, dict[str, Layer]] = weakref.WeakKeyDictionary()


def event_sources(runtime: Runtime) -> list[str]:
    return [s.source_id for s in runtime.statuses.values() if s.source_type in EVENT_TYPES]


def _event_layer(runtime: Runtime, source_id: str) -> Layer | None:
    if runtime.live.snapshot(source_id) is None:
        return None
    index: EventIndex | None = runtime.live.combined(EVENT_INDEX)
    if index is None:
        return None
    layers = _EVENT_LAYERS.setdefault(index, {})
    layer = layers.get(source_id)
    if layer is None:
        layer = layers[source_id] = _events_of(index, source_id)
    return layer


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
            return localized_event(rec, ctx.language, ctx.runtime)

        out = index.localized(record, ctx.language, ctx.runtime.languages, render)
        return {k: v for k, v in out.items() if k not in NOT_PROPERTIES}

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


KINDS: tuple[Kind, ...] = (
    Kind("stops", "Stops", STOP, gtfs_sources, _stop_layer),
    Kind(
        "bike_stations",
        "Bike stations",
        STATION_SCHEMA,
        bike_sources,
        _snapshot_layer(BIKE_INDEX, build_bike_index),
    ),
    Kind(
        "parkings",
        "Car parks",
        PARKING_SCHEMA,
        parking_sources,
        _snapshot_layer(PARKING_INDEX, build_parking_index),
    ),
    Kind(
        "places",
        "Places",
        PLACE_SCHEMA,
        place_sources,
        _snapshot_layer(PLACE_INDEX, build_place_index),
    ),
    Kind("events", "Events", EVENT, event_sources, _event_layer),
)


def collections(runtime: Runtime) -> dict[str, Kind]:
    """The collection ids this deployment serves (its located sources' ids) and their kinds."""
    found: dict[str, Kind] = {}
    for kind in KINDS:
        for source_id in kind.sources(runtime):
            found.setdefault(source_id, kind)
    return found


def epoch_iso(seconds: float) -> str | None:
    if not math.isfinite(seconds):
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat()

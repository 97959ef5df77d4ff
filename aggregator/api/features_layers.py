"""The OGC API Features collections: one per located source, each of the kind its connector
type offers (:meth:`aggregator.connector.Connector.feature_kind`).

A :class:`Layer` is one source's features in a stable order (by id; events by start, then
id, like ``/v1/events``) with their coordinates in numpy arrays, so a ``bbox`` or
``datetime`` filter is a vectorised mask and a page boundary is a key (keyset paging). A
connector type builds it from the indexes its ``/v1`` lists already keep, once per snapshot
(see :func:`indexed_layer`) or once per combined index (see :class:`LatestLayers`); a
feature's properties are made only for the page served, by the same functions as the
``/v1`` answers. This module never names a connector: the collections are the configured
sources whose type offers a kind, so a third-party type serves its own collection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from aggregator.model import Snapshot

if TYPE_CHECKING:
    from aggregator.connector import Connector
    from aggregator.runtime import Runtime

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

    # Computed once per layer (a layer lives as long as its snapshot), not per request.
    @cached_property
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

    @cached_property
    def interval(self) -> tuple[float, float] | None:
        """The first start and the last end, in epoch seconds (None: timeless or empty)."""
        if self.starts is None or self.ends is None or not len(self.ids):
            return None
        return float(self.starts.min()), float(self.ends.max())


@dataclass(frozen=True)
class FeatureKind:
    """A kind of located record a connector type offers as OGC collections, one per source."""

    #: The kind's name (``stops``, ``events``): the collections' ``kind`` and the name of its
    #: properties' schema (``Ogc<Name>Properties``).
    name: str
    title: str
    #: The /v1 item schema the properties come from (minus :data:`NOT_PROPERTIES`).
    item_schema: Mapping[str, Any]
    #: The layer of one source at this moment (None: no data yet).
    layer: Callable[[Runtime, str], Layer | None]
    #: Named schemas the item schema refers to (``$ref``), declared with the properties.
    schemas: Mapping[str, Any] = field(default_factory=dict)


def feature_kinds(connector_types: Iterable[type[Connector]]) -> list[FeatureKind]:
    """The kinds the installed connector types offer, by name; two types may offer the same
    kind (every bike-share type offers ``bike_stations``), two kinds may not share a name."""
    found: dict[str, FeatureKind] = {}
    for connector_type in connector_types:
        kind = connector_type.feature_kind()
        if kind is None:
            continue
        if found.setdefault(kind.name, kind) is not kind:
            raise ValueError(f"two feature kinds are named {kind.name!r}")
    return [found[name] for name in sorted(found)]


def collections(runtime: Runtime) -> dict[str, FeatureKind]:
    """The collection ids this deployment serves (its located sources' ids) and their kinds."""
    found: dict[str, FeatureKind] = {}
    for source_id, status in runtime.statuses.items():
        connector_type = runtime.connector_types.get(status.source_type)
        kind = None if connector_type is None else connector_type.feature_kind()
        if kind is not None:
            found[source_id] = kind
    return found


def properties_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """A /v1 item as a feature's properties: without what the geometry says."""
    return {k: v for k, v in item.items() if k not in NOT_PROPERTIES}


def selected(record: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The members of ``record`` that the properties' schema declares, in its order."""
    return {
        name: record[name]
        for name in schema["properties"]
        if name not in NOT_PROPERTIES and name in record
    }


def record_layer(
    records: Sequence[Mapping[str, Any]],
    props: Callable[[Mapping[str, Any], Context], dict[str, Any]],
) -> Layer:
    """A layer of records with ``id``, ``lat`` and ``lon``, in id order; ``props`` makes a
    record's properties."""
    ordered = sorted(records, key=lambda r: r["id"])
    ids = [r["id"] for r in ordered]
    return Layer(
        keys=ids,
        ids=ids,
        lon=np.array([r["lon"] for r in ordered], dtype=np.float64),
        lat=np.array([r["lat"] for r in ordered], dtype=np.float64),
        starts=None,
        ends=None,
        properties=lambda i, ctx: props(ordered[i], ctx),
        by_id={feature: i for i, feature in enumerate(ids)},
    )


def indexed_layer(
    index_name: str,
    build_index: Callable[[Snapshot], Any],
    make: Callable[[str, Any], Layer],
) -> Callable[[Runtime, str], Layer | None]:
    """A :attr:`FeatureKind.layer` made from the type's own index ``index_name`` of a source's
    snapshot: ``make(source_id, index)`` runs once per snapshot, the layer being kept beside
    the index (and dropped with the snapshot)."""

    def layer(runtime: Runtime, source_id: str) -> Layer | None:
        def build(_snapshot: Snapshot) -> Layer | None:
            index = runtime.live.index(source_id, index_name, build_index)
            return None if index is None else make(source_id, index)

        return runtime.live.index(source_id, f"{LAYER_INDEX}:{index_name}", build)

    return layer


class LatestLayers:
    """Layers made from a combined index (one over several sources), for its latest
    version only: a new index replaces every layer, so an index that the live data has
    dropped is not kept alive by its layers (whose properties refer to it)."""

    def __init__(self, make: Callable[[Any, str], Layer]) -> None:
        self._make = make
        self._index: Any = None
        self._layers: dict[str, Layer] = {}

    def get(self, index: Any, source_id: str) -> Layer:
        if index is not self._index:
            self._index, self._layers = index, {}
        layer = self._layers.get(source_id)
        if layer is None:
            layer = self._layers[source_id] = self._make(index, source_id)
        return layer


def epoch_iso(seconds: float) -> str | None:
    if not math.isfinite(seconds):
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat()

"""The communes as the territory's shared reference: which commune each located record is in.

A source of type ``communes`` loads the polygons (INSEE code, name); its connector builds a
:class:`CommuneIndex` over every such source (an STRtree, rebuilt when one changes). Routes
ask :class:`CommuneTags` for the communes of their records: every record of a snapshot (or
of an index built from snapshots) is looked up at once, in one vectorised STRtree query,
and the answer is kept until either the records or the communes change. So a request reads
a commune, it never computes one (docs/BENCHMARKS.md, "communes").

Why not tag records inside each connector's ``parse``: a source may load before the
communes do, and the communes may change (a new vintage, a merger of communes) while the
source does not. Keyed by (records, communes), the tags follow both, whichever comes first.

A point on the border of two communes is covered by both polygons: it is given to the one
with the smaller code, so the answer never depends on the order of the file. A point in a
hole of a polygon (an enclave) is in the commune that fills the hole, or in none.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

if TYPE_CHECKING:
    from aggregator.live import LiveData
    from aggregator.model import Snapshot

#: The name of the combined index of every ``communes`` source (see LiveData.combine).
INDEX_NAME = "communes"
#: An INSEE commune code: five digits, or 2A/2B and three digits in Corsica.
CODE_PATTERN = re.compile(r"(?:\d{5}|2[AB]\d{3})")


@dataclass(frozen=True)
class CommuneIndex:
    """Communes (code, name, polygon) behind an STRtree; immutable once built.

    ``key`` names what it was built from ((source id, version) pairs), so tags made from
    one index are never taken for another's.
    """

    key: tuple[tuple[str, int], ...]
    codes: tuple[str, ...]
    names: tuple[str, ...]
    polygons: tuple[BaseGeometry, ...]
    tree: STRtree | None
    position: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        communes: Iterable[tuple[str, str, BaseGeometry]],
        key: tuple[tuple[str, int], ...] = (),
    ) -> CommuneIndex:
        """From (code, name, polygon) triples; a code met twice keeps its first polygon."""
        seen: dict[str, tuple[str, BaseGeometry]] = {}
        for code, name, polygon in communes:
            seen.setdefault(code, (name, polygon))
        # Sorted by code: the lowest position wins a border, so the lowest code does.
        codes = tuple(sorted(seen))
        polygons = tuple(seen[c][1] for c in codes)
        for polygon in polygons:
            shapely.prepare(polygon)
        return cls(
            key=key,
            codes=codes,
            names=tuple(seen[c][0] for c in codes),
            polygons=polygons,
            tree=STRtree(polygons) if polygons else None,
            position={code: i for i, code in enumerate(codes)},
        )

    def __len__(self) -> int:
        return len(self.codes)

    def commune(self, position: int) -> dict[str, str] | None:
        """The public shape of the commune at ``position`` (-1: none)."""
        if position < 0:
            return None
        return {"code": self.codes[position], "name": self.names[position]}

    def locate_many(self, lons: Any, lats: Any) -> np.ndarray:
        """The position of the commune covering each point (-1 where none does).

        One STRtree query for all the points; NaN coordinates (a record without a place)
        are in no commune.
        """
        lons = np.asarray(lons, dtype=np.float64)
        lats = np.asarray(lats, dtype=np.float64)
        found = np.full(len(lons), -1, dtype=np.int32)
        if self.tree is None or len(lons) == 0:
            return found
        located = np.flatnonzero(~(np.isnan(lons) | np.isnan(lats)))
        points = shapely.points(lons[located], lats[located])
        hits = self.tree.query(points, predicate="covered_by")
        # Several communes cover a point on their border: the lowest position wins.
        none = np.iinfo(np.int32).max
        best = np.full(len(located), none, dtype=np.int64)
        np.minimum.at(best, hits[0], hits[1])
        found[located] = np.where(best == none, -1, best)
        return found

    def locate(self, lon: float, lat: float) -> dict[str, str] | None:
        """The commune covering one point, or None."""
        return self.commune(int(self.locate_many([lon], [lat])[0]))


EMPTY = CommuneIndex.build(())


@dataclass(frozen=True)
class RecordCommunes:
    """The commune of each record of one collection, by its position in that collection."""

    index: CommuneIndex
    positions: np.ndarray
    #: The records' keys (ids), in collection order, when they are looked up by key.
    keys: Sequence[Hashable] = ()
    _by_key: dict[Hashable, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_key.update((k, i) for i, k in enumerate(self.keys))

    def at(self, position: int) -> dict[str, str] | None:
        """The commune of the record at ``position``, as answered (None: in none)."""
        return self.index.commune(int(self.positions[position]))

    def of(self, key: Hashable) -> dict[str, str] | None:
        """The commune of the record with key ``key`` (None: in none, or unknown key)."""
        position = self._by_key.get(key)
        return None if position is None else self.at(position)

    def mask(self, code: str) -> np.ndarray:
        """Which records are in the commune ``code`` (a boolean per position)."""
        wanted = self.index.position.get(code, -2)
        return self.positions == wanted

    def keys_in(self, code: str) -> frozenset[Hashable]:
        """The keys of the records in commune ``code``."""
        return frozenset(self.keys[i] for i in np.flatnonzero(self.mask(code)))

    def codes(self) -> list[str]:
        """The codes of the communes these records touch, sorted."""
        used = np.unique(self.positions[self.positions >= 0])
        return [self.index.codes[int(i)] for i in used]


Points = tuple[Sequence[Hashable], Any, Any]


class CommuneTags:
    """Per-process cache of :class:`RecordCommunes`, one per collection name.

    An entry is reused while its basis (the snapshot or index its records come from, by
    identity) and the commune index are the ones it was made from; otherwise it is made
    again, once. Names are a route's kind and a configured source id: bounded by the
    configuration, never by a request.
    """

    def __init__(self, live: LiveData) -> None:
        self._live = live
        # The basis is held weakly: a replaced timetable or index must be freed by reference
        # counting alone when its new version arrives, not when a request next asks for that
        # collection (the adopted heap is frozen; see aggregator.live).
        self._cache: dict[str, tuple[Callable[[], object], CommuneIndex, RecordCommunes]] = {}

    def index(self) -> CommuneIndex:
        """The communes now served (empty when no communes source is configured or loaded)."""
        try:
            built = self._live.combined(INDEX_NAME)
        except KeyError:  # no connector type provides the communes
            return EMPTY
        return built if isinstance(built, CommuneIndex) else EMPTY

    def of(self, name: str, basis: object, points: Callable[[], Points]) -> RecordCommunes:
        """The communes of the records of ``basis``; ``points()`` gives (keys, lons, lats)."""
        index = self.index()
        cached = self._cache.get(name)
        if cached is not None and cached[0]() is basis and cached[1] is index:
            return cached[2]
        keys, lons, lats = points()
        tags = RecordCommunes(index, index.locate_many(lons, lats), keys)
        self._cache[name] = (_held_weakly(basis), index, tags)
        return tags


def _held_weakly(basis: object) -> Callable[[], object]:
    """A weak reference to ``basis``; a strong one for the few objects that take none."""
    try:
        return weakref.ref(basis)
    except TypeError:
        return lambda: basis


def _coordinate(record: Mapping[str, Any], name: str) -> float:
    value = record.get(name)
    if value is None and isinstance(record.get("location"), Mapping):
        value = record["location"].get(name)  # an event's place
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan
    )


def record_coordinates(records: Sequence[Mapping[str, Any]]) -> tuple[Any, Any] | None:
    """(lons, lats) of records with ``lat``/``lon`` (NaN where missing), None if none has."""
    lons = np.array([_coordinate(r, "lon") for r in records], dtype=np.float64)
    lats = np.array([_coordinate(r, "lat") for r in records], dtype=np.float64)
    located = ~(np.isnan(lons) | np.isnan(lats))
    return (lons, lats) if located.any() else None


def record_points(records: Sequence[Mapping[str, Any]]) -> Points:
    """(ids, lons, lats) of records with ``id``/``lat``/``lon`` (NaN where missing)."""
    return (
        [r["id"] for r in records],
        np.array([_coordinate(r, "lon") for r in records], dtype=np.float64),
        np.array([_coordinate(r, "lat") for r in records], dtype=np.float64),
    )


def coverage(
    tags: CommuneTags, source_id: str, snapshot: Snapshot, kind: Any
) -> list[tuple[str, str]]:
    """(code, name) of the communes a source's current snapshot touches, sorted by code;
    ``kind``: its connector type (whose ``located_points`` says where its records are)."""

    def points() -> Points:
        located = kind.located_points(snapshot)
        return ((), *(located if located is not None else ((), ())))

    found = tags.of(f"coverage:{source_id}", snapshot, points)
    return [(code, found.index.names[found.index.position[code]]) for code in found.codes()]

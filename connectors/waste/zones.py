"""Collection zones as shapely polygons, and the STRtree that finds a point's zones.

A point may fall in several zones: many councils publish one layer per stream (a
household-waste zone and a recycling zone overlapping), and a point exactly on a shared
border touches both. The lookup returns every zone whose polygon *covers* the point (inside
or on its boundary, never in a hole), in a stable order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree


class ZoneGeometryError(ValueError):
    """A zone's geometry cannot be used (missing, not a polygon, or invalid)."""


def zone_polygon(geometry: Any) -> BaseGeometry:
    """A valid (Multi)Polygon from GeoJSON; a GeoJSON Feature is unwrapped first."""
    if isinstance(geometry, Mapping) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if not isinstance(geometry, Mapping):
        raise ZoneGeometryError("no geometry")
    if geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise ZoneGeometryError(f"a {geometry.get('type')!r} geometry, not a (Multi)Polygon")
    try:
        polygon = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.ShapelyError) as exc:
        raise ZoneGeometryError(f"unreadable coordinates ({exc})") from None
    if polygon.is_empty:
        raise ZoneGeometryError("an empty polygon")
    if not polygon.is_valid:
        # Served as is, a self-intersecting ring answers "inside" for points outside it:
        # dropped and named rather than guessed at (make_valid would invent a shape).
        raise ZoneGeometryError(f"an invalid polygon ({shapely.is_valid_reason(polygon)})")
    return polygon


@dataclass(frozen=True)
class ZoneIndex:
    """Zone ids and their polygons, behind an STRtree built once per snapshot."""

    ids: Sequence[str]
    polygons: Sequence[BaseGeometry]
    tree: STRtree

    @classmethod
    def build(cls, zones: Mapping[str, BaseGeometry]) -> ZoneIndex:
        ids = list(zones)
        polygons = [zones[i] for i in ids]
        for polygon in polygons:
            shapely.prepare(polygon)
        return cls(ids, polygons, STRtree(polygons))

    def at(self, lat: float, lon: float) -> list[str]:
        """Ids of the zones covering the point, in index order."""
        hits = self.tree.query(Point(lon, lat), predicate="covered_by")
        return [self.ids[i] for i in sorted(hits)]


def surface_points(polygons: Sequence[BaseGeometry]) -> tuple[Any, Any]:
    """(lons, lats) of a point surely inside each polygon (shapely's point on surface)."""
    inside = shapely.point_on_surface(np.asarray(polygons, dtype=object))
    return shapely.get_x(inside), shapely.get_y(inside)

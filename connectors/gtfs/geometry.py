"""A line's geometry as an RFC 7946 FeatureCollection, for drawing it on a map.

One LineString Feature per direction and per distinct shape its trips use (shapes.txt),
coordinates ``[lon, lat]``. Trips of a direction without a usable shape (no shape_id, or a
feed without shapes.txt) get one more Feature drawn through the ordered stops of their most
common stop pattern, marked ``"geometry_source": "stops"``: a straight line from stop to
stop, which a client may want to style differently.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .timetable import Timetable

FROM_SHAPES = "shapes.txt"
FROM_STOPS = "stops"
#: Decimal places tried when printing a float32 coordinate (its shortest form has fewer
#: unless it is within about 1e-4 of 0).
MAX_DECIMALS = 12


def line_geojson(feed: str, tt: Timetable, route: int) -> dict[str, Any]:
    """The FeatureCollection of route index ``route`` (bbox only when something is drawn)."""
    trips = np.flatnonzero(tt.trip_route == route)
    first_run = _first_runs(tt)
    # Trips without stop times never run: line pages do not count them either.
    trips = trips[first_run[trips] >= 0]
    directions = tt.trip_direction[trips]
    line_id = f"{feed}:{tt.route_ids[route]}"
    features: list[dict[str, Any]] = []
    for direction in np.unique(directions).tolist():
        ways = trips[directions == direction]
        shapes = tt.trip_shape[ways]
        used, counts = np.unique(shapes[shapes >= 0], return_counts=True)
        # Most used shape first, then by id, so the order is stable between loads.
        by_use = dict(zip(used.tolist(), counts.tolist(), strict=True))
        for shape in sorted(by_use, key=lambda k: (-by_use[k], tt.shape_ids[k])):
            shape_id = f"{feed}:{tt.shape_ids[shape]}"
            properties = _properties(tt, line_id, direction, ways[shapes == shape], shape_id)
            features.append(_feature(_shape_coordinates(tt, shape), properties))
        shapeless = ways[shapes < 0]
        if len(shapeless):
            properties = _properties(tt, line_id, direction, shapeless, None)
            coordinates = _stop_coordinates(tt, first_run[shapeless])
            features.append(_feature(coordinates, properties))
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    boxes = [f["bbox"] for f in features if "bbox" in f]
    if boxes:
        west, south, east, north = zip(*boxes, strict=True)
        collection["bbox"] = [min(west), min(south), max(east), max(north)]
    collection["features"] = features
    return collection


def _first_runs(tt: Timetable) -> np.ndarray:
    """Each trip's first run (-1 if it has no stop times), computed once per timetable."""
    found: np.ndarray | None = tt.query_caches.get("first_run_of_trip")
    if found is None:
        found = np.full(len(tt.trip_ids), -1, np.int64)
        # Runs come grouped by trip; any run of a trip would do, since the runs of a
        # frequency-based trip share its stop pattern.
        first = np.ones(len(tt.run_trip), bool)
        first[1:] = tt.run_trip[1:] != tt.run_trip[:-1]
        first &= np.diff(tt.st_ptr) > 0
        found[tt.run_trip[first]] = np.flatnonzero(first)
        tt.query_caches["first_run_of_trip"] = found
    return found


def _properties(
    tt: Timetable, line_id: str, direction: int, trips: np.ndarray, shape_id: str | None
) -> dict[str, Any]:
    names = Counter(tt.trip_headsigns[t] for t in trips.tolist())
    names.pop("", None)
    return {
        "line_id": line_id,
        "direction_id": direction if direction >= 0 else None,
        "headsigns": [name for name, _ in sorted(names.items(), key=lambda i: (-i[1], i[0]))],
        "shape_id": shape_id,
        "trips": len(trips),
        "geometry_source": FROM_SHAPES if shape_id is not None else FROM_STOPS,
    }


def _shape_coordinates(tt: Timetable, shape: int) -> np.ndarray:
    a, b = int(tt.shape_ptr[shape]), int(tt.shape_ptr[shape + 1])
    return np.column_stack((shortest(tt.shape_lon[a:b]), shortest(tt.shape_lat[a:b])))


def shortest(values: np.ndarray) -> np.ndarray:
    """float32 values as the float64 of their shortest decimal form (what numpy prints).

    Widened as is, the float32 of 50.64 prints as 50.63999938964844; the shortest decimal
    that reads back as the same float32 is 50.64, the feed's own text whenever float32
    could hold it. Found by rounding to 0, 1, 2... decimals, whole arrays at a time (numpy's
    own float32 to text is about 15 times slower).
    """
    wide = values.astype(np.float64)
    out = wide.copy()  # a value no rounding reproduces keeps its exact (long) form
    todo = np.arange(len(values))
    for decimals in range(MAX_DECIMALS + 1):
        if not len(todo):
            break
        rounded = np.round(wide[todo], decimals)
        same = rounded.astype(np.float32) == values[todo]
        out[todo[same]] = rounded[same]
        todo = todo[~same]
    return out


def _stop_coordinates(tt: Timetable, runs: np.ndarray) -> np.ndarray:
    """Through the stops of the most common pattern of ``runs``; unlocated stops skipped."""
    patterns = Counter(tt.st_stop[tt.st_ptr[r] : tt.st_ptr[r + 1]].tobytes() for r in runs.tolist())
    # Counted in trip order, ties to the first met, as the line's JSON directions are
    # (.patterns): a direction without shapes is drawn through the stops that page lists.
    best = patterns.most_common(1)[0][0]
    stops = np.frombuffer(best, dtype=tt.st_stop.dtype)
    points = np.column_stack((tt.stop_lon[stops], tt.stop_lat[stops]))
    return points[~np.isnan(points).any(axis=1)]


def _feature(coordinates: np.ndarray, properties: dict[str, Any]) -> dict[str, Any]:
    """A LineString Feature; geometry null when fewer than two points are known (RFC 7946 3.2)."""
    if len(coordinates) < 2:
        return {"type": "Feature", "geometry": None, "properties": properties}
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    return {
        "type": "Feature",
        "bbox": [float(low[0]), float(low[1]), float(high[0]), float(high[1])],
        "geometry": {"type": "LineString", "coordinates": coordinates.tolist()},
        "properties": properties,
    }

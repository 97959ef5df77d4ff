"""Line directions: per route and direction, the stop pattern most trips follow."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .timetable import Timetable


@dataclass(frozen=True, slots=True)
class RouteDirection:
    """One direction of a line, as riders see it on a line page."""

    direction_id: int | None
    #: Ordered stops of the most common pattern.
    stop_ids: list[str]
    stop_indices: list[int]
    #: Trips following that exact pattern / all trips of the route in this direction.
    pattern_trips: int
    direction_trips: int
    #: Most common headsign among the pattern's trips.
    headsign: str | None


def all_route_directions(tt: Timetable) -> dict[int, list[RouteDirection]]:
    """Directions of every route, computed in one pass over trips (route index → list)."""
    counts: dict[tuple[int, int], Counter[bytes]] = {}
    headsigns: dict[tuple[int, int, bytes], Counter[str]] = {}
    first_run = np.full(len(tt.trip_ids), -1, np.int64)
    # runs are ordered by trip; the first run of each trip stands for its pattern.
    runs = np.arange(len(tt.run_trip))
    seen = np.ones(len(runs), bool)
    seen[1:] = tt.run_trip[1:] != tt.run_trip[:-1]
    first_run[tt.run_trip[seen]] = runs[seen]
    ptr = tt.st_ptr
    for trip, run in enumerate(first_run.tolist()):
        if run < 0:
            continue
        key = (int(tt.trip_route[trip]), int(tt.trip_direction[trip]))
        pattern = tt.st_stop[ptr[run] : ptr[run + 1]].tobytes()
        counts.setdefault(key, Counter())[pattern] += 1
        headsign = tt.trip_headsigns[trip]
        if headsign:
            headsigns.setdefault((*key, pattern), Counter())[headsign] += 1
    out: dict[int, list[RouteDirection]] = {}
    for (route, direction), patterns in sorted(counts.items()):
        pattern, n = patterns.most_common(1)[0]
        stops = np.frombuffer(pattern, dtype=tt.st_stop.dtype).tolist()
        names = headsigns.get((route, direction, pattern))
        out.setdefault(route, []).append(
            RouteDirection(
                direction_id=direction if direction >= 0 else None,
                stop_ids=[tt.stop_ids[s] for s in stops],
                stop_indices=stops,
                pattern_trips=n,
                direction_trips=sum(patterns.values()),
                headsign=names.most_common(1)[0][0] if names else None,
            )
        )
    return out


def route_directions(tt: Timetable, route: int) -> list[RouteDirection]:
    """Directions of route index ``route`` (cached on the timetable after the first call)."""
    if tt._directions is None:
        tt._directions = all_route_directions(tt)
    return tt._directions.get(route, [])

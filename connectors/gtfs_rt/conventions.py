"""A producer's own form of the trip id, declared in the config instead of coded per city.

New York's subway sends ``036050_2..S07R`` where the static feed says
``AFA23GEN-2092-Weekday-00_036050_2..S07R``: the origin time in hundredths of a minute after
midnight (360.50 min = 06:00:30), ``_``, then the route/direction part. Declared as::

    trip_id_convention:
      pattern: '^(?P<origin>[0-9]{6})_(?P<path>.+)$'
      groups:
        origin: {origin_time: centiminutes}       # the run's first departure
        path: {column: trip_id, match: suffix}    # the static trip_id ends with it

A realtime id that the static feed does not know is read with the pattern; each named group
narrows the static runs (a column equal to it or ending with it; a first departure equal to
it), then the service day narrows them to the runs active that day. One run left: matched.
None: unmatched. Several: ambiguous. Both are counted, never guessed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from .descriptors import AmbiguousDescriptor
from .locate import lookups
from .matching import MatchError, RunMatch, active_runs, run_span

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

#: trips.txt columns the compiled timetable always keeps, by their GTFS names; any other
#: column must be listed in the gtfs source's ``keep_trip_columns``.
COLUMNS = {
    "trip_id": "trip_ids",
    "route_id": None,  # through trip_route
    "trip_headsign": "trip_headsigns",
    "trip_short_name": "trip_short_names",
    "block_id": "trip_block_ids",
    "shape_id": "trip_shape_ids",
}

#: How an origin time may be written: the unit, as seconds per unit (hhmmss is apart).
ORIGIN_UNITS = {"seconds": 1.0, "minutes": 60.0, "centiminutes": 0.6}
OriginUnit = Literal["seconds", "minutes", "centiminutes", "hhmmss"]
#: Ids the memo of resolved values keeps per timetable before it starts over.
MEMO_LIMIT = 50_000


class GroupRule(BaseModel):
    """What one named group of the pattern is compared with."""

    model_config = ConfigDict(extra="forbid")

    #: A trips.txt column: one of :data:`COLUMNS`, or an extra one the gtfs source keeps.
    column: Annotated[str, StringConstraints(min_length=1)] | None = None
    match: Literal["equals", "suffix"] = "equals"
    origin_time: OriginUnit | None = None

    @model_validator(mode="after")
    def _one_target(self) -> GroupRule:
        if (self.column is None) == (self.origin_time is None):
            raise ValueError("a group names either a `column` or an `origin_time` unit")
        if self.origin_time is not None and self.match != "equals":
            raise ValueError("`match: suffix` applies to a column, not to an origin time")
        return self


class TripIdConventionConfig(BaseModel):
    """``trip_id_convention`` of a gtfs_rt source."""

    model_config = ConfigDict(extra="forbid")

    pattern: str
    groups: dict[str, GroupRule]

    @model_validator(mode="after")
    def _groups_in_pattern(self) -> TripIdConventionConfig:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        if not self.groups:
            raise ValueError("list at least one named group under `groups`")
        missing = sorted(set(self.groups) - set(compiled.groupindex))
        if missing:
            raise ValueError(f"the pattern has no named group {', '.join(missing)}")
        return self

    def compile(self) -> TripIdConvention:
        """The runtime form."""
        return TripIdConvention(re.compile(self.pattern), tuple(self.groups.items()))


@dataclass(frozen=True)
class TripIdConvention:
    """A compiled convention; :meth:`resolve` reads one realtime id."""

    pattern: re.Pattern[str]
    groups: tuple[tuple[str, GroupRule], ...]

    def resolve(
        self,
        tt: Timetable,
        rt_trip_id: str,
        start_date: int | None,
        reference: Callable[[], float | None],
    ) -> RunMatch:
        """The one static run ``rt_trip_id`` names; raises MatchError / AmbiguousDescriptor."""
        found = self.pattern.fullmatch(rt_trip_id)
        if found is None:
            raise MatchError("the trip id does not fit the source's trip_id_convention")
        trips: set[int] | None = None
        origins: list[int] = []
        for name, rule in self.groups:
            value = found.group(name)
            if value is None:
                continue
            if rule.origin_time is not None:
                origins.append(_origin_seconds(value, rule.origin_time))
                continue
            assert rule.column is not None
            hits = set(_column_hits(tt, rule.column, rule.match, value))
            trips = hits if trips is None else trips & hits
        if trips is None:
            raise MatchError("the convention names no static column to match")
        look = lookups(tt)
        runs = [
            run
            for trip in sorted(trips)
            for run in tt.runs_of_trip(trip)
            if all(run_span(tt, run)[0] == origin for origin in origins)
        ]
        if not runs:
            raise MatchError("no static run fits the trip id")
        active = active_runs(tt, runs, start_date, reference)
        if not active:
            raise MatchError("no static run fitting the trip id runs that day")
        if len(active) > 1:
            raise AmbiguousDescriptor(f"{len(active)} static runs fit the trip id")
        run, day = active[0]
        return RunMatch(
            run, int(tt.run_trip[run]), day, tt.service_day_origin(look.run_agency[run], day)
        )


def _origin_seconds(value: str, unit: OriginUnit) -> int:
    if not value.isdigit():
        raise MatchError(f"origin time {value!r} is not a number")
    if unit == "hhmmss":
        if len(value) != 6:
            raise MatchError(f"origin time {value!r} is not HHMMSS")
        return int(value[:2]) * 3600 + int(value[2:4]) * 60 + int(value[4:])
    return round(int(value) * ORIGIN_UNITS[unit])


def _column_hits(tt: Timetable, column: str, match: str, value: str) -> list[int]:
    """Static trip indices whose ``column`` equals (or ends with) ``value``, memoised."""
    caches = tt.query_caches
    memo: dict[tuple[str, str, str], list[int]] = caches.setdefault("gtfs_rt.convention", {})
    key = (column, match, value)
    hits = memo.get(key)
    if hits is None:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()  # ids a producer sent once and never again; start over
        values = _column_values(tt, column)
        if match == "equals":
            hits = _equal_index(caches, column, values).get(value, [])
        else:
            hits = _suffix_hits(caches, column, values, value)
        memo[key] = hits
    return hits


def _column_values(tt: Timetable, column: str) -> tuple[str, ...]:
    if column == "route_id":
        return tuple(tt.route_ids[r] for r in tt.trip_route.tolist())
    if column in COLUMNS:
        return getattr(tt, COLUMNS[column] or column)
    extra = tt.trip_extra.get(column)
    if extra is None:
        raise MatchError(
            f"trips.txt column {column!r} is not kept: list it in keep_trip_columns of the "
            "gtfs source"
        )
    return extra


def _equal_index(
    caches: dict[Any, Any], column: str, values: tuple[str, ...]
) -> dict[str, list[int]]:
    index = caches.get(("gtfs_rt.convention.equal", column))
    if index is None:
        index = {}
        for trip, text in enumerate(values):
            index.setdefault(text, []).append(trip)
        caches[("gtfs_rt.convention.equal", column)] = index
    return index


def _suffix_hits(
    caches: dict[Any, Any], column: str, values: tuple[str, ...], suffix: str
) -> list[int]:
    # The values reversed and sorted: those ending with ``suffix`` are one contiguous range of
    # those starting with it reversed, found by two binary searches.
    ordered = caches.get(("gtfs_rt.convention.suffix", column))
    if ordered is None:
        pairs = sorted((text[::-1], trip) for trip, text in enumerate(values))
        ordered = ([p[0] for p in pairs], [p[1] for p in pairs])
        caches[("gtfs_rt.convention.suffix", column)] = ordered
    keys, trips = ordered
    prefix = suffix[::-1]
    start = bisect.bisect_left(keys, prefix)
    end = bisect.bisect_left(keys, prefix + "\U0010ffff")
    return sorted(trips[start:end])

"""Trip descriptors that do not name a static trip_id the way the spec's simple form does.

Three shapes real producers send, each resolved to one static run on one service day or
counted as unmatched — never guessed:

- **No trip_id** (spec: ``route_id`` + ``direction_id`` + ``start_time`` + ``start_date``; a big
  Nordic network publishes only that): the run of that route and direction that leaves its
  first stop at ``start_time`` on that service day. None → ``unmatched_descriptor``, several →
  ``ambiguous_descriptor``.
- **A start_date one day late** (a 24:35 run of Friday's service sent with Saturday's date):
  when the trip does not run on the date given but runs the day before and the update's own
  times fit that run, the day before is taken and counted as ``start_date_corrected``
  (``strict_start_date: true`` turns this off).
- **A producer's own form of the id** (New York's subway: ``036050_2..S07R``): see
  :mod:`.conventions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .locate import lookups
from .matching import MatchError, RunMatch, active_runs, run_span

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

    from .conventions import TripIdConvention

#: How far before a run's first departure, and after its last arrival, an update's own time
#: may lie for a late-dated descriptor to be read as that run (a run is rarely 30 min early;
#: it can be hours late).
FIT_BEFORE_S = 30 * 60
FIT_AFTER_S = 6 * 3600


class AmbiguousDescriptor(MatchError):
    """A descriptor that fits several runs: not matched, counted apart from the unmatched."""


@dataclass(frozen=True, slots=True)
class MatchRules:
    """Per-source options of the matching (from the gtfs_rt source's config)."""

    #: Take ``start_date`` as sent, never the day before (the spec's letter).
    strict_start_date: bool = False
    #: How this producer writes trip ids, when not as the static feed does.
    convention: TripIdConvention | None = None


DEFAULT_RULES = MatchRules()


def route_start_index(tt: Timetable) -> dict[tuple[int, int, int], tuple[int, ...]]:
    """(route index, direction_id or -1, first departure in seconds) → runs, memoised."""
    found = tt.query_caches.get("gtfs_rt.route_starts")
    if found is None:
        look = lookups(tt)
        groups: dict[tuple[int, int, int], list[int]] = {}
        for run, trip in enumerate(tt.run_trip.tolist()):
            if look.st_ptr[run] == look.st_ptr[run + 1]:
                continue  # a trip without stop times leaves nowhere
            key = (look.trip_route[trip], look.trip_direction[trip], run_span(tt, run)[0])
            groups.setdefault(key, []).append(run)
        found = {key: tuple(runs) for key, runs in groups.items()}
        tt.query_caches["gtfs_rt.route_starts"] = found
    return found


def resolve_route_start(
    tt: Timetable,
    route_id: str,
    direction_id: int | None,
    start_time: int | None,
    start_date: int | None,
    reference: Callable[[], float | None],
) -> RunMatch:
    """The one run a trip_id-less descriptor names; raises MatchError / AmbiguousDescriptor."""
    if not route_id or start_time is None:
        raise MatchError("a trip update without trip_id needs route_id and start_time")
    route = tt.route_index.get(route_id)
    if route is None:
        raise MatchError(f"unknown route_id {route_id!r}")
    index = route_start_index(tt)
    # A static feed without direction_id (-1) fits a descriptor that names one.
    directions = (direction_id, -1) if direction_id is not None else (0, 1, -1)
    runs = [r for d in directions for r in index.get((route, d, start_time), ())]
    if not runs:
        raise MatchError(f"no run of route {route_id!r} leaves at {_hms(start_time)}")
    found = active_runs(tt, runs, start_date, reference)
    if not found:
        raise MatchError(f"no run of route {route_id!r} at {_hms(start_time)} runs that day")
    if len(found) > 1:
        raise AmbiguousDescriptor(
            f"{len(found)} runs of route {route_id!r} leave at {_hms(start_time)}"
        )
    run, day = found[0]
    trip = int(tt.run_trip[run])
    return RunMatch(run, trip, day, tt.service_day_origin(lookups(tt).run_agency[run], day))


def day_before_fits(
    tt: Timetable, trip: int, start_date: int, reference: Callable[[], float | None]
) -> RunMatch | None:
    """The run of ``trip`` on the day before ``start_date`` when the update's times fit it.

    Only asked when the trip does not run on ``start_date``; None when it does not run the
    day before either, or when the update has no time to judge by, or its times do not fit.
    """
    look = lookups(tt)
    day = start_date - 1
    if not look.is_active(tt, look.trip_service[trip], day):
        return None
    when = reference()
    if when is None:
        return None
    for run in tt.runs_of_trip(trip):
        agency = look.run_agency[run]
        origin = tt.service_day_origin(agency, day)
        first, last = run_span(tt, run)
        if origin + first - FIT_BEFORE_S <= when <= origin + last + FIT_AFTER_S:
            return RunMatch(run, trip, day, origin)
    return None


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

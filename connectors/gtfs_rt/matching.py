"""Resolve a GTFS-RT TripDescriptor to a static *run* on a *service day*.

A trip_id alone is not enough: the same trip runs every day it is active, and a trip in
frequencies.txt runs many times a day. The spec's key is trip_id + start_date (+ start_time for
frequency trips). start_date is the *service* day, so a 25:10 trip started yesterday carries
yesterday's date (google/transit#381). When start_date is absent (BART, most vehicle feeds),
we pick the active service day on which the run is closest to a reference instant — the
update's own predicted times, else its timestamp — which finds yesterday's after-midnight
trips that OTP (today only) and maglev (query day only) missed.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .locate import lookups

if TYPE_CHECKING:
    from connectors.gtfs import Timetable


class MatchError(ValueError):
    """A descriptor that names no static run (the message is the reason)."""


class RunMatch(NamedTuple):
    """A static run on a service day, with that day's clock origin.

    A named tuple rather than a frozen dataclass: one is made per trip update, and a tuple
    is built several times faster.
    """

    run: int
    trip: int
    ordinal: int
    #: POSIX time of the service day's "noon minus 12 h" in the run's agency zone.
    origin: float

    @property
    def service_date(self) -> dt.date:
        """The service day as a date."""
        return dt.date.fromordinal(self.ordinal)


@functools.lru_cache(maxsize=256)
def parse_start_date(text: str) -> int | None:
    """``YYYYMMDD`` → date ordinal; empty → None; garbage raises ``ValueError``.

    Cached: a feed names one or two service days for thousands of trips.
    """
    if not text:
        return None
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"bad start_date {text!r}")
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:])).toordinal()


def parse_start_time(text: str) -> int | None:
    """``HH:MM:SS`` (hours may exceed 24) → seconds; empty → None; garbage raises."""
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"bad start_time {text!r}")
    h, m, s = (int(p) for p in parts)
    if m > 59 or s > 59:
        raise ValueError(f"bad start_time {text!r}")
    return h * 3600 + m * 60 + s


def run_span(tt: Timetable, run: int) -> tuple[int, int]:
    """(first departure, last arrival) of a run, in seconds after its service-day origin."""
    a, b = int(tt.st_ptr[run]), int(tt.st_ptr[run + 1])
    return int(tt.st_dep[a]), int(tt.st_arr[b - 1])


def _runs_for_start_time(tt: Timetable, runs: list[int], start_s: int | None) -> list[int]:
    """Narrow a trip's runs with start_time (only meaningful for frequency-based trips)."""
    if start_s is None or len(runs) == 1:
        # A plain trip's start_time is informative only; a mismatch is not a reason to drop it.
        return runs
    exact = [r for r in runs if int(tt.run_start[r]) == start_s]
    if exact:
        return exact
    # exact_times=0: the real start may be anywhere within the headway after the nominal one.
    within = [
        r
        for r in runs
        if tt.run_exact[r] == 0
        and int(tt.run_start[r]) <= start_s < int(tt.run_start[r]) + int(tt.run_headway[r])
    ]
    if within:
        return within[:1]
    raise MatchError(f"no run starting at {start_s // 3600:02d}:{start_s // 60 % 60:02d}")


def resolve_run(
    tt: Timetable,
    trip: int,
    start_date: int | None,
    start_time: int | None,
    reference: float | Callable[[], float | None] | None,
) -> RunMatch:
    """The run of static trip index ``trip`` that the descriptor means; raises MatchError.

    ``start_date`` is a date ordinal (service day) and ``start_time`` seconds, both optional;
    ``reference`` (POSIX) chooses among the remaining candidates. It may be a function: it is
    then called only when needed (most descriptors name one run on one day, and computing
    the reference reads the update's stop times).
    """
    look = lookups(tt)  # Python tuples and memos: this runs for every trip update of a feed
    runs = tt.runs_of_trip(trip)
    if start_time is not None:
        runs = _runs_for_start_time(tt, runs, start_time)
    if not runs:
        raise MatchError("trip has no stop times")
    service = look.trip_service[trip]
    agency = look.run_agency[runs[0]]
    if start_date is not None:
        if not look.is_active(tt, service, start_date):
            raise MatchError(f"trip does not run on {dt.date.fromordinal(start_date)}")
        days = [start_date]
    else:
        if callable(reference):
            reference = reference()
        if reference is None:
            raise MatchError("no start_date and no timestamp to infer the service day")
        local = dt.datetime.fromtimestamp(reference, tt.zones[agency]).date().toordinal()
        # Runs of day D reach D + time_max, so D can lie a few days back (48:00+ feeds).
        back = math.ceil(tt.time_max / 86400) + 1
        days = [d for d in range(local - back, local + 2) if look.is_active(tt, service, d)]
        if not days:
            raise MatchError("trip does not run around the feed time")
    if len(days) == 1 and len(runs) == 1:
        return RunMatch(runs[0], trip, days[0], tt.service_day_origin(agency, days[0]))
    if callable(reference):
        reference = reference()
    best: tuple[float, int, int] | None = None
    for day in days:
        origin = tt.service_day_origin(agency, day)
        for run in runs:
            first, last = run_span(tt, run)
            if reference is None:
                distance = 0.0
            else:
                # 0 while the run is under way, else how far before/after it the reference is.
                distance = max(origin + first - reference, reference - (origin + last), 0.0)
            if best is None or distance < best[0]:
                best = (distance, run, day)
    assert best is not None
    _, run, day = best
    return RunMatch(run, trip, day, tt.service_day_origin(agency, day))


def active_runs(
    tt: Timetable,
    runs: list[int],
    start_date: int | None,
    reference: Callable[[], float | None],
) -> list[tuple[int, int]]:
    """The (run, service day) pairs among ``runs`` that run: on ``start_date``, or without one
    on any service day still under way at the reference instant; raises MatchError when
    there is neither a date nor a reference. ``runs`` must not be empty."""
    look = lookups(tt)
    if start_date is not None:
        days = [start_date]
    else:
        when = reference()
        if when is None:
            raise MatchError("no start_date and no timestamp to infer the service day")
        agency = look.run_agency[runs[0]]
        local = dt.datetime.fromtimestamp(when, tt.zones[agency]).date().toordinal()
        back = math.ceil(tt.time_max / 86400)
        days = list(range(local - back, local + 1))
    return [
        (run, day)
        for day in days
        for run in runs
        if look.is_active(tt, look.trip_service[int(tt.run_trip[run])], day)
    ]


def resolve_dated(tt: Timetable, trips: list[int], ordinals: list[int]) -> list[RunMatch | None]:
    """:func:`resolve_run` for many descriptors at once, where the answer needs no reference.

    ``trips``: static trip indices, ``ordinals``: start dates, -1 where absent. A descriptor
    naming a trip with a single run and a start date on which it runs names that run on that
    day, whatever its start_time (one run: start_time is informative only): that is what
    resolve_run answers, and this answers it with numpy for a whole feed. Every other
    descriptor gets None, and resolve_run decides (or raises) as usual.
    """
    look = lookups(tt)
    trip = np.asarray(trips, dtype=np.int64)
    day = np.asarray(ordinals, dtype=np.int64)
    known = (trip >= 0) & (day >= 0)
    trip = np.where(known, trip, 0)
    run = np.where(known, look.single_run[trip], -1)
    offset = day - tt.day0
    in_range = (offset >= 0) & (offset < tt.service_active.shape[1])
    service = np.asarray(tt.trip_service, dtype=np.int64)[trip]
    active = in_range & tt.service_active[service, np.where(in_range, offset, 0)]
    hit = np.flatnonzero((run >= 0) & active)
    out: list[RunMatch | None] = [None] * len(trips)
    agencies = np.asarray(tt.run_agency, dtype=np.int64)[run[hit]].tolist()
    origin = tt.service_day_origin  # memoised per (agency, day)
    for i, r, t, d, a in zip(
        hit.tolist(),
        run[hit].tolist(),
        trip[hit].tolist(),
        day[hit].tolist(),
        agencies,
        strict=True,
    ):
        out[i] = RunMatch(r, t, d, origin(a, d))
    return out

"""resolve_dated (descriptors resolved for a whole feed at once) against resolve_run."""

from __future__ import annotations

import datetime as dt

from rtfeeds import DAY

from connectors.gtfs_rt.matching import MatchError, resolve_dated, resolve_run


def test_resolve_dated_answers_as_resolve_run_or_leaves_it_to_it(tt) -> None:
    trips, ordinals = [], []
    for trip in [*range(len(tt.trip_ids)), -1]:
        for offset in [*range(-400, 400, 37), -3, -1, 0, 1, 2, 6]:
            trips.append(trip)
            ordinals.append((DAY + dt.timedelta(days=offset)).toordinal())
        trips.append(trip)
        ordinals.append(-1)  # no start_date: always left to resolve_run
    found = resolve_dated(tt, trips, ordinals)
    answered = 0
    for trip, ordinal, match in zip(trips, ordinals, found, strict=True):
        if match is None:
            continue
        answered += 1
        assert trip >= 0 and ordinal >= 0
        for start_time in (None, 0, 8 * 3600):  # one run: start_time is informative only
            try:
                expected = resolve_run(tt, trip, ordinal, start_time, None)
            except MatchError:
                raise AssertionError((trip, ordinal, start_time)) from None
            assert match == expected
    assert answered > 10
    # Where resolve_run needs more than the trip and date (several runs, a day the trip does
    # not run), the bulk answer is None: nothing is decided twice.
    frequency = [t for t in range(len(tt.trip_ids)) if len(tt.runs_of_trip(t)) > 1]
    assert frequency
    assert resolve_dated(tt, frequency, [DAY.toordinal()] * len(frequency)) == [None] * len(
        frequency
    )

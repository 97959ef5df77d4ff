"""The per-call implementation of the trip-update rules the engine had before it was
vectorised (connectors/gtfs_rt/trips.py), kept verbatim as an oracle: the fast engine must
give exactly the same calls on arbitrary updates (test_rt_apply_equivalence.py)."""

from __future__ import annotations

from google.transit import gtfs_realtime_pb2 as pb

from connectors.gtfs import Timetable
from connectors.gtfs_rt.counters import FeedCounters
from connectors.gtfs_rt.model import RealtimeCall
from connectors.gtfs_rt.trips import Event, Scheduled, read_event

_STU = pb.TripUpdate.StopTimeUpdate


def _locate(
    tt: Timetable, schedule: list[Scheduled], updates: list[_STU], counters: FeedCounters
) -> dict[int, _STU]:
    """Call position → its StopTimeUpdate (sequence first, stop_id as fallback)."""
    by_seq = {seq: i for i, (seq, *_rest) in enumerate(schedule)}
    found: dict[int, _STU] = {}
    cursor = 0
    for u in updates:
        stop = tt.stop_index.get(u.stop_id) if u.stop_id else None
        pos = by_seq.get(u.stop_sequence) if u.HasField("stop_sequence") else None
        if pos is not None and stop is not None and schedule[pos][1] != stop:
            # Sequence and stop disagree: believe the stop if the trip calls there.
            by_stop = _find_stop(schedule, stop, cursor)
            pos = by_stop if by_stop is not None else pos
        elif pos is None and stop is not None:
            pos = _find_stop(schedule, stop, cursor)
        if pos is None:
            counters.unmatched_stop_updates += 1
            continue
        found[pos] = u
        cursor = pos + 1
    return found


def _find_stop(schedule: list[Scheduled], stop: int, cursor: int) -> int | None:
    """First call at ``stop`` from ``cursor`` on, else anywhere in the trip."""
    for start in (cursor, 0):
        for i in range(start, len(schedule)):
            if schedule[i][1] == stop:
                return i
    return None


def apply_updates(
    tt: Timetable,
    schedule: list[Scheduled],
    tu: pb.TripUpdate,
    counters: FeedCounters,
) -> tuple[RealtimeCall, ...]:
    """The calls of a scheduled (or duplicated) trip with the updates applied."""
    located = _locate(tt, schedule, list(tu.stop_time_update), counters)
    # The (experimental) trip-level delay applies wherever no stop says otherwise.
    delay: int | None = tu.delay if tu.HasField("delay") else None
    no_data = False
    calls: list[RealtimeCall] = []
    for pos, (seq, stop, sched_arr, sched_dep) in enumerate(schedule):
        stop_id = tt.stop_ids[stop]
        u = located.get(pos)
        if u is not None and u.schedule_relationship == _STU.SKIPPED:
            counters.skipped_stops += 1
            calls.append(
                RealtimeCall(
                    seq,
                    stop_id,
                    stop,
                    sched_arr,
                    sched_dep,
                    None,
                    None,
                    None,
                    None,
                    "skipped",
                    explicit=True,
                )
            )
            continue
        if u is not None and u.schedule_relationship == _STU.NO_DATA:
            delay, no_data = None, True
            calls.append(_plain(seq, stop_id, stop, sched_arr, sched_dep, "no_data"))
            continue
        arr = read_event(u, "arrival") if u is not None else None
        dep = read_event(u, "departure") if u is not None else None
        if arr is None and dep is None:
            if no_data:
                calls.append(_plain(seq, stop_id, stop, sched_arr, sched_dep, "no_data"))
            elif delay is None:
                calls.append(_plain(seq, stop_id, stop, sched_arr, sched_dep, "scheduled"))
            else:
                calls.append(
                    RealtimeCall(
                        seq,
                        stop_id,
                        stop,
                        sched_arr,
                        sched_dep,
                        sched_arr + delay,
                        sched_dep + delay,
                        delay,
                        delay,
                        "updated",
                    )
                )
            continue
        no_data = False
        arr_delay = _delay(arr, sched_arr)
        dep_delay = _delay(dep, sched_dep)
        if dep_delay is None:
            assert arr_delay is not None
            dep_delay = arr_delay  # arriving late means leaving late
        expected_dep = sched_dep + dep_delay
        if arr_delay is None:
            # The vehicle cannot arrive after it leaves: an older propagated delay is capped.
            carried = delay if delay is not None else dep_delay
            expected_arr = min(sched_arr + carried, expected_dep)
            arr_delay = expected_arr - sched_arr
        else:
            expected_arr = sched_arr + arr_delay
        if expected_dep < expected_arr:
            # Inconsistent explicit times: the departure cannot precede the arrival.
            expected_dep = expected_arr
            dep_delay = expected_dep - sched_dep
        uncertainty = (dep.uncertainty if dep else None) or (arr.uncertainty if arr else None)
        calls.append(
            RealtimeCall(
                seq,
                stop_id,
                stop,
                sched_arr,
                sched_dep,
                expected_arr,
                expected_dep,
                arr_delay,
                dep_delay,
                "updated",
                uncertainty,
                explicit=True,
            )
        )
        delay = dep_delay
    return tuple(calls)


def _delay(event: Event | None, scheduled: int) -> int | None:
    if event is None:
        return None
    return event.time - scheduled if event.time is not None else event.delay


def _plain(seq: int, stop_id: str, stop: int, arr: int, dep: int, status: str) -> RealtimeCall:
    return RealtimeCall(seq, stop_id, stop, arr, dep, None, None, None, None, status)  # type: ignore[arg-type]

"""Apply the StopTimeUpdates of many scheduled trips at once → one :class:`CallBlock`.

The rules are those of :mod:`.trips` (its docstring). Split out of it because this is the
hot part of the apply: numpy over every call of every trip, Python once per trip at most.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from google.transit import gtfs_realtime_pb2 as pb

from .decode import _MS_THRESHOLD
from .locate import Placed, lookups, place
from .model import (
    CANCELLED,
    COL_ARR_DELAY,
    COL_DEP_DELAY,
    COL_EXP_ARR,
    COL_EXP_DEP,
    COL_EXPLICIT,
    COL_SCHED_ARR,
    COL_SCHED_DEP,
    COL_SEQ,
    COL_STATUS,
    COL_STOP,
    COL_UNCERTAINTY,
    NO_DATA,
    NONE,
    SCHEDULED,
    SKIPPED,
    UPDATED,
    BlockCalls,
    CallBlock,
)
from .wire import WireRef, WireUpdates
from .wireheads import TripHead

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

    from .counters import FeedCounters

_STU = pb.TripUpdate.StopTimeUpdate
_SKIPPED = _STU.SKIPPED
_NO_DATA = _STU.NO_DATA

_U_FIELDS = 6


class CallBlockBuilder:
    """Applies the StopTimeUpdates of many scheduled trips at once.

    The rules of the module docstring, split in two so that Python touches each
    StopTimeUpdate once and never the calls it does not mention:

    - :meth:`add` (per trip, in Python): queue the trip; when its updates were decoded from
      the bytes (:mod:`.wire`) they are located later, all trips at once (:mod:`.locate`),
      else each update is located and read here through the protobuf accessors;
    - :meth:`finish` (whole feed, numpy): schedule times, delays from times, the arrival/
      departure consistency fixes, and propagation, done as a forward fill of "carry" states
      (the delay an update hands to the calls after it) over every call of every trip.

    Propagation has one sequential dependency: an update without arrival caps its arrival
    with the delay carried from before. That carried delay is the forward fill's value at
    the update's own position, so it is vectorised too.
    """

    def __init__(self, tt: Timetable) -> None:
        self.tt = tt
        self.size = 0
        # Per trip (only trips with calls).
        self._t_row = array("q")  # first st_* row of the run
        self._t_lo = array("q")  # first row in the block
        self._t_len = array("q")
        self._t_base = array("q")  # POSIX of the run's time 0 (service-day origin + shift)
        self._t_status = array("q")  # carry before the first update: scheduled/updated/...
        self._t_delay = array("q")
        # Per update with events, _U_FIELDS ints in one flat list (one extend per update is
        # the cheapest way to keep them): block row, arrival time and delay, departure time and
        # delay as sent (NONE when absent or unusable), uncertainty (NONE unless > 0).
        self._u: list[int] = []
        self._skipped: list[int] = []  # block rows of SKIPPED updates
        self._no_data: list[int] = []  # block rows of NO_DATA updates
        self._views: list[BlockCalls] = []
        # Trips whose updates come decoded: (updates, block row, st row, calls, first and
        # end update row, counters), located in finish().
        self._pending: list[tuple[WireUpdates, int, int, int, int, int, FeedCounters]] = []
        self._lookups = lookups(tt)
        self.block: CallBlock | None = None

    def add(
        self,
        run: int,
        base: int,
        tu: pb.TripUpdate,
        counters: FeedCounters,
        *,
        cancelled: bool = False,
        wire: WireRef | None = None,
        head: TripHead | None = None,
    ) -> BlockCalls:
        """Queue a run's calls, with ``tu``'s updates unless ``cancelled``; filled by finish.

        ``wire``: the same updates decoded from the bytes, used unless :mod:`.wire` could not
        decode that entity exactly (then the accessors read ``tu``). ``head``: ``tu``'s
        trip-level fields if the caller has them already.
        """
        st_ptr = self._lookups.st_ptr
        a, b = st_ptr[run], st_ptr[run + 1]
        n = b - a
        lo = self.size
        view = BlockCalls(None, lo, lo + n)
        self._views.append(view)
        if n == 0:
            return view
        self.size = lo + n
        self._t_row.append(a)
        self._t_lo.append(lo)
        self._t_len.append(n)
        self._t_base.append(base)
        if cancelled:
            self._t_status.append(CANCELLED)
            self._t_delay.append(NONE)
            return view
        # The (experimental) trip-level delay applies wherever no stop says otherwise.
        if head is None and wire is not None:
            head = wire[0].head(wire[1])
        delay = head.delay if head is not None else tu.delay if tu.HasField("delay") else None
        if delay is not None:
            self._t_status.append(UPDATED)
            self._t_delay.append(delay)
        else:
            self._t_status.append(SCHEDULED)
            self._t_delay.append(NONE)
        updates = tu.stop_time_update
        if wire is not None:
            w, i = wire
            s0, s1 = w.first[i], w.first[i + 1]
            # The count check guards the alignment of the lite parse with the full one.
            if self._lookups.seq_ok[run] and w.usable(i, len(updates)):
                if s1 > s0:
                    self._pending.append((w, lo, a, n, s0, s1, counters))
                return view
        if not updates:
            return view
        marks = len(self._u), len(self._skipped), len(self._no_data)
        try:
            self._add_updates(lo, a, b, updates, counters)
        except Exception:
            # A hostile entity fails part-way (the caller counts it): leave no rows behind.
            del self._u[marks[0] :], self._skipped[marks[1] :], self._no_data[marks[2] :]
            self.size = lo
            for column in (self._t_row, self._t_lo, self._t_len, self._t_base):
                column.pop()
            self._t_status.pop()
            self._t_delay.pop()
            self._views.pop()
            raise
        return view

    def _add_updates(
        self, lo: int, a: int, b: int, updates: Iterable[_STU], counters: FeedCounters
    ) -> None:
        located = self._locate(a, b, updates, counters)
        skipped = 0
        push = self._u.extend
        for pos in sorted(located):
            u = located[pos]
            rel = u.schedule_relationship
            if rel == _SKIPPED:
                skipped += 1
                self._skipped.append(lo + pos)
                continue
            if rel == _NO_DATA:
                self._no_data.append(lo + pos)
                continue
            at, ad, au = _raw_event(u.arrival)
            dt_, dd, du = _raw_event(u.departure)
            if at == NONE and ad == NONE and dt_ == NONE and dd == NONE:
                continue  # nothing usable: the call is treated as if it had no update
            push((lo + pos, at, ad, dt_, dd, du if du != NONE else au))
        counters.skipped_stops += skipped

    def _locate(
        self, a: int, b: int, updates: Iterable[_STU], counters: FeedCounters
    ) -> dict[int, _STU]:
        """Call position → its StopTimeUpdate (sequence first, stop_id as fallback)."""
        tt = self.tt
        seqs: list[int] = tt.st_seq[a:b].tolist()
        stops: list[int] = tt.st_stop[a:b].tolist()
        n = b - a
        stop_index = tt.stop_index
        found: dict[int, _STU] = {}
        cursor = 0
        unmatched = 0
        for u in updates:
            stop_id = u.stop_id
            stop = stop_index.get(stop_id) if stop_id else None
            seq = u.stop_sequence
            pos: int | None = None
            # stop_sequence 0 is legal: only then is presence worth a HasField call.
            if seq != 0 or u.HasField("stop_sequence"):
                i = bisect_left(seqs, seq)
                if i < n and seqs[i] == seq:
                    pos = i
            if pos is not None and stop is not None and stops[pos] != stop:
                # Sequence and stop disagree: believe the stop if the trip calls there.
                by_stop = _find_stop(stops, stop, cursor)
                pos = by_stop if by_stop is not None else pos
            elif pos is None and stop is not None:
                pos = _find_stop(stops, stop, cursor)
            if pos is None:
                unmatched += 1
                continue
            found[pos] = u
            cursor = pos + 1
        counters.unmatched_stop_updates += unmatched
        return found

    def finish(self) -> CallBlock:
        """Compute every queued call and attach the block to the views handed out."""
        tt = self.tt
        n = self.size
        t_lo = _arr(self._t_lo)
        t_len = _arr(self._t_len)
        # Block row → st_* row, and each call's time origin.
        rows = np.arange(n, dtype=np.int64) + np.repeat(_arr(self._t_row) - t_lo, t_len)
        base = np.repeat(_arr(self._t_base), t_len)
        # Column-major: every step below fills or reads whole columns, and a column of a
        # row-major table is 11 words apart (each pass would sweep the whole table).
        table = np.empty((11, n), dtype=np.int64).T
        table[:, COL_SEQ] = tt.st_seq[rows]
        table[:, COL_STOP] = tt.st_stop[rows]
        sched_arr = table[:, COL_SCHED_ARR]
        sched_dep = table[:, COL_SCHED_DEP]
        np.add(base, tt.st_arr[rows], out=sched_arr)
        np.add(base, tt.st_dep[rows], out=sched_dep)

        events = [np.array(self._u, dtype=np.int64).reshape(-1, _U_FIELDS)]
        no_data = [np.array(self._no_data, dtype=np.int64)]
        skipped = [np.array(self._skipped, dtype=np.int64)]
        for placed in self._place_pending():
            events.append(placed.events)
            no_data.append(placed.no_data)
            skipped.append(placed.skipped)
        e = np.concatenate(events)
        e_pos = e[:, 0]
        sa, sd = sched_arr[e_pos], sched_dep[e_pos]
        arr_own = _own_delay(e[:, 1], e[:, 2], sa)
        dep_own = _own_delay(e[:, 3], e[:, 4], sd)
        has_arr = arr_own != NONE
        # Arriving late means leaving late: no departure → the arrival's delay.
        dep_delay = np.where(dep_own != NONE, dep_own, arr_own)
        exp_dep = sd + dep_delay
        given_arr = np.where(has_arr, sa + np.where(has_arr, arr_own, 0), NONE)
        # Inconsistent explicit times: the departure cannot precede the arrival.
        fix = has_arr & (exp_dep < given_arr)
        exp_dep = np.where(fix, given_arr, exp_dep)
        dep_delay = np.where(fix, given_arr - sd, dep_delay)

        # Carry states: what the calls after a change get. Trip start: its initial state;
        # an update with events: "updated" with its departure delay, from the next call on
        # (not past its trip's end); NO_DATA: "no_data" from its own call on. At a shared
        # row the later rule wins (a NO_DATA right after an update).
        nd_pos = np.concatenate(no_data)
        after = e_pos + 1
        # The end of each update's trip: the next trip's first row (or the block's end).
        trip_end = np.append(t_lo[1:], n)[np.searchsorted(t_lo, e_pos, side="right") - 1]
        inside = after < trip_end
        # Each rule writes its rows in turn, so at a shared row the later rule wins; the rows
        # written are the change points (a scatter, not a sort of every carry state).
        n_inside = int(inside.sum())
        k0, k1 = len(t_lo), len(t_lo) + n_inside
        source = np.full(n, -1, dtype=np.int64)
        source[t_lo] = np.arange(k0, dtype=np.int64)
        source[after[inside]] = np.arange(k0, k1, dtype=np.int64)
        source[nd_pos] = np.arange(k1, k1 + len(nd_pos), dtype=np.int64)
        c_row = np.flatnonzero(source >= 0)
        pick = source[c_row]
        c_status = np.concatenate(
            (
                _arr(self._t_status),
                np.full(n_inside, UPDATED, np.int64),
                np.full(len(nd_pos), NO_DATA, np.int64),
            )
        )[pick]
        c_delay = np.concatenate(
            (_arr(self._t_delay), dep_delay[inside], np.full(len(nd_pos), NONE, np.int64))
        )[pick]
        carry = np.zeros(n, dtype=np.int64)
        carry[c_row] = np.arange(len(c_row), dtype=np.int64)
        np.maximum.accumulate(carry, out=carry)

        delay = c_delay[carry]
        has = delay != NONE
        safe = np.where(has, delay, 0)
        table[:, COL_EXP_ARR] = np.where(has, sched_arr + safe, NONE)
        table[:, COL_EXP_DEP] = np.where(has, sched_dep + safe, NONE)
        table[:, COL_ARR_DELAY] = delay
        table[:, COL_DEP_DELAY] = delay
        table[:, COL_STATUS] = c_status[carry]
        table[:, COL_UNCERTAINTY] = NONE
        table[:, COL_EXPLICIT] = 0

        # Calls with their own update. No arrival: the delay carried from before is kept,
        # but the vehicle cannot arrive after it leaves (a stale carried delay is capped).
        carried = delay[e_pos]
        carried = np.where(carried != NONE, carried, dep_delay)
        exp_arr = np.where(has_arr, given_arr, np.minimum(sa + carried, exp_dep))
        table[e_pos, COL_EXP_ARR] = exp_arr
        table[e_pos, COL_EXP_DEP] = exp_dep
        table[e_pos, COL_ARR_DELAY] = exp_arr - sa
        table[e_pos, COL_DEP_DELAY] = dep_delay
        table[e_pos, COL_STATUS] = UPDATED
        table[e_pos, COL_UNCERTAINTY] = e[:, 5]
        table[e_pos, COL_EXPLICIT] = 1
        s_pos = np.concatenate(skipped)
        table[s_pos, COL_EXP_ARR : COL_DEP_DELAY + 1] = NONE
        table[s_pos, COL_STATUS] = SKIPPED
        table[s_pos, COL_EXPLICIT] = 1

        block = self.block = CallBlock(table, tt.stop_ids)
        for view in self._views:
            view.block = block
        return block

    def _place_pending(self) -> list[Placed]:
        """Locate the decoded updates of the queued trips, one batch per message."""
        batches: dict[int, list[tuple[WireUpdates, int, int, int, int, int, FeedCounters]]] = {}
        for item in self._pending:
            batches.setdefault(id(item[0]), []).append(item)
        out = []
        for items in batches.values():
            w = items[0][0]
            lo, a, n, s0, s1 = (
                np.array(column, dtype=np.int64) for column in list(zip(*items, strict=True))[1:6]
            )
            placed = place(self.tt, w, lo, a, n, s0, s1)
            for j in np.flatnonzero(placed.skipped_count | placed.unmatched_count).tolist():
                counters = items[j][6]
                counters.skipped_stops += int(placed.skipped_count[j])
                counters.unmatched_stop_updates += int(placed.unmatched_count[j])
            out.append(placed)
        return out


def _arr(values: array) -> np.ndarray:
    return np.frombuffer(values, dtype=np.int64) if len(values) else np.empty(0, np.int64)


def _own_delay(time: np.ndarray, delay: np.ndarray, scheduled: np.ndarray) -> np.ndarray:
    """An event's delay: ``time`` wins (milliseconds scaled down) over ``delay``."""
    has_time = time != NONE
    seconds = np.where(time > _MS_THRESHOLD, time // 1000, time)
    return np.where(has_time, seconds - scheduled, delay)


def _raw_event(ev: pb.TripUpdate.StopTimeEvent) -> tuple[int, int, int]:
    """(time, delay, uncertainty) of an event, NONE for absent or unusable values.

    Same rules as :func:`read_event`, with as few protobuf accessor calls as possible (they
    dominate the apply): an absent event reads as zeros, so presence is asked only for 0s.
    """
    time = ev.time
    if time > 0:
        unc = ev.uncertainty
        return time, NONE, unc if unc > 0 else NONE
    delay = ev.delay
    if delay == 0 and (ev.HasField("time") or not ev.HasField("delay")):
        # time: 0 with delay: 0 is a producer filling defaults (Turin GTT), not "on time".
        return NONE, NONE, NONE
    unc = ev.uncertainty
    return NONE, delay, unc if unc > 0 else NONE


def _find_stop(stops: list[int], stop: int, cursor: int) -> int | None:
    """First call at ``stop`` from ``cursor`` on, else anywhere in the trip."""
    try:
        return stops.index(stop, cursor)
    except ValueError:
        pass
    try:
        return stops.index(stop)
    except ValueError:
        return None

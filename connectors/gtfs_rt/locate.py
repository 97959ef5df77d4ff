"""Place decoded StopTimeUpdates (:mod:`.wire`) on their runs' calls, for many trips at once.

The same rules as ``CallBlockBuilder._locate`` / ``_add_updates`` (the reference, which the
equivalence tests compare this with), in numpy:

- stop_sequence first: a binary search of ``trip << 32 | stop_sequence`` over the calls of
  every queued trip (sequences never decrease along a run; runs where they do are not sent
  here), kept when the update's stop_id is absent or agrees;
- otherwise stop_id, searching forward from the call after the trip's previous match. Only a
  stop the trip visits twice or more makes that search depend on the previous match, so only
  those updates go through a short Python loop, in update order;
- an update located where an earlier one was replaces it (the reference keeps a dict).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .model import NONE
from .wire import ID_BYTES, IdKeys, WireUpdates, id_keys

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

_UNMATCHED = -1
_PENDING = -2
_SKIPPED = 1  # StopTimeUpdate.ScheduleRelationship
_NO_DATA = 2


class _BytesIndex(dict[bytes, int]):
    """stop_id as UTF-8 bytes → stop index; -1 for anything else."""

    def __missing__(self, key: bytes) -> int:
        return -1


#: Entries each memo of :class:`TimetableLookups` keeps before starting over.
MEMO_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class TimetableLookups:
    """Per-timetable helpers of the apply, built once (kept in ``tt.query_caches``)."""

    #: ``st_ptr`` as Python ints (numpy scalars cost a conversion per trip).
    st_ptr: tuple[int, ...]
    #: Per run: stop_sequence never decreases and fits 32 bits (the binary search is exact).
    seq_ok: tuple[bool, ...]
    stop_index: _BytesIndex
    #: The stop ids as :class:`IdKeys` sorted by hash, and their stop indices (None when two
    #: hashes collide: then every id goes through ``stop_index``).
    stop_keys: IdKeys | None
    stop_of_key: np.ndarray
    #: Per trip / run, as Python ints (read once per trip update).
    trip_service: tuple[int, ...]
    trip_route: tuple[int, ...]
    trip_direction: tuple[int, ...]
    run_agency: tuple[int, ...]
    #: Per trip: its run when it has exactly one (most trips), else -1.
    single_run: np.ndarray
    #: (service, date ordinal) → whether it runs, filled as asked.
    active: dict[tuple[int, int], bool]
    #: Date ordinal → date, filled as asked (a feed names one or two service days).
    dates: dict[int, dt.date]

    def is_active(self, tt: Timetable, service: int, ordinal: int) -> bool:
        """``tt.is_active`` for a date ordinal, memoised."""
        key = (service, ordinal)
        found = self.active.get(key)
        if found is None:
            if len(self.active) >= MEMO_LIMIT:
                # Keyed by dates an upstream sends: a hostile feed could name a new one in every
                # entity of every poll for as long as the timetable lives. Start over instead.
                self.active.clear()
            found = self.active[key] = tt.is_active(service, self.date(ordinal))
        return found

    def date(self, ordinal: int) -> dt.date:
        """``date.fromordinal``, memoised."""
        found = self.dates.get(ordinal)
        if found is None:
            if len(self.dates) >= MEMO_LIMIT:
                self.dates.clear()  # as above
            found = self.dates[ordinal] = dt.date.fromordinal(ordinal)
        return found


def lookups(tt: Timetable) -> TimetableLookups:
    """The :class:`TimetableLookups` of ``tt``."""
    found: TimetableLookups | None = tt.query_caches.get("gtfs_rt.lookups")
    if found is None:
        ptr = np.asarray(tt.st_ptr, dtype=np.int64)
        seq = np.asarray(tt.st_seq, dtype=np.int64)
        step_down = np.zeros(len(seq), dtype=bool)
        step_down[1:] = seq[1:] < seq[:-1]
        step_down[ptr[:-1][ptr[:-1] < len(seq)]] = False  # a new run may start lower
        out_of_range = (seq < 0) | (seq > 0xFFFFFFFF)
        broken = np.concatenate(([0], np.cumsum(step_down | out_of_range)))
        seq_ok = broken[ptr[1:]] == broken[ptr[:-1]]
        index = _BytesIndex()
        for stop_id, i in tt.stop_index.items():
            try:
                key = stop_id.encode("utf-8")
            except UnicodeEncodeError:
                continue  # no valid UTF-8 can name it
            if key:  # an empty stop_id is "absent"
                index[key] = i
        keys, stops = _stop_keys(index)
        # Tuples, not lists: they live as long as the timetable, and the cyclic collector
        # stops tracking a tuple of ints once it has seen it (a list it reads in full, item
        # by item, at every full collection).
        found = TimetableLookups(
            tuple(ptr.tolist()),
            tuple(seq_ok.tolist()),
            index,
            keys,
            stops,
            tuple(np.asarray(tt.trip_service).tolist()),
            tuple(np.asarray(tt.trip_route).tolist()),
            tuple(np.asarray(tt.trip_direction).tolist()),
            tuple(np.asarray(tt.run_agency).tolist()),
            tt.only_run_of_trips(),
            {},
            {},
        )
        tt.query_caches["gtfs_rt.lookups"] = found
    return found


@dataclass(frozen=True, slots=True)
class Placed:
    """The located updates of a batch of trips, in block rows."""

    #: One row per update with events: block row, arrival time and delay, departure time and
    #: delay, uncertainty (``CallBlockBuilder._u`` layout).
    events: np.ndarray
    skipped: np.ndarray
    no_data: np.ndarray
    #: Per trip of the batch: SKIPPED updates applied, updates that fit no call.
    skipped_count: np.ndarray
    unmatched_count: np.ndarray


def place(
    tt: Timetable,
    w: WireUpdates,
    lo: np.ndarray,
    a: np.ndarray,
    n: np.ndarray,
    s0: np.ndarray,
    s1: np.ndarray,
) -> Placed:
    """Locate the wire rows ``s0[j]:s1[j]`` of trip ``j`` on its calls (st rows ``a[j]`` +
    ``n[j]``, block rows from ``lo[j]``) and sort out what each located update says."""
    n_trips = len(lo)
    counts = s1 - s0
    total = int(counts.sum())
    if not total or not int(n.sum()):
        empty = np.empty(0, dtype=np.int64)
        nothing = np.zeros(n_trips, dtype=np.int64)
        return Placed(np.empty((0, 6), np.int64), empty, empty, nothing, counts.copy())
    trip = np.repeat(np.arange(n_trips, dtype=np.int64), counts)
    rows = np.arange(total, dtype=np.int64) + np.repeat(s0 - (np.cumsum(counts) - counts), counts)
    stop = _stop_indices(tt, w, rows)

    # The queued calls, trip after trip: a sorted key when every run's sequence is sorted.
    call0 = np.cumsum(n) - n
    n_calls = int(n.sum())
    calls = np.arange(n_calls, dtype=np.int64) + np.repeat(a - call0, n)
    call_key = (np.repeat(np.arange(n_trips, dtype=np.int64), n) << 32) | tt.st_seq[calls]
    key = (trip << 32) | w.seq[rows]
    i = np.searchsorted(call_key, key)
    hit = np.minimum(i, n_calls - 1)
    found = w.has_seq[rows] & (i < n_calls) & (call_key[hit] == key)
    by_seq = i - call0[trip]
    agrees = (stop < 0) | (tt.st_stop[calls[hit]] == stop)
    pos = np.where(found & agrees, by_seq, _UNMATCHED)

    hard = np.flatnonzero((stop >= 0) & ~(found & agrees))
    if hard.size:
        _by_stop(tt, a, n, trip, stop, found, by_seq, hard, pos)

    matched = np.flatnonzero(pos >= 0)
    unmatched = np.bincount(trip[pos < 0], minlength=n_trips)
    block_row = lo[trip[matched]] + pos[matched]
    if block_row.size > 1 and not bool((block_row[1:] > block_row[:-1]).all()):
        # Updates out of order or located twice: the last update at a call wins.
        order = np.argsort(block_row, kind="stable")
        block_row = block_row[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = block_row[1:] != block_row[:-1]
        matched, block_row = matched[order[last]], block_row[last]
    wrow = rows[matched]
    rel = w.relationship[wrow]
    skipped = rel == _SKIPPED
    no_data = rel == _NO_DATA
    plain = np.flatnonzero(~skipped & ~no_data)
    e = np.empty((len(plain), 6), dtype=np.int64)
    e[:, 0] = block_row[plain]
    er = wrow[plain]
    e[:, 1] = w.arr_time[er]
    e[:, 2] = w.arr_delay[er]
    e[:, 3] = w.dep_time[er]
    e[:, 4] = w.dep_delay[er]
    e[:, 5] = w.uncertainty[er]
    # Nothing usable: the call is treated as if it had no update.
    e = e[(e[:, 1:5] != NONE).any(axis=1)]
    return Placed(
        events=e,
        skipped=block_row[skipped],
        no_data=block_row[no_data],
        skipped_count=np.bincount(trip[matched[skipped]], minlength=n_trips),
        unmatched_count=unmatched,
    )


def _stop_keys(index: _BytesIndex) -> tuple[IdKeys | None, np.ndarray]:
    short = [(key, i) for key, i in index.items() if len(key) <= ID_BYTES]
    blob = b"".join(key for key, _ in short)
    buf = np.frombuffer(blob + bytes(32), dtype=np.uint8)
    hi = np.cumsum(np.fromiter((len(key) for key, _ in short), np.int64, len(short)))
    lo = hi - np.fromiter((len(key) for key, _ in short), np.int64, len(short))
    keys = id_keys(buf, lo, hi)
    order = np.argsort(keys.hash, kind="stable")
    keys = IdKeys(keys.length[order], keys.words[order], keys.hash[order])
    stops = np.fromiter((i for _, i in short), np.int64, len(short))[order]
    if len(order) > 1 and bool((keys.hash[1:] == keys.hash[:-1]).any()):
        return None, stops
    return keys, stops


def _stop_indices(tt: Timetable, w: WireUpdates, rows: np.ndarray) -> np.ndarray:
    """The stop index of each update's stop_id, -1 when absent or unknown."""
    look = lookups(tt)
    table = look.stop_keys
    if table is None or not len(table.hash):
        blob, index = w.blob, look.stop_index
        lo, hi = w.stop_lo[rows].tolist(), w.stop_hi[rows].tolist()
        ids = [blob[x:y] for x, y in zip(lo, hi, strict=True)]
        return np.fromiter(map(index.__getitem__, ids), dtype=np.int64, count=len(ids))
    mine = w.stop_key
    length, h = mine.length[rows], mine.hash[rows]
    at = np.minimum(np.searchsorted(table.hash, h), len(table.hash) - 1)
    same = (table.hash[at] == h) & (table.length[at] == length) & (length > 0)
    same &= (table.words[at] == mine.words[rows]).all(axis=1) & (length <= ID_BYTES)
    stop = np.where(same, look.stop_of_key[at], -1)
    for r in np.flatnonzero(length > ID_BYTES).tolist():
        row = int(rows[r])
        stop[r] = look.stop_index[w.blob[int(w.stop_lo[row]) : int(w.stop_hi[row])]]
    return stop


def _by_stop(
    tt: Timetable,
    a: np.ndarray,
    n: np.ndarray,
    trip: np.ndarray,
    stop: np.ndarray,
    found: np.ndarray,
    by_seq: np.ndarray,
    hard: np.ndarray,
    pos: np.ndarray,
) -> None:
    """Fill ``pos`` for the ``hard`` updates: their stop_id decides (``_find_stop`` rules)."""
    ht = trip[hard]
    hn = n[ht]
    owner = np.repeat(np.arange(len(hard), dtype=np.int64), hn)
    offset = np.arange(int(hn.sum()), dtype=np.int64) - np.repeat(np.cumsum(hn) - hn, hn)
    same = np.flatnonzero(tt.st_stop[np.repeat(a[ht], hn) + offset] == stop[hard][owner])
    visits = np.bincount(owner[same], minlength=len(hard))
    first = np.searchsorted(owner[same], np.arange(len(hard)))
    at = offset[same]
    # The trip never calls there: the sequence match stands (if any).
    none = visits == 0
    pos[hard[none]] = np.where(found[hard[none]], by_seq[hard[none]], _UNMATCHED)
    # One visit: wherever the search starts, it ends there.
    one = np.flatnonzero(visits == 1)
    pos[hard[one]] = at[first[one]]
    many = np.flatnonzero(visits > 1)
    if not many.size:
        return
    # Several visits: the first one after the previous match, so walk those trips in order.
    visits_of = {
        int(h): at[f : f + v].tolist()
        for h, f, v in zip(hard[many], first[many], visits[many], strict=True)
    }
    pos[hard[many]] = _PENDING
    starts = np.searchsorted(trip, np.unique(trip[hard[many]]))
    for r0 in starts.tolist():
        j = int(trip[r0])
        r1 = r0 + int(np.searchsorted(trip[r0:], j, side="right"))
        cursor = 0
        for r, p in enumerate(pos[r0:r1].tolist(), r0):
            if p == _PENDING:
                choices = visits_of[r]
                p = next((c for c in choices if c >= cursor), choices[0])
                pos[r] = p
            if p >= 0:
                cursor = p + 1

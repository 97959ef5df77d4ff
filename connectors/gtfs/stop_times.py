"""stop_times.txt and frequencies.txt into run-grouped arrays and a per-stop departure index.

This is the hot path for big feeds (10 M rows), so every step is a whole-column numpy
operation; Python only loops over distinct strings (memoised) and over broken rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import IssueLog
from .fastcsv import IdIndex
from .parse import EMPTY, INVALID, Interner, Lookup, Memo, parse_int, parse_time
from .reader import DEFAULT_BLOCK_BYTES, GtfsZip, release_free_memory

ST_FILE = "stop_times.txt"
ST_COLUMNS = (
    "trip_id",
    "arrival_time",
    "departure_time",
    "stop_id",
    "stop_sequence",
    "stop_headsign",
    "pickup_type",
    "drop_off_type",
)
FREQ_COLUMNS = ("trip_id", "start_time", "end_time", "headway_secs", "exact_times")


@dataclass
class StopTimeRows:
    """Stop times grouped by trip (or run) and ordered by stop_sequence within each."""

    trip: np.ndarray
    stop: np.ndarray
    seq: np.ndarray
    arr: np.ndarray
    dep: np.ndarray
    pickup: np.ndarray
    dropoff: np.ndarray
    headsign: np.ndarray

    def take(self, index: np.ndarray) -> StopTimeRows:
        """The rows at ``index`` (a mask or indices), in that order."""
        return StopTimeRows(*(getattr(self, f)[index] for f in _ROW_FIELDS))

    def take_in_place(self, index: np.ndarray) -> None:
        """Like :meth:`take`, one column at a time, so only one extra column is alive."""
        for f in _ROW_FIELDS:
            setattr(self, f, getattr(self, f)[index])

    @classmethod
    def concatenate(cls, parts: list[StopTimeRows]) -> StopTimeRows:
        """Join parts column by column, releasing each part's column once copied."""
        columns = []
        for f in _ROW_FIELDS:
            columns.append(np.concatenate([getattr(p, f) for p in parts]))
            for p in parts:
                setattr(p, f, None)
        return cls(*columns)


_ROW_FIELDS = ("trip", "stop", "seq", "arr", "dep", "pickup", "dropoff", "headsign")


def read_stop_times(
    z: GtfsZip,
    trips: IdIndex,
    stops: IdIndex,
    headsigns: Interner,
    issues: IssueLog,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: Callable[[float], None] | None = None,
) -> StopTimeRows:
    """Parse stop_times.txt block by block; broken rows are reported and dropped.

    Plain blocks are converted by numpy (:class:`.fastcsv.ByteBlock`), others through the
    csv module (:class:`.reader.Chunk`); both offer the same converters.
    """
    times = Memo(parse_time)
    ints = Memo(parse_int)
    parts: list[StopTimeRows] = []
    line_parts: list[np.ndarray] = []
    for chunk in z.iter_blocks(ST_FILE, ST_COLUMNS, issues, block_bytes, progress):
        n = len(chunk)
        trip = chunk.ids("trip_id", trips)
        stop = chunk.ids("stop_id", stops)
        seq = chunk.numbers("stop_sequence", ints, time=False)
        arr = chunk.numbers("arrival_time", times, time=True)
        dep = chunk.numbers("departure_time", times, time=True)
        pickup = chunk.numbers("pickup_type", ints, time=False)
        dropoff = chunk.numbers("drop_off_type", ints, time=False)
        headsign = chunk.text_codes("stop_headsign", headsigns)
        lines = chunk.lines
        bad = np.zeros(n, bool)
        for mask, code, describe in (
            (
                trip < 0,
                "unknown_reference",
                lambda i, c=chunk: f"trip_id {c.text('trip_id', [i])[0]!r} not in trips.txt",
            ),
            (
                stop < 0,
                "unknown_reference",
                lambda i, c=chunk: f"stop_id {c.text('stop_id', [i])[0]!r} not in stops.txt",
            ),
            (seq < 0, "invalid_value", lambda i: "stop_sequence missing or not an integer"),
            ((arr == INVALID) | (dep == INVALID), "invalid_time", lambda i: "unparsable time"),
        ):
            mask &= ~bad  # one issue per row: the first reason found
            issues.add_rows(ST_FILE, lines, np.flatnonzero(mask), code, describe)
            bad |= mask
        # Enum fields: empty means 0; anything outside 0..3 is reported and read as 0.
        for col, name in ((pickup, "pickup_type"), (dropoff, "drop_off_type")):
            odd = (col != EMPTY) & ((col < 0) | (col > 3)) & ~bad
            issues.add_rows(
                ST_FILE,
                lines,
                np.flatnonzero(odd),
                "invalid_value",
                lambda i, name=name: f"{name} outside 0..3, read as 0",
                "warning",
            )
            col[(col < 0) | (col > 3)] = 0
        keep = ~bad
        parts.append(
            StopTimeRows(
                trip[keep],
                stop[keep],
                seq[keep],
                arr[keep],
                dep[keep],
                pickup[keep].astype(np.int8),
                dropoff[keep].astype(np.int8),
                headsign[keep],
            )
        )
        if isinstance(lines, range):  # np.asarray would walk a range in Python
            line_array = np.arange(lines.start, lines.stop, dtype=np.int32)
        else:
            line_array = np.asarray(lines, dtype=np.int32)
        line_parts.append(line_array[keep])
    if not parts:
        empty = np.zeros(0, np.int32)
        return StopTimeRows(
            *(empty.astype(np.int8) if f in ("pickup", "dropoff") else empty for f in _ROW_FIELDS)
        )
    rows = StopTimeRows.concatenate(parts)
    line = np.concatenate(line_parts)
    del parts, line_parts
    release_free_memory()  # the blocks' temporaries, before the sort allocates again
    rows, line = _sort_and_dedupe(rows, line, issues)
    return _fill_times(rows, line, issues)


def _sort_and_dedupe(
    rows: StopTimeRows, line: np.ndarray, issues: IssueLog
) -> tuple[StopTimeRows, np.ndarray]:
    """Order rows by (trip, stop_sequence) and drop repeated (trip, stop_sequence) pairs."""
    key = (rows.trip.astype(np.int64) << 32) | rows.seq.astype(np.int64)
    if len(key) > 1 and not np.all(key[1:] >= key[:-1]):
        # Most feeds are already grouped by trip; sort only when they are not.
        order = np.argsort(key, kind="stable")
        del key
        rows.take_in_place(order)
        line = line[order]
        del order
        key = (rows.trip.astype(np.int64) << 32) | rows.seq.astype(np.int64)
    dup = np.zeros(len(key), bool)
    dup[1:] = key[1:] == key[:-1]
    if dup.any():
        issues.add_rows(
            ST_FILE,
            line,
            np.flatnonzero(dup),
            "duplicate_key",
            lambda i: "repeated (trip_id, stop_sequence)",
        )
        rows.take_in_place(~dup)
        line = line[~dup]
    return rows, line


def _fill_times(rows: StopTimeRows, line: np.ndarray, issues: IssueLog) -> StopTimeRows:
    """Complete missing times: copy arrival↔departure, interpolate untimed stops linearly.

    Non-timepoint stops may leave both times empty; OTP and OBA interpolate them
    between the surrounding timed stops of the same trip, and so do we (by stop count,
    since shape distances are often absent).
    """
    arr, dep = rows.arr, rows.dep
    only_dep = (arr == EMPTY) & (dep != EMPTY)
    arr[only_dep] = dep[only_dep]
    only_arr = (dep == EMPTY) & (arr != EMPTY)
    dep[only_arr] = arr[only_arr]
    untimed = dep == EMPTY
    if not untimed.any():
        return rows
    n = len(dep)
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(~untimed, idx, -1))
    nxt = np.minimum.accumulate(np.where(~untimed, idx, n)[::-1])[::-1]
    ok = untimed & (prev >= 0) & (nxt < n)
    ok[ok] &= (rows.trip[prev[ok]] == rows.trip[idx[ok]]) & (
        rows.trip[nxt[ok]] == rows.trip[idx[ok]]
    )
    p, q, i = prev[ok], nxt[ok], idx[ok]
    t0, t1 = dep[p].astype(np.int64), arr[q].astype(np.int64)
    filled = t0 + np.round((t1 - t0) * (i - p) / (q - p)).astype(np.int64)
    arr[i] = filled
    dep[i] = filled
    lost = untimed & ~ok
    issues.add_rows(
        ST_FILE,
        line,
        np.flatnonzero(lost),
        "missing_time",
        lambda i: "no time and no timed stop before and after it in the trip",
    )
    return rows.take(~lost) if lost.any() else rows


def read_frequencies(
    z: GtfsZip, trips: Lookup, issues: IssueLog
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """frequencies.txt as arrays (trip, start_s, end_s, headway_s, exact_times)."""
    table = z.read_table("frequencies.txt", FREQ_COLUMNS, issues)
    out: list[tuple[int, int, int, int, int]] = []
    for i in range(len(table)):
        line = table.lines[i]
        trip_id = table.get("trip_id")[i]
        trip = trips[trip_id]
        start = parse_time(table.get("start_time")[i])
        end = parse_time(table.get("end_time")[i])
        headway = parse_int(table.get("headway_secs")[i])
        exact = parse_int(table.get("exact_times", "0")[i])
        if trip < 0:
            issues.add("frequencies.txt", line, "unknown_reference", f"trip_id {trip_id!r}")
        elif start < 0 or end < 0 or end < start:
            issues.add("frequencies.txt", line, "invalid_time", "start_time/end_time")
        elif headway <= 0:
            issues.add("frequencies.txt", line, "invalid_value", "headway_secs must be > 0")
        else:
            out.append((trip, start, end, headway, 1 if exact == 1 else 0))
    cols = np.array(out, dtype=np.int64).reshape(-1, 5).T
    return cols[0], cols[1], cols[2], cols[3], cols[4]


@dataclass
class Runs:
    """Runs and their stop-time rows (grouped by run)."""

    trip: np.ndarray
    start: np.ndarray
    headway: np.ndarray
    exact: np.ndarray
    ptr: np.ndarray
    rows: StopTimeRows


def expand_runs(
    rows: StopTimeRows,
    n_trips: int,
    freq: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> Runs:
    """One run per plain trip; one run per start time of each frequencies.txt window.

    A frequency trip's own stop times only give the shape of the journey (relative times),
    so it is shifted to each start time ``start_time + k * headway_secs < end_time``.
    ``rows`` is consumed: its columns may be reused or replaced in place.
    """
    counts = np.bincount(rows.trip, minlength=n_trips)
    trip_ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    f_trip, f_start, f_end, f_headway, f_exact = freq
    has_rows = counts > 0
    is_freq = np.zeros(n_trips, bool)
    is_freq[f_trip] = True
    plain = np.flatnonzero(has_rows & ~is_freq)
    first_dep = np.zeros(n_trips, np.int64)
    first_dep[has_rows] = rows.dep[trip_ptr[:-1][has_rows]]

    # Frequency windows → start times, vectorised.
    f_ok = counts[f_trip] > 0
    f_trip, f_start, f_end, f_headway, f_exact = (
        a[f_ok] for a in (f_trip, f_start, f_end, f_headway, f_exact)
    )
    per_window = np.maximum(0, -(-(f_end - f_start) // f_headway))
    window = np.repeat(np.arange(len(f_trip)), per_window)
    within = np.arange(len(window)) - np.repeat(np.cumsum(per_window) - per_window, per_window)
    starts = f_start[window] + within * f_headway[window]

    run_trip = np.concatenate((plain, f_trip[window])).astype(np.int32)
    run_start = np.concatenate((first_dep[plain], starts)).astype(np.int32)
    run_headway = np.concatenate((np.zeros(len(plain), np.int64), f_headway[window])).astype(
        np.int32
    )
    run_exact = np.concatenate((np.full(len(plain), -1), f_exact[window])).astype(np.int8)
    order = np.lexsort((run_start, run_trip))
    run_trip, run_start, run_headway, run_exact = (
        a[order] for a in (run_trip, run_start, run_headway, run_exact)
    )
    lengths = counts[run_trip]
    ptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    if len(window) == 0 and len(plain) == int(has_rows.sum()):
        # No frequency expansion: the rows are already grouped by run (= trip).
        return Runs(run_trip, run_start, run_headway, run_exact, ptr, rows)
    # Row r of run k is row r - ptr[k] + trip_ptr[trip of k]; int32 while it fits.
    index_type = np.int32 if ptr[-1] < 1 << 31 and len(rows.trip) < 1 << 31 else np.int64
    src = np.arange(ptr[-1], dtype=index_type)
    src += np.repeat((trip_ptr[run_trip] - ptr[:-1]).astype(index_type), lengths)
    # In place, column by column (``rows`` is consumed): one extra column alive at a time.
    rows.take_in_place(src)
    out = rows
    del src
    shift = np.repeat((run_start - first_dep[run_trip]).astype(np.int32), lengths)
    out.arr += shift
    out.dep += shift
    return Runs(run_trip, run_start, run_headway, run_exact, ptr, out)


def departure_index(stop: np.ndarray, dep: np.ndarray, n_stops: int) -> tuple[np.ndarray, ...]:
    """(sd_ptr, sd_time, sd_row): rows grouped by stop, sorted by departure within each.

    Ties keep row order. When stop, departure and row number fit in 63 bits together,
    they are packed into one int64 key and sorted in place (no separate argsort array).
    """
    n = len(stop)
    counts = np.bincount(stop, minlength=n_stops)
    ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    low = int(dep.min()) if n else 0
    span = (int(dep.max()) - low) if n else 0
    row_bits = max(n - 1, 1).bit_length()
    dep_bits = max(span, 1).bit_length()
    stop_bits = max(n_stops - 1, 1).bit_length()
    if row_bits + dep_bits + stop_bits <= 63:
        key = stop.astype(np.int64)
        key <<= dep_bits
        key += dep
        key -= low
        key <<= row_bits
        key += np.arange(n, dtype=np.int64)
        key.sort()
        order = (key & ((1 << row_bits) - 1)).astype(np.int32)
        del key
        return ptr, dep[order], order
    key = (stop.astype(np.int64) << 32) | (dep.astype(np.int64) - low)
    order = np.argsort(key, kind="stable").astype(np.int32)
    return ptr, dep[order], order

"""shapes.txt (optional) into columnar arrays: the path each trip's vehicle draws on a map.

Points are kept as two float32 columns grouped by shape and sorted by shape_pt_sequence:
``shape_ptr[k]:shape_ptr[k + 1]`` are shape ``k``'s points. float32 halves the memory of
float64 (8 bytes a point instead of 16; shapes.txt is often the biggest file after
stop_times.txt), and rounds a coordinate by at most 2^-17 degree (under 1 m of longitude
near ±180°, under 0.5 m of latitude): far below what a line drawn on a phone's map shows.
shape_dist_traveled is not kept: nothing reads it yet.

Like the other files, a broken row is reported with its line and skipped, never fatal; a
shape left with fewer than two points is reported and dropped, and so are shapes no trip
uses. A trip whose shape is missing is drawn from its stops (see :mod:`.geometry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import IssueLog
from .fastcsv import ByteBlock
from .parse import Interner, Lookup, Memo, parse_int
from .reader import DEFAULT_BLOCK_BYTES, Chunk, GtfsZip

SHAPES_FILE = "shapes.txt"
SHAPE_COLUMNS = ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence")
#: Storage type of shape coordinates (see the module's docstring for why not float64).
COORD_DTYPE = np.float32


@dataclass
class Shapes:
    """Compiled shapes: ids, a pointer array and the points, grouped and ordered."""

    ids: list[str]
    ptr: np.ndarray
    lat: np.ndarray
    lon: np.ndarray

    @classmethod
    def empty(cls) -> Shapes:
        return cls([], np.zeros(1, np.int64), np.zeros(0, COORD_DTYPE), np.zeros(0, COORD_DTYPE))


@dataclass
class _Points:
    """Valid rows of shapes.txt, in file order (temporary, while reading)."""

    shape: np.ndarray
    seq: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    line: np.ndarray


def read_shapes(
    z: GtfsZip, issues: IssueLog, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> tuple[Shapes, Interner]:
    """Parse shapes.txt block by block; returns every usable shape and the ids met.

    The interner holds every non-empty shape_id seen (usable or not), so trips naming a
    shape that was dropped are told apart from trips naming one that does not exist.
    """
    seen = Interner()
    if not z.has(SHAPES_FILE):
        return Shapes.empty(), seen
    parts: list[_Points] = []
    ints = Memo(parse_int)
    missing_reported = False
    for block in z.iter_blocks(SHAPES_FILE, SHAPE_COLUMNS, issues, block_bytes):
        absent = [c for c in SHAPE_COLUMNS if not block.has(c)]
        if absent:
            if not missing_reported:
                issues.add(
                    SHAPES_FILE,
                    1,
                    "missing_column",
                    f"no {', '.join(absent)} column: shapes.txt ignored",
                )
                missing_reported = True
            continue
        parts.append(_valid_rows(block, seen, ints, issues))
    points = _Points(
        *(
            np.concatenate([getattr(p, f) for p in parts]) if parts else np.zeros(0, dtype)
            for f, dtype in (
                ("shape", np.int32),
                ("seq", np.int32),
                ("lat", COORD_DTYPE),
                ("lon", COORD_DTYPE),
                ("line", np.int64),
            )
        )
    )
    del parts
    return _group(points, seen.values, issues), seen


def _valid_rows(block: Chunk | ByteBlock, seen: Interner, ints: Memo, issues: IssueLog) -> _Points:
    """The rows of one block (a ByteBlock or a Chunk) that make a point; the rest reported."""
    shape = block.text_codes("shape_id", seen)
    seq = block.numbers("shape_pt_sequence", ints, False)
    lat = block.floats("shape_pt_lat")
    lon = block.floats("shape_pt_lon")
    lines = block.lines
    bad = np.zeros(len(block), bool)
    # NaN compares false, so an unreadable coordinate is caught as out of range.
    checks = (
        (shape < 0, "missing_field", lambda i: "shape_id is empty"),
        (
            seq < 0,
            "invalid_value",
            lambda i: "shape_pt_sequence missing or not a non-negative integer",
        ),
        (
            ~((lat >= -90.0) & (lat <= 90.0)),
            "invalid_value",
            lambda i: f"shape_pt_lat {block.text('shape_pt_lat', [i])[0]!r}: not -90..90",
        ),
        (
            ~((lon >= -180.0) & (lon <= 180.0)),
            "invalid_value",
            lambda i: f"shape_pt_lon {block.text('shape_pt_lon', [i])[0]!r}: not -180..180",
        ),
    )
    for mask, code, describe in checks:
        mask &= ~bad
        issues.add_rows(SHAPES_FILE, lines, np.flatnonzero(mask), code, describe)
        bad |= mask
    keep = np.flatnonzero(~bad)
    first = lines[0] if len(lines) else 0
    return _Points(
        shape[keep],
        seq[keep],
        lat[keep].astype(COORD_DTYPE),
        lon[keep].astype(COORD_DTYPE),
        # Lines are consecutive on both paths except after rows the csv path repaired.
        (keep + first) if isinstance(lines, range) else np.asarray(lines, np.int64)[keep],
    )


def _group(points: _Points, names: Sequence[str], issues: IssueLog) -> Shapes:
    """Sort by (shape, sequence), drop repeated sequences and shapes of fewer than 2 points."""
    order = np.lexsort((points.seq, points.shape))  # stable: the first of a repeat stays first
    shape, seq = points.shape[order], points.seq[order]
    repeat = np.zeros(len(order), bool)
    repeat[1:] = (shape[1:] == shape[:-1]) & (seq[1:] == seq[:-1])
    issues.add_rows(
        SHAPES_FILE,
        points.line[order],
        np.flatnonzero(repeat),
        "duplicate_key",
        lambda i: f"shape {names[shape[i]]!r} repeats shape_pt_sequence {seq[i]}: row skipped",
    )
    order = order[~repeat]
    shape = shape[~repeat]
    counts = np.bincount(shape, minlength=len(names))
    for k in np.flatnonzero(counts < 2).tolist():
        # The one point's line when there is one; otherwise every row of it was broken.
        line = int(points.line[order[np.searchsorted(shape, k)]]) if counts[k] else None
        issues.add(
            SHAPES_FILE,
            line,
            "too_few_points",
            f"shape {names[k]!r} has {counts[k]} valid point(s), needs 2: ignored",
        )
    usable = counts >= 2
    order = order[usable[shape]]  # still grouped by shape, in the order of the kept ids
    return Shapes(
        [name for name, ok in zip(names, usable.tolist(), strict=True) if ok],
        np.concatenate(([0], np.cumsum(counts[usable]))).astype(np.int64),
        points.lat[order],
        points.lon[order],
    )


def link_trips(
    shapes: Shapes,
    seen: Interner,
    trip_shape_ids: Sequence[str],
    file_present: bool,
    issues: IssueLog,
) -> tuple[Shapes, np.ndarray]:
    """Each trip's shape index (-1: none or unusable), keeping only shapes some trip uses."""
    index = Lookup((name, k) for k, name in enumerate(shapes.ids))
    trip_shape = index.convert(trip_shape_ids)
    named = np.fromiter(map(bool, trip_shape_ids), dtype=bool, count=len(trip_shape_ids))
    unknown = named & (trip_shape < 0)
    if unknown.any() and not file_present:
        issues.add(
            "trips.txt",
            None,
            "missing_file",
            f"{int(unknown.sum())} trip(s) name a shape_id but the feed has no shapes.txt: "
            "their lines are drawn from their stops",
            "warning",
        )
    elif unknown.any():
        for name in sorted({trip_shape_ids[i] for i in np.flatnonzero(unknown).tolist()}):
            if name not in seen:  # a dropped shape was reported already, in shapes.txt
                issues.add(
                    "trips.txt",
                    None,
                    "unknown_reference",
                    f"shape_id {name!r} is not in shapes.txt: its trips are drawn from stops",
                    "warning",
                )
    used = np.zeros(len(shapes.ids), bool)
    used[trip_shape[trip_shape >= 0]] = True
    if used.all():
        return shapes, trip_shape
    issues.add(
        SHAPES_FILE,
        None,
        "unused_shape",
        f"{int((~used).sum())} shape(s) used by no trip: not kept",
        "warning",
    )
    sizes = np.diff(shapes.ptr)
    point_keep = np.repeat(used, sizes)
    renumber = (np.cumsum(used) - 1).astype(np.int32)
    kept = Shapes(
        [name for name, ok in zip(shapes.ids, used.tolist(), strict=True) if ok],
        np.concatenate(([0], np.cumsum(sizes[used]))).astype(np.int64),
        shapes.lat[point_keep],
        shapes.lon[point_keep],
    )
    return kept, np.where(trip_shape >= 0, renumber[np.maximum(trip_shape, 0)], -1).astype(np.int32)

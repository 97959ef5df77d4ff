"""Find the over-long lines of an upstream body, without splitting it into line objects.

A CSV export or a calendar is read whole (``max_bytes`` bounds it), but the parsers behind
them pay a multiple of a line's length for it: the csv module builds one row of every field
of a line, icalendar unfolds a content line and runs its regexes over it. A body of a few
endless lines costs far more than its size, so the connectors refuse (CSV) or drop (ICS)
lines longer than their ``max_line_bytes`` before parsing. Newlines are found with numpy a
slice at a time, so the scan holds a few MB of scratch whatever the body's size.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Default for the connectors' ``max_line_bytes``: real lines are a few hundred bytes.
DEFAULT_MAX_LINE_BYTES = 1 << 20
_SLICE = 1 << 22
_NEWLINE, _SPACE, _TAB = 10, 32, 9


class LongLine(NamedTuple):
    """A line over the cap: its 1-based number and its byte span (terminator included)."""

    number: int
    start: int
    end: int


def long_lines(data: bytes, cap: int, *, folded: bool = False) -> list[LongLine]:
    """Every line of ``data`` longer than ``cap`` bytes, its newline included, in order.

    With ``folded`` a line goes on over the following lines that begin with a space or a
    tab (RFC 5545 folding), so a content line is measured unfolded.
    """
    view = np.frombuffer(data, np.uint8)
    size = len(view)
    if size <= cap:
        return []
    parts = [np.zeros(1, np.int64)]
    for offset in range(0, size, _SLICE):
        starts = np.flatnonzero(view[offset : offset + _SLICE] == _NEWLINE)
        starts += offset + 1  # a line starts after each newline
        starts = starts[starts < size]
        if folded and len(starts):
            first = view[starts]
            starts = starts[(first != _SPACE) & (first != _TAB)]
        parts.append(starts)
    starts = np.concatenate(parts)
    lengths = np.diff(starts, append=size)
    over = np.flatnonzero(lengths > cap)
    return [
        LongLine(
            data.count(b"\n", 0, int(starts[i])) + 1, int(starts[i]), int(starts[i] + lengths[i])
        )
        for i in over
    ]

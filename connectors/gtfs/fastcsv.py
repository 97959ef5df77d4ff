"""A vectorised reader for big, plain CSV files (stop_times.txt in practice).

The csv module costs about 2.5 µs per row, 25 s for 10 M stop times. Almost every real
stop_times.txt is *plain*: no quotes, the same number of commas on every line. For those,
a block of bytes is split into fields with numpy (positions of commas and newlines), times
and integers are parsed digit by digit over whole columns, and ids are matched to known
ids through a 64-bit hash table probed with vectorised gathers. A block that is not plain
goes through the csv module instead, so the result never depends on the path taken.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .parse import EMPTY, INVALID, Interner, Lookup, Memo

_DIGIT_0 = 48
_COLON = 58
_COMMA = 44
_NEWLINE = 10
# An odd 64-bit multiplier for the polynomial hash, and the final avalanche constants.
_MUL_INT = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def split_fields(data: bytes, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(buffer, start, end) of every field of ``data`` (whole lines, no header), or None.

    ``start``/``end`` have shape (rows, width). None means "not plain": a quote, or a line
    whose comma count differs from the header's (short rows, blank lines).
    """
    if b'"' in data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == _NEWLINE)
    commas = np.flatnonzero(buf == _COMMA)
    n = len(newlines)
    if n == 0 or len(commas) != n * (width - 1):
        return None
    line_start = np.empty(n, np.int64)
    line_start[0] = 0
    line_start[1:] = newlines[:-1] + 1
    if width > 1:
        grid = commas.reshape(n, width - 1)
        # Equal totals are not enough: every line must hold its own width - 1 commas.
        if np.any(grid[:, 0] < line_start) or np.any(grid[:, -1] > newlines):
            return None
        start = np.empty((n, width), np.int64)
        end = np.empty((n, width), np.int64)
        start[:, 0] = line_start
        start[:, 1:] = grid + 1
        end[:, :-1] = grid
        end[:, -1] = newlines
    else:
        start = line_start[:, None]
        end = newlines[:, None]
    return buf, start, end


def hash_fields(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each field ``buf[start:end]`` (position-weighted, then mixed)."""
    length = end - start
    h = np.zeros(len(start), np.uint64)
    weight = 1
    last = len(buf) - 1
    for j in range(int(length.max()) if len(length) else 0):
        active = length > j
        byte = buf[np.minimum(start + j, last)].astype(np.uint64) + np.uint64(1)
        h += byte * active * np.uint64(weight)
        # Python ints wrapped by hand: numpy scalars would warn on overflow.
        weight = (weight * _MUL_INT) & _MASK64
    h ^= h >> np.uint64(31)
    h *= _MIX1
    h ^= h >> np.uint64(29)
    h *= _MIX2
    h ^= h >> np.uint64(32)
    return h


class HashIndex:
    """Known ids → index, probed for a whole column at once (open addressing)."""

    def __init__(self, ids: Sequence[str]) -> None:
        encoded = [s.encode() for s in ids]
        data = b"".join(encoded)
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        ends = np.cumsum(lengths)
        buf = np.frombuffer(data + b"\0", dtype=np.uint8)
        self.keys = hash_fields(buf, ends - lengths, ends)
        self.lengths = lengths
        # Two ids with one hash would make matching ambiguous: refuse, callers fall back.
        self.ok = len(np.unique(self.keys)) == len(ids)
        size = 1 << max(4, int(2 * max(len(ids), 1) - 1).bit_length())
        self.mask = np.uint64(size - 1)
        self.slot_key = np.zeros(size, np.uint64)
        self.slot_value = np.full(size, -1, np.int64)
        pending = np.arange(len(ids))
        slots = (self.keys & self.mask).astype(np.int64)
        while len(pending):
            # Insert those whose slot is free (first claimant wins), move the rest along.
            free = self.slot_value[slots[pending]] < 0
            cand = pending[free]
            _, first = np.unique(slots[cand], return_index=True)
            winners = cand[first]
            self.slot_key[slots[winners]] = self.keys[winners]
            self.slot_value[slots[winners]] = winners
            placed = np.zeros(len(ids), bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            slots[pending] = (slots[pending] + 1) & int(self.mask)

    def find(self, hashes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Index of each hashed field among the known ids (-1 if unknown)."""
        out = np.full(len(hashes), -1, np.int32)
        slots = (hashes & self.mask).astype(np.int64)
        todo = np.arange(len(hashes))
        while len(todo):
            value = self.slot_value[slots[todo]]
            hit = (value >= 0) & (self.slot_key[slots[todo]] == hashes[todo])
            found = todo[hit]
            out[found] = value[hit]
            todo = todo[~hit & (value >= 0)]  # an empty slot ends the probe: unknown id
            slots[todo] = (slots[todo] + 1) & int(self.mask)
        # A hash match must also agree on length; a cheap guard against a freak collision.
        known = out >= 0
        wrong = known.copy()
        wrong[known] = self.lengths[out[known]] != lengths[known]
        out[wrong] = -1
        return out


class IdIndex:
    """Known ids, as a dict for string columns and a hash table for byte blocks."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = ids
        self.lookup = Lookup((s, i) for i, s in enumerate(ids))
        self._hashed: HashIndex | bool | None = False

    @property
    def hashed(self) -> HashIndex | None:
        """The hash table (built on first use); None if two ids share a hash."""
        if self._hashed is False:
            table = HashIndex(self.ids)
            self._hashed = table if table.ok else None
        return self._hashed  # type: ignore[return-value]


class ByteBlock:
    """Rows of a plain CSV block, as field positions; converters work on whole columns."""

    def __init__(
        self,
        file: str,
        buf: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        columns: dict[str, int],
        first_line: int,
    ) -> None:
        self.file = file
        self.buf = buf
        self.start = start
        self.end = end
        self.columns = columns
        self.lines = range(first_line, first_line + len(start))

    def __len__(self) -> int:
        return len(self.start)

    def has(self, name: str) -> bool:
        """Whether the file has column ``name``."""
        return name in self.columns

    def _span(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        col = self.columns[name]
        return self.start[:, col], self.end[:, col]

    def text(self, name: str, rows: Sequence[int]) -> list[str]:
        """Decoded values of column ``name`` at ``rows`` (for messages and fallbacks)."""
        if name not in self.columns:
            return [""] * len(rows)
        s, e = self._span(name)
        raw = self.buf.data
        return [bytes(raw[s[i] : e[i]]).decode("utf-8", "replace") for i in rows]

    def ids(self, name: str, index: IdIndex) -> np.ndarray:
        """Index of each value among the known ids (-1 unknown)."""
        if name not in self.columns:
            return np.full(len(self), -1, np.int32)
        hashed = index.hashed
        if hashed is None:
            return index.lookup.convert(self.text(name, range(len(self))))
        s, e = self._span(name)
        return hashed.find(hash_fields(self.buf, s, e), e - s)

    def numbers(self, name: str, memo: Memo, time: bool) -> np.ndarray:
        """Times (``H:MM:SS``, hours unbounded) or non-negative integers, vectorised.

        Fields of an unusual shape (spaces, "1.0") are handed to ``memo``'s scalar parser,
        so the answer is the same as the csv path's.
        """
        n = len(self)
        if name not in self.columns:
            return np.full(n, EMPTY, np.int32)
        s, e = self._span(name)
        length = e - s
        out = np.full(n, EMPTY, np.int64)
        ok = length > 0
        buf = self.buf
        last = len(buf) - 1

        def digit_at(pos: np.ndarray) -> np.ndarray:
            # Out-of-field positions are clamped; the shape checks reject those rows anyway.
            return buf[np.minimum(np.maximum(pos, 0), last)].astype(np.int32) - _DIGIT_0

        if time:
            # Seconds and minutes sit at fixed offsets from the end; hours take the rest.
            shape = ok & (length >= 7) & (length <= 9)
            d1, d2, d4, d5 = (digit_at(e - k) for k in (1, 2, 4, 5))
            shape &= (buf[np.maximum(e - 3, 0)] == _COLON) & (buf[np.maximum(e - 6, 0)] == _COLON)
            for d, top in ((d1, 9), (d2, 5), (d4, 9), (d5, 5)):
                shape &= (d >= 0) & (d <= top)
            value = ((d5 * 10 + d4) * 60 + d2 * 10 + d1).astype(np.int64)
            hours = np.zeros(n, np.int64)
            for j in range(3):
                here = shape & (length - 6 > j)
                d = digit_at(s + j)
                shape &= ~here | ((d >= 0) & (d <= 9))
                hours = np.where(here, hours * 10 + d, hours)
            value += hours * 3600
        else:
            shape = ok & (length <= 9)
            value = np.zeros(n, np.int64)
            for j in range(min(9, int(length.max()) if n else 0)):
                here = shape & (length > j)
                d = digit_at(s + j)
                shape &= ~here | ((d >= 0) & (d <= 9))
                value = np.where(here, value * 10 + d, value)
        out[shape] = value[shape]
        odd = np.flatnonzero(ok & ~shape)
        if len(odd):
            out[odd] = [memo[t] for t in self.text(name, odd)]
        return out.astype(np.int32)

    def text_codes(self, name: str, interner: Interner) -> np.ndarray:
        """Codes into ``interner`` for a text column, -1 where empty."""
        out = np.full(len(self), -1, np.int32)
        if name not in self.columns:
            return out
        s, e = self._span(name)
        filled = np.flatnonzero(e > s)
        if len(filled):
            out[filled] = interner.convert(self.text(name, filled))
        return out


__all__ = ["INVALID", "ByteBlock", "HashIndex", "IdIndex", "hash_fields", "split_fields"]

"""A vectorised reader for big, plain CSV files (stop_times.txt in practice).

The csv module costs about 2.5 µs per row, 25 s for 10 M stop times. Almost every real
stop_times.txt is *plain*: no quotes, the same number of commas on every line. For those,
a block of bytes is split into fields with numpy (positions of commas and newlines), and
each field is read as 64-bit words: the block is seen as one unaligned little-endian word
per byte offset, so a single gather yields 8 bytes of a field. Times and integers of up
to 8 characters are parsed from the word that ends the field (SWAR arithmetic), ids are
hashed 8 bytes per pass and matched to known ids through a hash table probed with
vectorised gathers. Fields of an unusual shape go through the scalar parsers, and a block
that is not plain goes through the csv module, so the result never depends on the path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .parse import EMPTY, INVALID, Interner, Lookup, Memo, parse_float

_COMMA = 44
_NEWLINE = 10
#: Zero bytes around a block's text, so a word may be read 8 bytes before or after a field.
PAD = 8
# An odd 64-bit multiplier for the hash, and the final avalanche constants.
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ONES = 0x0101010101010101
#: _LOW[k]: the low k bytes of a word set (k = 0..8).
_LOW = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
_ZEROS = np.uint64(0x30 * _ONES)  # eight "0" characters
_HIGH_NIBBLES = np.uint64(0xF0 * _ONES)
_SIXES = np.uint64(0x06 * _ONES)
_THREES = np.uint64(0x33 * _ONES)
_COLONS = np.uint64((0x3A << 16) | (0x3A << 40))
_COLON_BYTES = np.uint64((0xFF << 16) | (0xFF << 40))
_COLON_ZEROS = np.uint64((0x30 << 16) | (0x30 << 40))
_NIBBLES = np.uint64(0x0F * _ONES)
_BYTE_PAIRS = np.uint64(0x00FF00FF00FF00FF)
_WORD_PAIRS = np.uint64(0x0000FFFF0000FFFF)
_K1, _K2, _K3 = np.uint64(2561), np.uint64(6553601), np.uint64(42949672960001)
_U8, _U16, _U29, _U31, _U32, _U4 = (np.uint64(k) for k in (8, 16, 29, 31, 32, 4))


def pad_block(data: bytes | np.ndarray) -> np.ndarray:
    """``data`` as uint8 with :data:`PAD` zero bytes before and after it."""
    raw = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray) else data
    buf = np.zeros(len(raw) + 2 * PAD, np.uint8)
    buf[PAD : PAD + len(raw)] = raw
    return buf


def words_of(buf: np.ndarray) -> np.ndarray:
    """The little-endian uint64 starting at every byte offset of ``buf`` (a view, no copy)."""
    return np.ndarray((max(len(buf) - 7, 0),), dtype="<u8", buffer=buf, strides=(1,))


def split_fields(data: bytes, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(buffer, bounds) for ``data`` (whole lines, no header), or None if not plain.

    ``buffer`` is ``data`` padded by :func:`pad_block`. ``bounds`` (int32, shape
    (rows, width + 1)) holds, in buffer positions, the newline ending the previous line
    (a virtual one for the first) then every comma and the newline of each line: field
    ``c`` is ``buffer[bounds[:, c] + 1 : bounds[:, c + 1]]``. None means "not plain": a
    quote, or a line whose comma count differs from the header's (short rows, blank lines).
    """
    if b'"' in data or not data.endswith(b"\n"):
        return None
    n = data.count(b"\n")
    buf = pad_block(data)
    body = buf[PAD : PAD + len(data)]
    if width > 1:
        is_delim = body == _COMMA
        is_delim |= body == _NEWLINE
        delims = np.flatnonzero(is_delim)
        del is_delim
    else:
        delims = np.flatnonzero(body == _NEWLINE)
    if n == 0 or len(delims) != n * width or len(data) + 2 * PAD >= 1 << 31:
        return None
    grid = delims.reshape(n, width)
    # n newlines in all, and each line's last delimiter is one: every line has width - 1
    # commas (equal totals alone are not enough).
    if not np.all(body[grid[:, -1]] == _NEWLINE):
        return None
    bounds = np.empty((n, width + 1), np.int32)
    bounds[:, 1:] = grid
    del grid, delims
    bounds[:, 1:] += PAD
    bounds[0, 0] = PAD - 1
    bounds[1:, 0] = bounds[:-1, -1]
    return buf, bounds


def _hash_words(words: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Hash of each field (``start``, ``length`` in bytes) of a padded buffer, 8 bytes a pass."""
    h = length.astype(np.uint64)
    h *= _MUL
    last = len(words) - 1
    longest = int(length.max()) if len(length) else 0
    for j in range(0, max(longest, 1), 8):
        # Word j is mixed in for fields longer than j bytes only (word 0 always), so a
        # field's hash never depends on the other fields of the column.
        if j == 0 or int(length.min()) > j:
            rows, hj, pos = None, h, start + j if j else start
        else:
            rows = np.flatnonzero(length > j)
            hj, pos = h[rows], start[rows] + j
        if j:
            np.minimum(pos, last, out=pos)  # a fresh array: start is left alone
        w = words[pos]
        del pos
        size = length if rows is None else length[rows]
        if int(size.min(initial=j + 8)) < j + 8:
            w &= _LOW[np.clip(size - j, 0, 8)]
        hj ^= w
        hj *= _MUL
        hj ^= hj >> _U29
        if rows is not None:
            h[rows] = hj
    h ^= h >> _U31
    h *= _MIX1
    h ^= h >> _U29
    h *= _MIX2
    h ^= h >> _U32
    return h


def hash_fields(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each field ``buf[start:end]`` (8 bytes at a time, then mixed)."""
    start = np.asarray(start, np.int64)
    return _hash_words(words_of(pad_block(buf)), start + PAD, np.asarray(end) - start)


def _digits(w: np.ndarray) -> np.ndarray:
    """Whether every byte of each word is an ASCII digit."""
    a = w & _HIGH_NIBBLES
    b = w + _SIXES
    b &= _HIGH_NIBBLES
    b >>= _U4
    a |= b
    return a == _THREES


def _eight_digits(w: np.ndarray) -> np.ndarray:
    """The value of 8 ASCII digits per word (first digit in the low byte), in place."""
    w &= _NIBBLES
    w *= _K1
    w >>= _U8
    w &= _BYTE_PAIRS
    w *= _K2
    w >>= _U16
    w &= _WORD_PAIRS
    w *= _K3
    w >>= _U32
    return w


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
        self.slot_value = np.full(size, -1, np.int32)
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
        if not len(self.lengths):
            return np.full(len(hashes), -1, np.int32)
        mask = int(self.mask)
        slots = (hashes & self.mask).astype(np.intp)
        value = self.slot_value[slots]
        hit = self.slot_key[slots] == hashes
        hit &= value >= 0
        # Most fields are found in their first slot; only the rest probe further.
        todo = np.flatnonzero(~hit & (value >= 0))
        out = np.where(hit, value, -1).astype(np.int32)
        del value, hit
        slots = (slots[todo] + 1) & mask
        while len(todo):
            value = self.slot_value[slots]
            hit = (value >= 0) & (self.slot_key[slots] == hashes[todo])
            out[todo[hit]] = value[hit]
            more = ~hit & (value >= 0)  # an empty slot ends the probe: unknown id
            todo = todo[more]
            slots = (slots[more] + 1) & mask
        # A hash match must also agree on length; a cheap guard against a freak collision.
        wrong = self.lengths[np.maximum(out, 0)] != lengths
        wrong &= out >= 0
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
    """Rows of a plain CSV block, as field bounds; converters work on whole columns.

    ``buf`` is the padded block (:func:`pad_block`) and ``bounds`` comes from
    :func:`split_fields`; ``columns`` maps a column name to its index in the file.
    """

    def __init__(
        self,
        file: str,
        buf: np.ndarray,
        bounds: np.ndarray,
        columns: dict[str, int],
        first_line: int,
    ) -> None:
        self.file = file
        self.buf = buf
        self.words = words_of(buf)
        self.bounds = bounds
        self.columns = columns
        self.lines = range(first_line, first_line + len(bounds))

    def __len__(self) -> int:
        return len(self.bounds)

    def has(self, name: str) -> bool:
        """Whether the file has column ``name``."""
        return name in self.columns

    def _span(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        col = self.columns[name]
        return self.bounds[:, col] + 1, self.bounds[:, col + 1]

    def text(self, name: str, rows: Sequence[int]) -> list[str]:
        """Decoded values of column ``name`` at ``rows`` (for messages and fallbacks)."""
        if name not in self.columns:
            return [""] * len(rows)
        col = self.columns[name]
        b = self.bounds
        raw = self.buf.data
        return [bytes(raw[b[i, col] + 1 : b[i, col + 1]]).decode("utf-8", "replace") for i in rows]

    def ids(self, name: str, index: IdIndex) -> np.ndarray:
        """Index of each value among the known ids (-1 unknown)."""
        if name not in self.columns:
            return np.full(len(self), -1, np.int32)
        hashed = index.hashed
        if hashed is None:
            return index.lookup.convert(self.text(name, range(len(self))))
        s, e = self._span(name)
        length = e - s
        return hashed.find(_hash_words(self.words, s, length), length)

    def numbers(self, name: str, memo: Memo, time: bool) -> np.ndarray:
        """Times (``H:MM:SS``, hours unbounded) or non-negative integers, vectorised.

        The 8 bytes ending each field are read as one word; bytes before the field become
        "0", so a field of up to 8 characters is a left-padded string of digits (and, for
        a time, colons at fixed places). Fields of another shape (spaces, "1.0", hours
        above 99) are handed to ``memo``'s scalar parser, so the answer is the same as the
        csv path's.
        """
        n = len(self)
        if name not in self.columns:
            return np.full(n, EMPTY, np.int32)
        col = self.columns[name]
        end = self.bounds[:, col + 1]
        length = end - self.bounds[:, col]
        length -= 1
        w = self.words[end - 8]
        del end
        short = np.minimum(length, 8)
        keep = ~_LOW[8 - short]  # the field's own bytes: the top `length` ones
        del short
        w &= keep
        keep = ~keep
        keep &= _ZEROS
        w |= keep
        del keep
        if time:
            shape = (length == 7) | (length == 8)
            shape &= (w & _COLON_BYTES) == _COLONS
            w &= ~_COLON_BYTES
            w |= _COLON_ZEROS
        else:
            shape = (length >= 1) & (length <= 8)
        shape &= _digits(w)
        value = _eight_digits(w)  # time: HH0MM0SS as a decimal number
        if time:
            hours = value // np.uint64(1000000)
            minutes = value // np.uint64(1000)
            minutes %= np.uint64(1000)
            seconds = value % np.uint64(1000)
            shape &= minutes <= 59
            shape &= seconds <= 59
            hours *= np.uint64(3600)
            minutes *= np.uint64(60)
            hours += minutes
            hours += seconds
            value = hours
            del minutes, seconds
        out = value.astype(np.int32)
        del value
        out[length == 0] = EMPTY
        odd = np.flatnonzero(~shape & (length > 0))
        if len(odd):
            out[odd] = [memo[t] for t in self.text(name, odd)]
        return out

    def floats(self, name: str) -> np.ndarray:
        """Decimal numbers (coordinates), NaN where empty or unparsable, as ``float()`` reads.

        Each field's bytes are gathered 8 at a time into a fixed-width row, so numpy parses
        the whole column at once; a block holding one field numpy refuses (empty, a typo)
        is parsed value by value instead, with the same answer.
        """
        n = len(self)
        if name not in self.columns:
            return np.full(n, np.nan)
        s, e = self._span(name)
        length = e - s
        words = -(-int(length.max(initial=1)) // 8)
        raw = np.empty((n, words), "<u8")
        last = len(self.words) - 1
        for j in range(words):
            raw[:, j] = self.words[np.minimum(s + 8 * j, last)]
        del s, e
        chars = raw.view(np.uint8)  # (n, 8 * words), bytes in file order
        chars[np.arange(8 * words) >= length[:, None]] = 0  # numpy drops trailing NULs
        # A NUL inside a field would be dropped too: such a block takes the scalar path.
        if np.count_nonzero(chars) == int(length.sum()):
            try:
                return chars.view(f"S{8 * words}").ravel().astype(np.float64)
            except ValueError:
                pass
        return np.fromiter(map(parse_float, self.text(name, range(n))), dtype=np.float64, count=n)

    def text_codes(self, name: str, interner: Interner) -> np.ndarray:
        """Codes into ``interner`` for a text column, -1 where empty.

        Values repeat (a headsign per stop of a trip), so rows are grouped by hash and one
        value per group is decoded, in order of first appearance as on the csv path.
        """
        out = np.full(len(self), -1, np.int32)
        if name not in self.columns:
            return out
        s, e = self._span(name)
        filled = np.flatnonzero(e > s)
        if not len(filled):
            return out
        s, length = s[filled], e[filled] - s[filled]
        _, first, inverse = np.unique(
            _hash_words(self.words, s, length), return_index=True, return_inverse=True
        )
        order = np.argsort(first)
        codes = np.empty(len(first), np.int32)
        codes[order] = interner.convert(self.text(name, filled[first[order]]))
        out[filled] = codes[inverse]
        return out


__all__ = [
    "INVALID",
    "ByteBlock",
    "HashIndex",
    "IdIndex",
    "Lookup",
    "hash_fields",
    "pad_block",
    "split_fields",
    "words_of",
]

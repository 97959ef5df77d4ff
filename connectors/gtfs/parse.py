"""Column converters: strings in, numpy arrays out, with sentinels for bad values.

Real feeds repeat the same few thousand time strings, stop sequences and ids millions of
times, so each converter memoises: the per-row cost is one C-level dict lookup
(``map(memo.__getitem__, column)``) and the parsing itself runs once per distinct string.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np

#: Sentinel for an empty optional value.
EMPTY = -2
#: Sentinel for a value that is present but cannot be parsed.
INVALID = -1


def parse_time(text: str) -> int:
    """``"H:MM:SS"`` (hours may exceed 23) to seconds; :data:`EMPTY` or :data:`INVALID`."""
    text = text.strip()
    if not text:
        return EMPTY
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return INVALID
    h, m, s = (int(p) for p in parts)
    if m > 59 or s > 59 or h > 999:
        return INVALID
    return h * 3600 + m * 60 + s


#: The largest integer a column holds (they are int32 arrays).
MAX_INT = 2**31 - 1


def parse_int(text: str) -> int:
    """A non-negative integer up to :data:`MAX_INT`, or :data:`EMPTY` / :data:`INVALID`.

    A bigger one is invalid rather than an overflow that would stop the whole load.
    """
    text = text.strip()
    if not text:
        return EMPTY
    if text.isdigit():
        value = int(text)
        return value if value <= MAX_INT else INVALID
    # Some producers write "1.0" for enums.
    try:
        number = float(text)
    except ValueError:
        return INVALID
    return int(number) if number.is_integer() and 0 <= number <= MAX_INT else INVALID


def parse_date(text: str) -> int:
    """``YYYYMMDD`` to a proleptic Gregorian ordinal, or :data:`INVALID`."""
    text = text.strip()
    if len(text) != 8 or not text.isdigit():
        return INVALID
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:])).toordinal()
    except ValueError:
        return INVALID


def parse_float(text: str) -> float:
    """A float, or NaN when empty or unparsable."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


class Memo(dict[str, int]):
    """A dict that fills itself: ``memo[s]`` parses ``s`` the first time only."""

    def __init__(self, parser: Callable[[str], int]) -> None:
        super().__init__()
        self._parser = parser

    def __missing__(self, key: str) -> int:
        value = self._parser(key)
        self[key] = value
        return value

    def convert(self, column: Sequence[str], dtype: type = np.int32) -> np.ndarray:
        """Convert a whole column."""
        return np.fromiter(map(self.__getitem__, column), dtype=dtype, count=len(column))


class Interner(dict[str, int]):
    """Strings to dense integer codes, assigning new codes as it meets new strings."""

    def __init__(self, values: Sequence[str] = ()) -> None:
        super().__init__()
        self.values: list[str] = []
        for value in values:
            self[value]

    def __missing__(self, key: str) -> int:
        code = len(self.values)
        self.values.append(key)
        self[key] = code
        return code

    def convert(self, column: Sequence[str]) -> np.ndarray:
        """Codes of a whole column."""
        return np.fromiter(map(self.__getitem__, column), dtype=np.int32, count=len(column))


class Lookup(dict[str, int]):
    """A fixed id → index map that answers -1 for unknown ids instead of raising."""

    def __missing__(self, key: str) -> int:
        return -1

    def convert(self, column: Sequence[str]) -> np.ndarray:
        """Indices of a whole column (-1 where unknown)."""
        return np.fromiter(map(self.__getitem__, column), dtype=np.int32, count=len(column))

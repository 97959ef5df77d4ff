"""Errors that stop a GTFS load, and issues that only skip a row.

::

    GtfsError                  the feed cannot be used at all
    ├── MissingFileError       a required file is absent (names every missing one)
    ├── FeedTooLargeError      the zip would inflate beyond the configured cap
    ├── LineTooLongError       a CSV line is longer than ``max_line_bytes``
    └── CacheFormatError       a saved timetable is unreadable or from another format version

A broken row is not an exception: it becomes a :class:`LoadIssue` and the load goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


class GtfsError(Exception):
    """The feed cannot be turned into a timetable."""


class MissingFileError(GtfsError):
    """One or more required files are absent from the zip."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__("GTFS feed is missing required file(s): " + ", ".join(missing))


class FeedTooLargeError(GtfsError):
    """The feed inflates beyond ``max_uncompressed_bytes`` (zip-bomb guard)."""


class LineTooLongError(GtfsError):
    """A line of a table is longer than ``max_line_bytes``: the read stops there.

    Without the cap a hostile line (a 1.5 MB zip whose stop_times.txt is one 1.5 GB line)
    would be gathered whole before any row could be cut from it.
    """

    def __init__(self, file: str, line: int, cap: int) -> None:
        self.file = file
        self.line = line
        self.cap = cap
        super().__init__(
            f"{file} line {line} is longer than {cap} bytes (max_line_bytes); "
            "raise max_line_bytes if the feed really has lines that long"
        )


class CacheFormatError(GtfsError):
    """A saved timetable cannot be loaded (corrupt, or written by another format version)."""


@dataclass(frozen=True, slots=True)
class LoadIssue:
    """One problem found while loading: where it is, and what was done about it."""

    file: str
    line: int | None
    code: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.code}: {self.message}"


@dataclass
class IssueLog:
    """Collects issues, keeping every count but only the first ``max_kept`` details.

    A badly broken 10 M-row file must not turn into 10 M issue objects.
    """

    max_kept: int = 1000
    issues: list[LoadIssue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        file: str,
        line: int | None,
        code: str,
        message: str,
        severity: Severity = "error",
    ) -> None:
        """Record one issue."""
        self.counts[code] += 1
        if len(self.issues) < self.max_kept:
            self.issues.append(LoadIssue(file, line, code, message, severity))

    def add_rows(
        self,
        file: str,
        lines: Sequence[int],
        rows: Sequence[int],
        code: str,
        describe: Callable[[int], str],
        severity: Severity = "error",
    ) -> None:
        """Record one issue per row index in ``rows``; details only while there is room."""
        room = max(0, self.max_kept - len(self.issues))
        for row in rows[:room]:
            self.add(file, int(lines[row]), code, describe(int(row)), severity)
        if len(rows) > room:
            self.counts[code] += len(rows) - room

    @property
    def total(self) -> int:
        """Number of issues seen, including those whose details were not kept."""
        return sum(self.counts.values())

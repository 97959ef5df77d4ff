"""GTFS static timetable engine: zip bytes in, compact numpy timetable out, fast queries.

Pure code, no I/O beyond reading the given zip or cache file; the connector and HTTP
wiring live elsewhere and namespace the native ids this package keeps.

>>> tt = compile_feed(zip_bytes)                        # doctest: +SKIP
>>> tt.departures("STOP_1", datetime.now(UTC)).departures  # doctest: +SKIP
"""

from .compile import compile_feed, content_hash
from .departures import Departure, DepartureBoard, Explanation, Frequency
from .errors import (
    CacheFormatError,
    FeedTooLargeError,
    GtfsError,
    LineTooLongError,
    LoadIssue,
    MissingFileError,
)
from .modes import mode_name
from .patterns import RouteDirection
from .search import normalize_words
from .store import load_if_current
from .timetable import FORMAT_VERSION, Timetable

__all__ = [
    "FORMAT_VERSION",
    "CacheFormatError",
    "Departure",
    "DepartureBoard",
    "Explanation",
    "FeedTooLargeError",
    "Frequency",
    "GtfsError",
    "LineTooLongError",
    "LoadIssue",
    "MissingFileError",
    "RouteDirection",
    "Timetable",
    "compile_feed",
    "content_hash",
    "load_if_current",
    "mode_name",
    "normalize_words",
]

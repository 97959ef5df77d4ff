"""GTFS-realtime engine: protobuf bytes in, a resolved state out, merged into static boards.

Pure code (no I/O, no clock: callers pass ``now``); the connector and HTTP routes live
elsewhere. Matching rules and their provenance are in :mod:`.trips` and :mod:`.matching`,
feed semantics in :mod:`.state`.

>>> feed = RealtimeFeed(timetable)                                  # doctest: +SKIP
>>> feed.ingest("trip-updates", body, received_at=time.time())      # doctest: +SKIP
>>> realtime_departures(timetable, feed.state, "STOP", at, now)     # doctest: +SKIP
"""

from .alerts import entity_matches, filter_alerts
from .counters import FeedCounters
from .decode import FeedDecodeError, FeedHeader, decode_feed, entity_kinds, read_header
from .matching import MatchError, RunMatch, resolve_run
from .merge import (
    DEFAULT_ON_TIME_S,
    RealtimeBoard,
    RealtimeDeparture,
    merge_board,
    realtime_departures,
)
from .model import (
    AlertRealtime,
    InformedEntity,
    RealtimeCall,
    TranslatedText,
    TripRealtime,
    VehicleRealtime,
)
from .state import (
    DEFAULT_ALERTS_STALE_AFTER_S,
    DEFAULT_STALE_AFTER_S,
    IngestResult,
    RealtimeFeed,
    RealtimeState,
    Staleness,
    state_from_messages,
)

__all__ = [
    "DEFAULT_ALERTS_STALE_AFTER_S",
    "DEFAULT_ON_TIME_S",
    "DEFAULT_STALE_AFTER_S",
    "AlertRealtime",
    "FeedCounters",
    "FeedDecodeError",
    "FeedHeader",
    "InformedEntity",
    "IngestResult",
    "MatchError",
    "RealtimeBoard",
    "RealtimeCall",
    "RealtimeDeparture",
    "RealtimeFeed",
    "RealtimeState",
    "RunMatch",
    "Staleness",
    "TranslatedText",
    "TripRealtime",
    "VehicleRealtime",
    "decode_feed",
    "entity_kinds",
    "entity_matches",
    "filter_alerts",
    "merge_board",
    "read_header",
    "realtime_departures",
    "resolve_run",
    "state_from_messages",
]

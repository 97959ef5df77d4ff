"""The ``gtfs`` connector type: a GTFS static zip, compiled into a :class:`Timetable`.

::

    - id: ilevia                         # namespaces every stop, line and trip id
      type: gtfs
      url: https://media.ilevia.fr/opendata/gtfs.zip
      refresh: 6h
      cache_dir: /var/cache/beffroi      # optional: keep compiled timetables across restarts
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from aggregator.api.features_layers import FeatureKind
from aggregator.config.models import UrlConnectorConfig
from aggregator.config.types import ByteSize, Duration, Schedule
from aggregator.connector import UrlConnector
from aggregator.freshness import ContentStale, StaleReason
from aggregator.model import ParseResult, Snapshot

from .compile import compile_feed, content_hash
from .errors import CacheFormatError
from .reader import DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_UNCOMPRESSED_BYTES
from .store import load_if_current
from .timetable import Timetable

log = logging.getLogger(__name__)

#: Load issues listed in a source's status; the counts by kind are always complete.
ISSUES_SHOWN = 50


#: Feeds from this size on say how their load is going (a city's feed takes seconds).
PROGRESS_FROM_BYTES = 5_000_000


class LoadProgress:
    """Logs a big feed's load every 10 % of stop_times.txt, then the compile step."""

    def __init__(self, source_id: str, size: int) -> None:
        self._source_id = source_id
        self._quiet = size < PROGRESS_FROM_BYTES
        self._next = 0.1

    def __call__(self, step: str, share: float) -> None:
        if self._quiet:
            return
        if step == "compile":
            log.info("gtfs %s: stop_times.txt read; compiling the timetable", self._source_id)
        elif share >= self._next:
            log.info("gtfs %s: reading stop_times.txt, %d%%", self._source_id, share * 100)
            self._next = (int(share * 10) + 1) / 10


class GtfsConfig(UrlConnectorConfig):
    """A GTFS static feed; big national feeds need the larger caps."""

    refresh: Schedule = Schedule.every(6 * 3600)
    timeout: Duration = 300.0
    max_bytes: ByteSize = 500_000_000
    #: Zip-bomb guard: the feed may inflate to at most this much.
    max_uncompressed_bytes: ByteSize = DEFAULT_MAX_UNCOMPRESSED_BYTES
    #: Longest line a table may have: a hostile endless line stops the load at this size.
    max_line_bytes: ByteSize = Field(default=DEFAULT_MAX_LINE_BYTES, ge=1024)
    #: Where compiled timetables are kept, keyed by the zip's content hash; relative paths are
    #: resolved against the config file's folder. Unset: compile at every start.
    cache_dir: str | None = Field(default=None)
    #: Extra trips.txt columns to keep, for a realtime source whose trip_id_convention
    #: refers to them (e.g. a route/direction code a producer puts in its own trip ids).
    keep_trip_columns: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list
    )


class GtfsConnector(UrlConnector[GtfsConfig]):
    """Fetches a GTFS zip and compiles it; a broken feed keeps the previous timetable."""

    type_name = "gtfs"
    config_model = GtfsConfig

    def _cache_path(self, digest: str) -> Path | None:
        if self.config.cache_dir is None:
            return None
        folder = Path(self.config.cache_dir)
        if not folder.is_absolute() and self.context.base_dir is not None:
            folder = self.context.base_dir / folder
        return folder / f"{self.config.id}-{digest[:16]}.npz"

    def parse(self, payload: bytes) -> ParseResult:
        digest = content_hash(payload)
        cache = self._cache_path(digest)
        timetable = None
        if cache is not None and cache.exists():
            try:
                timetable = load_if_current(cache, digest)
            except CacheFormatError as exc:
                log.warning("gtfs %s: ignoring unreadable cache %s: %s", self.config.id, cache, exc)
            if timetable is not None and set(timetable.trip_extra) != set(
                self.config.keep_trip_columns
            ):
                timetable = None  # compiled with other columns kept: compile again
        cached = timetable is not None
        if timetable is None:
            started = time.monotonic()
            timetable = compile_feed(
                payload,
                max_uncompressed_bytes=self.config.max_uncompressed_bytes,
                max_line_bytes=self.config.max_line_bytes,
                progress=LoadProgress(self.config.id, len(payload)),
                keep_trip_columns=self.config.keep_trip_columns,
            )
            if len(payload) >= PROGRESS_FROM_BYTES:
                log.info(
                    "gtfs %s: timetable ready: %d stop_times in %.1fs",
                    self.config.id,
                    len(timetable.st_stop),
                    time.monotonic() - started,
                )
            timetable.source_hash = digest
            if cache is not None:
                self._save(timetable, cache)
        if cache is not None:
            self._prune_superseded(cache)
        counts = timetable.counts
        return ParseResult(
            data=timetable,
            record_count=counts["stop_times"],
            issues=tuple(str(issue) for issue in timetable.issues[:ISSUES_SHOWN]),
            issue_total=counts["issues"],
            stats={
                **counts,
                "valid_from": _iso(timetable.feed_start_date),
                "valid_until": _iso(timetable.feed_end_date),
                "issues_by_kind": dict(timetable.issue_counts),
                "from_cache": cached,
            },
        )

    def _save(self, timetable: Timetable, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            timetable.save(str(path))
        except OSError as exc:
            # The cache only saves time at the next start; serving goes on without it.
            log.warning("gtfs %s: cannot write cache %s: %s", self.config.id, path, exc)

    def _prune_superseded(self, current: Path) -> None:
        """Delete this source's compiled timetables of earlier feeds: each new feed left one
        more file (tens of MB for a metropolis) in the cache for ever. Another process still
        reading one keeps its open file; one about to read it compiles again."""
        own = re.compile(rf"{re.escape(self.config.id)}-[0-9a-f]{{16}}\.npz")
        try:
            superseded = [
                path
                for path in current.parent.iterdir()
                if path != current and own.fullmatch(path.name)
            ]
            for path in superseded:
                path.unlink(missing_ok=True)
                log.info("gtfs %s: removed the superseded cache %s", self.config.id, path.name)
        except OSError as exc:
            log.warning("gtfs %s: cannot prune the cache: %s", self.config.id, exc)

    @classmethod
    def records(cls, snapshot: Snapshot) -> None:
        """A timetable has no flat record list; its endpoints are /v1/stops, /v1/lines..."""
        return None

    @classmethod
    def located_points(cls, snapshot: Snapshot) -> tuple[Any, Any]:
        """Where its stops are (the communes a timetable covers are its stops')."""
        timetable: Timetable = snapshot.data
        return timetable.stop_lon, timetable.stop_lat

    @classmethod
    def content_staleness(cls, snapshot: Snapshot, now: dt.datetime) -> ContentStale | None:
        """Expired once its last service day is over in the agency's zone: every board would
        then explain ``outside_feed_validity``. A feed whose service has not begun yet is not
        stale (it was published ahead, as the demo's 2026 ferries are)."""
        timetable: Timetable = snapshot.data
        end = timetable.feed_end_date
        if end is None:
            return None
        zone = timetable.zones[0] if timetable.zones else dt.UTC
        if now.astimezone(zone).date() <= end:
            return None
        return ContentStale(
            StaleReason.CONTENT_EXPIRED,
            f"the timetable's last service day was {end.isoformat()}",
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone),
        )

    @classmethod
    def index_builders(cls) -> Mapping[str, Callable[[Snapshot], Any]]:
        from .views import warm_indexes

        return {"warm": warm_indexes}

    @classmethod
    def has_topic(cls, snapshot: Snapshot, kind: str, native_id: str) -> bool:
        timetable: Timetable = snapshot.data
        if kind == "line":
            return native_id in timetable.route_index
        return kind == "stop" and native_id in timetable.stop_index

    @classmethod
    def register_routes(cls, router: Any) -> None:
        from .routes import register_transit_routes

        register_transit_routes(router)

    @classmethod
    def feature_kind(cls) -> FeatureKind:
        from .features import STOPS

        return STOPS


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None

"""The ``gtfs_rt`` connector type: GTFS-realtime feeds merged into one static timetable.

::

    - id: ilevia-rt
      type: gtfs_rt
      feed: ilevia                  # the gtfs source whose trips and stops these refer to
      urls:                         # one URL carrying all entity types, or one per type
        - https://proxy.transport.data.gouv.fr/resource/ilevia-lille-gtfs-rt
      refresh: 20s
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from aggregator.config.models import ConnectorConfig, check_source_url
from aggregator.config.types import Duration, Schedule
from aggregator.connector import Connector, DependencyNotReady
from aggregator.fetch import Fetcher
from aggregator.fetch_result import FetchResult, Validators
from aggregator.freshness import ContentStale, StaleReason, describe_age
from aggregator.model import ParseResult, Snapshot
from aggregator.notify.notice import Notice, TimedNotices
from connectors.gtfs.timetable import Timetable

from .conventions import TripIdConventionConfig
from .decode import BodyFormat, decode_body
from .descriptors import MatchRules
from .state import RealtimeFeed, RealtimeState

_FRAME = struct.Struct(">HI")  # url index, body length


class GtfsRtConfig(ConnectorConfig):
    """GTFS-realtime URLs for one static feed; freshness limits from GTFS-RT best practice."""

    feed: str
    urls: list[Annotated[str, AfterValidator(check_source_url)]] = Field(min_length=1)
    refresh: Schedule = Schedule.every(20)
    timeout: Duration = 15.0
    #: Trip updates and vehicle positions older than this fall back to the schedule.
    max_age: Duration = 90.0
    #: Alerts older than this are no longer shown.
    alerts_max_age: Duration = 600.0
    #: Language of translations that carry no tag (default: the agency's agency_lang).
    language: str | None = None
    #: Within this many seconds of the schedule, a departure is "on_time".
    on_time_threshold: Duration = 60.0
    #: ``json`` for producers publishing protobuf's JSON mapping; ``auto`` reads either.
    format: BodyFormat = "auto"
    #: Take start_date as sent: never read a late-dated update as the day before's run.
    strict_start_date: bool = False
    #: How this producer writes trip ids when not as the static feed does (see OPERATING.md).
    trip_id_convention: TripIdConventionConfig | None = None

    def source_urls(self) -> dict[tuple[str | int, ...], str]:
        return {("urls", index): url for index, url in enumerate(self.urls)}

    def referenced_sources(self) -> dict[str, tuple[str, str]]:
        return {"feed": (self.feed, "gtfs")}


@dataclass(frozen=True)
class RealtimeData:
    """A gtfs_rt snapshot: the state, and the timetable it was resolved against."""

    feed: str
    timetable: Timetable
    state: RealtimeState
    on_time_threshold_s: int


def frame(index: int, body: bytes) -> bytes:
    """One URL's body in a poll's payload: the URL's index in the config, length, bytes."""
    return _FRAME.pack(index, len(body)) + body


def _frames(payload: bytes) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    while offset < len(payload):
        index, size = _FRAME.unpack_from(payload, offset)
        offset += _FRAME.size
        out.append((index, payload[offset : offset + size]))
        offset += size
    return out


class GtfsRtConnector(Connector[GtfsRtConfig]):
    """Polls every URL of the source, then resolves the messages against the timetable."""

    type_name = "gtfs_rt"
    config_model = GtfsRtConfig

    def __init__(self, config: GtfsRtConfig, context: Any) -> None:
        super().__init__(config, context)
        # Per URL, what the last *parsed* poll received. A fetch proposes new ones; parse
        # commits them only when the payload was usable, so a corrupt body sent with an
        # ETag is fetched (and refused) again instead of being answered 304.
        self._validators: dict[str, Validators] = {}
        self._bodies: dict[str, bytes] = {}
        self._proposed: tuple[dict[str, Validators], dict[str, bytes]] | None = None
        self._feed: RealtimeFeed | None = None
        # parse runs in a worker thread; polls of one source never overlap, but be explicit.
        self._lock = threading.Lock()

    async def fetch(self, fetcher: Fetcher, validators: Validators | None) -> FetchResult:
        """Fetch every URL (conditionally); the payload frames each body with its URL index."""
        started = time.monotonic()
        attempts, unchanged, parts = 0, True, []
        validators_now, bodies_now = dict(self._validators), dict(self._bodies)
        for index, url in enumerate(self.config.urls):
            result = await fetcher.fetch(
                url,
                timeout=self.config.timeout,
                max_bytes=self.config.max_bytes,
                headers=self.config.headers,
                validators=self._validators.get(url) if url in self._bodies else None,
                retries=self.config.retries,
                base_dir=self.context.base_dir,
                allow_file=self.context.allow_file_urls,
                redactor=self.context.redactor,
            )
            attempts += result.attempts
            if not result.not_modified:
                unchanged = False
                bodies_now[url] = result.body
                validators_now[url] = result.validators
            body = bodies_now[url]
            parts.append(frame(index, body))
        payload = b"".join(parts)
        self._proposed = (validators_now, bodies_now)
        return FetchResult(
            url=self.context.redactor.redact_url(self.config.urls[0]),
            not_modified=unchanged,
            body=b"" if unchanged else payload,
            content_type="application/x-protobuf",
            validators=Validators(),
            status=304 if unchanged else 200,
            attempts=attempts,
            elapsed=time.monotonic() - started,
            content_hash="" if unchanged else hashlib.sha256(payload).hexdigest(),
        )

    def parse(self, payload: bytes) -> ParseResult:
        # Decode everything first: a corrupt body fails the poll before any state changes.
        messages = []
        for index, body in _frames(payload):
            message, raw = decode_body(body, self.config.format, max_bytes=self.config.max_bytes)
            messages.append((index, raw, message))
        snapshot = self.context.snapshot_of(self.config.feed)
        if snapshot is None:
            raise DependencyNotReady(f"waiting for the timetable of source {self.config.feed!r}")
        timetable: Timetable = snapshot.data
        now = self.context.clock.now().timestamp()
        issues = []
        convention = self.config.trip_id_convention
        with self._lock:
            feed = self._feed
            if feed is None:
                feed = self._feed = RealtimeFeed(
                    timetable,
                    default_language=self.config.language or "",
                    stale_after_s=self.config.max_age,
                    alerts_stale_after_s=self.config.alerts_max_age,
                    rules=MatchRules(
                        strict_start_date=self.config.strict_start_date,
                        convention=convention.compile() if convention else None,
                    ),
                )
            elif feed.timetable is not timetable:
                feed.set_timetable(timetable)
            for index, body, message in messages:
                name = self.context.redactor.redact_url(self.config.urls[index])
                outcome = feed.ingest(name, message, received_at=now, raw=body)
                if not outcome.accepted:
                    issues.append(f"{name}: {outcome.reason}")
            state = feed.state
            if self._proposed is not None:
                self._validators, self._bodies = self._proposed
                self._proposed = None
        counters = state.counters.as_dict()
        unmatched = state.counters.unmatched_total
        if counters["matched"] == 0 and unmatched > 0:
            issues.append(
                f"no trip update matches a trip of {self.config.feed!r} "
                f"({unmatched} unmatched): is this feed for another network?"
            )
        elif unmatched > counters["matched"]:
            issues.append(
                f"most trip updates match no trip of {self.config.feed!r} "
                f"({unmatched} unmatched, {counters['matched']} matched)"
            )
        return ParseResult(
            data=RealtimeData(
                self.config.feed, timetable, state, int(self.config.on_time_threshold)
            ),
            record_count=len(state.trips)
            + len(state.extra_trips)
            + len(state.vehicles)
            + len(state.alerts),
            issues=tuple(issues),
            stats=counters,
        )

    @classmethod
    def records(cls, snapshot: Snapshot) -> None:
        return None

    @classmethod
    def live_status(cls, snapshot: Snapshot, now: datetime) -> Mapping[str, Any]:
        data: RealtimeData = snapshot.data
        staleness = data.state.staleness(now.timestamp())
        return {
            "trip_updates_age_s": _round(staleness.trip_updates_age_s),
            "vehicles_age_s": _round(staleness.vehicles_age_s),
            "alerts_age_s": _round(staleness.alerts_age_s),
            "trip_updates_stale": staleness.trip_updates_stale,
            "vehicles_stale": staleness.vehicles_stale,
            "alerts_stale": staleness.alerts_stale,
        }

    @classmethod
    def content_staleness(cls, snapshot: Snapshot, now: datetime) -> ContentStale | None:
        """Outdated when a kind the feed provides is older than its limit (``max_age``, or
        ``alerts_max_age``): boards then show the schedule, exactly as the merge does."""
        data: RealtimeData = snapshot.data
        state = data.state
        staleness = state.staleness(now.timestamp())
        old = [
            (kind, age, limit)
            for kind, age, stale, limit in (
                (
                    "trip updates",
                    staleness.trip_updates_age_s,
                    staleness.trip_updates_stale,
                    state.stale_after_s,
                ),
                (
                    "vehicle positions",
                    staleness.vehicles_age_s,
                    staleness.vehicles_stale,
                    state.stale_after_s,
                ),
                (
                    "alerts",
                    staleness.alerts_age_s,
                    staleness.alerts_stale,
                    state.alerts_stale_after_s,
                ),
            )
            if stale and age is not None
        ]
        if not old:
            return None
        detail = ", ".join(
            f"{kind} are {describe_age(age)} old (limit {describe_age(limit)})"
            for kind, age, limit in old
        )
        newest = min(age for _, age, _ in old)
        return ContentStale(
            StaleReason.CONTENT_OUTDATED,
            f"the feed's {detail}",
            datetime.fromtimestamp(now.timestamp() - newest, now.tzinfo),
        )

    @classmethod
    def index_builders(cls) -> Mapping[str, Callable[[Snapshot], Any]]:
        return {}

    @classmethod
    def notices(cls, snapshot: Snapshot) -> list[Notice]:
        from .notices import alert_notices

        return alert_notices(snapshot.data)

    @classmethod
    def timed_notices(cls, snapshot: Snapshot, now: datetime) -> TimedNotices:
        from .cancellations import cancellation_notices

        return cancellation_notices(snapshot.data, now)

    @classmethod
    def register_routes(cls, router: Any) -> None:
        from .routes import register_realtime_routes

        register_realtime_routes(router)


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None

"""Feed semantics (sources, FULL_DATASET / DIFFERENTIAL, timestamps) and the merged state.

A :class:`RealtimeFeed` is fed FeedMessages from one or more *sources* (URLs); each message is
checked, applied to its source, and turned into records once. :attr:`RealtimeFeed.state` is an
immutable :class:`RealtimeState` the boards read; the connector swaps it in atomically.

Supported semantics:

- FULL_DATASET replaces everything that source said before (OTP clears its buffer too).
- DIFFERENTIAL (still experimental in the spec): entities are upserted by entity id and
  ``is_deleted`` removes one; the header timestamp rules are the same.
- A header timestamp older than the last accepted one of the same source is ignored
  (load balancers serve old copies: google/transit PR#55); an equal one is accepted.
- Staleness is judged when reading, against ``now``: a source whose header timestamp (when it
  is absent or 0: its newest entity timestamp; without any: when its body last changed, so a
  frozen producer answering every poll with the same bytes still ages) is older than
  ``stale_after_s`` (90 s, the best practice of gtfs-realtime-validator#161) gives no trip
  updates or vehicles, alerts older than ``alerts_stale_after_s`` (10 min) none; boards then
  fall back to the schedule and say so.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from google.transit import gtfs_realtime_pb2 as pb

from aggregator.live import collection_paused

from .alerts import filter_alerts
from .counters import MAX_EXAMPLES, FeedCounters
from .decode import FeedHeader, decode_feed, entity_kinds, read_header
from .descriptors import DEFAULT_RULES, MatchRules
from .model import AlertRealtime, RealtimeCall, TripRealtime, VehicleRealtime
from .part import RunKey, SourcePart, build_part
from .wire import WireRef, decode_updates

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

DEFAULT_STALE_AFTER_S = 90
DEFAULT_ALERTS_STALE_AFTER_S = 600


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one message."""

    accepted: bool
    #: Why it was not accepted (``"ignored: timestamp went backwards"``), else None.
    reason: str | None
    header: FeedHeader
    message: pb.FeedMessage = field(repr=False)

    @property
    def kinds(self) -> dict[str, int]:
        """How many entities of each kind the message holds; counted when asked (for a big
        feed that costs milliseconds the apply itself does not need)."""
        return dict(entity_kinds(self.message))


@dataclass(frozen=True)
class Staleness:
    """Freshness of each kind of data at one instant."""

    #: Age (s) of the freshest source of each kind, None when no source has that kind.
    trip_updates_age_s: float | None
    vehicles_age_s: float | None
    alerts_age_s: float | None
    trip_updates_stale: bool
    vehicles_stale: bool
    alerts_stale: bool


class RealtimeState:
    """Immutable merged view of all sources; safe to read while a new one is being built."""

    def __init__(
        self,
        parts: Iterable[SourcePart] = (),
        *,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        alerts_stale_after_s: float = DEFAULT_ALERTS_STALE_AFTER_S,
    ) -> None:
        self.parts: dict[str, SourcePart] = {p.source: p for p in parts}
        self.stale_after_s = stale_after_s
        self.alerts_stale_after_s = alerts_stale_after_s
        self.trips: dict[RunKey, TripRealtime] = {}
        self.extra_trips: list[TripRealtime] = []
        self.vehicles: dict[str, VehicleRealtime] = {}
        self.alerts: dict[str, AlertRealtime] = {}
        for p in self.parts.values():
            self.trips.update(p.trips)
            self.extra_trips.extend(p.extra_trips)
            self.vehicles.update(p.vehicles)
            self.alerts.update(p.alerts)
        #: Added/duplicated calls by stop index, for boards.
        self.extra_by_stop: dict[int, list[tuple[TripRealtime, RealtimeCall]]] = {}
        for trip in self.extra_trips:
            for call in trip.calls:
                if call.stop_index >= 0:
                    self.extra_by_stop.setdefault(call.stop_index, []).append((trip, call))
        self.vehicle_by_run: dict[RunKey, VehicleRealtime] = {
            (v.run, v.service_date.toordinal()): v
            for v in self.vehicles.values()
            if v.run is not None and v.service_date is not None
        }
        # How far realtime moves calls: boards widen their static query by this much. Taken
        # per source: a trip another source overrides may widen it a little more, harmless
        # (the board filters on expected times) and it spares a pass over every call.
        self.max_late_s = max((p.delay_range[0] for p in self.parts.values()), default=0)
        self.max_early_s = max((p.delay_range[1] for p in self.parts.values()), default=0)

    def with_alert_parts(self, parts: Iterable[SourcePart]) -> RealtimeState:
        """This state plus sources that bring alerts only (``mapped_alerts``).

        A shallow copy: trips, vehicles and the board indexes are shared, not rebuilt, so
        adding a few alerts to a big feed's state costs what the alerts cost.
        """
        merged = copy.copy(self)
        merged.parts = dict(self.parts)
        merged.alerts = dict(self.alerts)
        for part in parts:
            merged.parts[part.source] = part
            merged.alerts.update(part.alerts)
        return merged

    # ------------------------------------------------------------------ freshness
    def source_fresh(self, source: str, now: float, alerts: bool = False) -> bool:
        """Whether ``source``'s data is recent enough to be shown at ``now``."""
        part = self.parts.get(source)
        if part is None:
            return False
        if alerts:
            limit = self.alerts_stale_after_s
            if part.alerts_max_age_s is not None:
                limit = part.alerts_max_age_s
        else:
            limit = self.stale_after_s
        return now - part.as_of <= limit

    def staleness(self, now: float) -> Staleness:
        """Per kind: age of the freshest source providing it, and whether that is stale."""

        def age(kind: str) -> float | None:
            ages = [now - p.as_of for p in self.parts.values() if _provides(p, kind)]
            return min(ages) if ages else None

        tu, ve, al = age("trips"), age("vehicles"), age("alerts")
        return Staleness(
            tu,
            ve,
            al,
            tu is not None and tu > self.stale_after_s,
            ve is not None and ve > self.stale_after_s,
            al is not None and al > self.alerts_stale_after_s,
        )

    # ------------------------------------------------------------------ reads
    def trip(self, run: int, ordinal: int, now: float) -> TripRealtime | None:
        """The fresh update of a run on a service day, if any."""
        trip = self.trips.get((run, ordinal))
        if trip is None or not self.source_fresh(trip.source, now):
            return None
        return trip

    def vehicle_of(self, run: int, ordinal: int, now: float) -> VehicleRealtime | None:
        """The fresh vehicle position serving a run on a service day."""
        v = self.vehicle_by_run.get((run, ordinal))
        if v is None or not self.source_fresh(v.source, now):
            return None
        return v

    def fresh_vehicles(self, now: float, max_age_s: float | None = None) -> list[VehicleRealtime]:
        """Vehicles of fresh sources, minus those whose own timestamp is older than max_age_s."""
        limit = self.stale_after_s if max_age_s is None else max_age_s
        return [
            v
            for v in self.vehicles.values()
            if self.source_fresh(v.source, now)
            and (v.timestamp is None or now - v.timestamp <= limit)
        ]

    def active_alerts(
        self,
        now: float,
        *,
        at: float | None = None,
        route_id: str | None = None,
        stop_id: str | None = None,
        trip_id: str | None = None,
    ) -> list[AlertRealtime]:
        """Alerts of fresh sources active at ``at`` (default ``now``), optionally filtered."""
        fresh = (a for a in self.alerts.values() if self.source_fresh(a.source, now, alerts=True))
        return filter_alerts(
            fresh,
            active_at=now if at is None else at,
            route_id=route_id,
            stop_id=stop_id,
            trip_id=trip_id,
        )

    @property
    def counters(self) -> FeedCounters:
        """All sources' counters added up (example lists concatenated, then truncated)."""
        total = FeedCounters()
        for p in self.parts.values():
            for f in fields(FeedCounters):
                mine, theirs = getattr(total, f.name), getattr(p.counters, f.name)
                if isinstance(mine, list):
                    mine.extend(theirs[: MAX_EXAMPLES - len(mine)])
                else:
                    setattr(total, f.name, mine + theirs)
        return total


def _provides(part: SourcePart, kind: str) -> bool:
    c = part.counters
    if kind == "trips":
        return c.trip_updates > 0
    if kind == "vehicles":
        return c.vehicles > 0
    return c.alerts > 0


@dataclass
class _Source:
    header: FeedHeader
    received_at: float
    entities: dict[str, pb.FeedEntity]
    #: A digest of the body, and when a body with another digest last came.
    digest: bytes
    changed_at: float
    #: Entity key → its updates decoded from the bytes (absent: read through the accessors).
    wire: dict[str, WireRef] = field(default_factory=dict)
    part: SourcePart | None = None

    def wire_refs(self) -> list[WireRef | None]:
        """Per entity, in order, its decoded updates or None."""
        return [self.wire.get(key) for key in self.entities]


class RealtimeFeed:
    """Accepts messages per source and keeps the current :class:`RealtimeState`.

    Not thread-safe for writers (one poller per feed); readers only touch :attr:`state`,
    which is replaced, never mutated.
    """

    def __init__(
        self,
        timetable: Timetable,
        *,
        default_language: str = "",
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        alerts_stale_after_s: float = DEFAULT_ALERTS_STALE_AFTER_S,
        rules: MatchRules = DEFAULT_RULES,
    ) -> None:
        self.timetable = timetable
        self.rules = rules
        # An untagged translation is in the feed's language: the agency's, unless told.
        self.default_language = default_language or next(
            (lang for lang in timetable.agency_langs if lang), ""
        )
        self.stale_after_s = stale_after_s
        self.alerts_stale_after_s = alerts_stale_after_s
        self._sources: dict[str, _Source] = {}
        self.state = RealtimeState(
            stale_after_s=stale_after_s, alerts_stale_after_s=alerts_stale_after_s
        )

    def ingest(
        self,
        source: str,
        message: bytes | pb.FeedMessage,
        received_at: float,
        *,
        raw: bytes | None = None,
    ) -> IngestResult:
        """Apply one message from ``source``; bytes are decoded (FeedDecodeError if corrupt).

        ``raw``: when ``message`` is already decoded, the bytes it was decoded from. Pass them
        whenever you have them: the updates are then read from the bytes in bulk (see
        :mod:`.wire`), which for a big feed is most of the apply's speed.
        """
        if isinstance(message, bytes | bytearray):
            raw, msg = message, decode_feed(message)
        else:
            msg = message
        header = read_header(msg)
        previous = self._sources.get(source)
        if (
            previous is not None
            and previous.header.timestamp is not None
            and header.timestamp is not None
            and header.timestamp < previous.header.timestamp
        ):
            return IngestResult(False, "ignored: timestamp went backwards", header, msg)
        if header.incrementality == "differential" and previous is not None:
            entities = dict(previous.entities)
            wire = dict(previous.wire)
        else:
            entities = {}
            wire = {}
        # The trip updates' stop_time_updates, decoded from the bytes in bulk (see .wire).
        decoded = decode_updates(raw, len(msg.entity)) if raw is not None else None
        for i, entity in enumerate(msg.entity):
            key = entity.id or f"#{i}"
            if header.incrementality == "differential" and entity.is_deleted:
                entities.pop(key, None)
                wire.pop(key, None)
                continue
            if key in entities and header.incrementality == "full_dataset":
                key = f"{key}#{i}"  # duplicate ids in a full dataset: keep both, not last-wins
            entities[key] = entity
            if decoded is not None:
                wire[key] = (decoded, i)
            else:
                wire.pop(key, None)
        digest = hashlib.blake2b(raw or msg.SerializeToString(), digest_size=16).digest()
        changed_at = (
            previous.changed_at
            if previous is not None and previous.digest == digest
            else received_at
        )
        src = _Source(header, received_at, entities, digest, changed_at, wire)
        with collection_paused():  # what it builds lives until the next message
            src.part = build_part(
                self.timetable,
                source,
                header,
                received_at,
                entities.values(),
                self.default_language,
                src.wire_refs(),
                self.rules,
            )
            src.part.changed_at = changed_at
        self._sources[source] = src
        self._publish()
        return IngestResult(True, None, header, msg)

    def set_timetable(self, timetable: Timetable) -> None:
        """A new static feed: re-resolve every source against it."""
        self.timetable = timetable
        for name, src in self._sources.items():
            src.part = build_part(
                timetable,
                name,
                src.header,
                src.received_at,
                src.entities.values(),
                self.default_language,
                src.wire_refs(),
                self.rules,
            )
            src.part.changed_at = src.changed_at
        self._publish()

    def forget(self, source: str) -> None:
        """Drop a source (removed from config)."""
        self._sources.pop(source, None)
        self._publish()

    def _publish(self) -> None:
        self.state = RealtimeState(
            (s.part for s in self._sources.values() if s.part is not None),
            stale_after_s=self.stale_after_s,
            alerts_stale_after_s=self.alerts_stale_after_s,
        )


def state_from_messages(
    timetable: Timetable,
    messages: Mapping[str, bytes | pb.FeedMessage] | Iterable[bytes | pb.FeedMessage],
    *,
    received_at: float = 0.0,
    default_language: str = "",
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    alerts_stale_after_s: float = DEFAULT_ALERTS_STALE_AFTER_S,
    rules: MatchRules = DEFAULT_RULES,
) -> RealtimeState:
    """One-shot: a state from messages (a mapping names the sources, else ``"0"``, ``"1"``...)."""
    feed = RealtimeFeed(
        timetable,
        default_language=default_language,
        stale_after_s=stale_after_s,
        alerts_stale_after_s=alerts_stale_after_s,
        rules=rules,
    )
    items = messages.items() if isinstance(messages, Mapping) else enumerate(messages)
    for name, msg in items:
        feed.ingest(str(name), msg, received_at)
    return feed.state

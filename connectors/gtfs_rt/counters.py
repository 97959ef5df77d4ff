"""Per-feed counters, OneBusAway-style: what matched, what did not, and a few examples why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: How many example ids/reasons are kept per list: enough to debug, small enough to publish.
MAX_EXAMPLES = 10


@dataclass
class FeedCounters:
    """Counts gathered while building one :class:`~connectors.gtfs_rt.state.RealtimeState`."""

    entities: int = 0
    trip_updates: int = 0
    #: Trip updates resolved to a static run and service day (incl. cancelled/deleted ones).
    matched: int = 0
    unmatched: int = 0
    unmatched_trip_ids: list[str] = field(default_factory=list)
    added: int = 0
    duplicated: int = 0
    cancelled: int = 0
    deleted: int = 0
    skipped_stops: int = 0
    #: StopTimeUpdates that fit no static stop of their trip (ignored, the rest applied).
    unmatched_stop_updates: int = 0
    #: Trip-level relationships we do not model (UNSCHEDULED, REPLACEMENT): counted, ignored.
    unsupported: int = 0
    vehicles: int = 0
    vehicles_with_trip: int = 0
    alerts: int = 0
    #: Entities removed (DIFFERENTIAL is_deleted) or of kinds we ignore (shape, stop...).
    other_entities: int = 0
    bad_entities: int = 0
    bad_examples: list[str] = field(default_factory=list)
    #: Descriptors without a static trip_id (route + start time, or a producer's own id form)
    #: that fit no run, or several: counted, never guessed.
    unmatched_descriptor: int = 0
    ambiguous_descriptor: int = 0
    descriptor_examples: list[str] = field(default_factory=list)
    #: Updates dated the day after their run's service day, read as that day.
    start_date_corrected: int = 0
    #: DUPLICATED trips without trip_properties.start_time: shown without a schedule.
    duplicated_schedule_unknown: int = 0

    def unmatched_trip(self, trip_id: str) -> None:
        """Count a trip update whose trip is not in the static feed (or not that day)."""
        self.unmatched += 1
        if len(self.unmatched_trip_ids) < MAX_EXAMPLES and trip_id not in self.unmatched_trip_ids:
            self.unmatched_trip_ids.append(trip_id)

    def undescribed(self, name: str, code: str, reason: str) -> None:
        """Count a descriptor of another form that names no run (``unmatched_descriptor``)
        or several (``ambiguous_descriptor``)."""
        if code == "ambiguous_descriptor":
            self.ambiguous_descriptor += 1
        else:
            self.unmatched_descriptor += 1
        if len(self.descriptor_examples) < MAX_EXAMPLES:
            self.descriptor_examples.append(f"{name}: {reason}")

    def bad(self, entity_id: str, reason: str) -> None:
        """Count an entity skipped because it could not be understood."""
        self.bad_entities += 1
        if len(self.bad_examples) < MAX_EXAMPLES:
            self.bad_examples.append(f"{entity_id}: {reason}")

    @property
    def match_ratio(self) -> float | None:
        """Matched share of the trip updates that claim a static trip (None if there are none)."""
        total = self.matched + self.unmatched_total
        return self.matched / total if total else None

    @property
    def unmatched_total(self) -> int:
        """Trip updates that claim a static run and fit none (or several)."""
        return self.unmatched + self.unmatched_descriptor + self.ambiguous_descriptor

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        out = asdict(self)
        out["match_ratio"] = self.match_ratio
        return out

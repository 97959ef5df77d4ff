"""Plain immutable records the realtime state is made of.

Times are POSIX seconds (floats are avoided: the feed speaks whole seconds). Everything keeps
native GTFS ids plus, where resolved, indices into the static :class:`Timetable`.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

#: How one call of a trip stands after applying the feed.
#: ``updated``: a time or delay from the feed (given here or propagated from an earlier stop).
CallStatus = Literal["scheduled", "updated", "skipped", "no_data", "cancelled"]
#: The trip-level schedule_relationship we keep (UNSCHEDULED/REPLACEMENT are counted, not kept).
TripRelationship = Literal["scheduled", "canceled", "deleted", "added", "duplicated"]


class RealtimeCall(NamedTuple):
    """One stop of a trip after the feed was applied.

    A NamedTuple rather than a frozen dataclass: a big feed builds ~100,000 of these per
    poll, and tuple construction is several times cheaper than frozen-dataclass ``__init__``.
    """

    stop_sequence: int
    stop_id: str
    #: Index in the static timetable, -1 when the stop is unknown there.
    stop_index: int
    scheduled_arrival: int | None
    scheduled_departure: int | None
    expected_arrival: int | None
    expected_departure: int | None
    arrival_delay: int | None
    departure_delay: int | None
    status: CallStatus
    #: StopTimeEvent.uncertainty passed on untouched: producers give it different meanings
    #: (MobilityData/transit#18), so it stays opaque.
    uncertainty: int | None = None
    #: True when this call had its own StopTimeUpdate (not propagated).
    explicit: bool = False

    @property
    def realtime(self) -> bool:
        """Whether the feed says something about this call (NO_DATA and untouched: no)."""
        return self.status in ("updated", "skipped", "cancelled")


@dataclass(frozen=True, slots=True)
class TripRealtime:
    """A trip update resolved against the static timetable."""

    entity_id: str
    trip_id: str
    relationship: TripRelationship
    #: Static run index (None for ADDED/NEW trips, which the static feed does not know).
    run: int | None
    #: Static trip index of the trip itself, or of the copied trip for DUPLICATED.
    trip_index: int | None
    service_date: dt.date
    route_id: str | None
    route_index: int | None
    direction_id: int | None
    start_time: str | None
    headsign: str | None
    vehicle_id: str | None
    vehicle_label: str | None
    #: Newest of the entity's and the feed header's timestamps (POSIX seconds).
    timestamp: int | None
    #: The source (URL or name) this came from, for staleness checks per source.
    source: str
    calls: tuple[RealtimeCall, ...]
    _seqs: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_seqs", tuple(c.stop_sequence for c in self.calls))

    def call(self, stop_sequence: int) -> RealtimeCall | None:
        """The call with that stop_sequence (calls are in stop_sequence order)."""
        i = bisect_left(self._seqs, stop_sequence)
        if i < len(self._seqs) and self._seqs[i] == stop_sequence:
            return self.calls[i]
        return None


OccupancyStatus = str


@dataclass(frozen=True, slots=True)
class VehicleRealtime:
    """A vehicle position, with its trip resolved when possible."""

    entity_id: str
    vehicle_id: str | None
    label: str | None
    license_plate: str | None
    trip_id: str | None
    run: int | None
    trip_index: int | None
    service_date: dt.date | None
    route_id: str | None
    route_index: int | None
    direction_id: int | None
    lat: float | None
    lon: float | None
    bearing: float | None
    #: Metres per second, as in the feed.
    speed: float | None
    #: ``incoming_at``, ``stopped_at``, ``in_transit_to`` or None.
    current_status: str | None
    stop_id: str | None
    stop_index: int | None
    current_stop_sequence: int | None
    #: Lower-case GTFS-RT OccupancyStatus name (``many_seats_available``...) or None.
    occupancy: OccupancyStatus | None
    occupancy_percentage: int | None
    timestamp: int | None
    source: str

    @property
    def key(self) -> str:
        """What identifies the vehicle: its id, else the entity id."""
        return self.vehicle_id or self.entity_id


@dataclass(frozen=True, slots=True)
class TranslatedText:
    """A GTFS-RT TranslatedString: language tag → text ("" already replaced by the default)."""

    texts: tuple[tuple[str, str], ...]

    def get(self, languages: str | Sequence[str] | None = None) -> str | None:
        """Text in the first available preferred language (``fr-FR`` also matches ``fr``)."""
        if not self.texts:
            return None
        wanted = [languages] if isinstance(languages, str) else list(languages or [])
        for lang in wanted:
            lang = lang.lower()
            for tag, text in self.texts:
                if tag.lower() == lang:
                    return text
            base = lang.split("-")[0]
            for tag, text in self.texts:
                if tag.lower().split("-")[0] == base:
                    return text
        return self.texts[0][1]

    def as_dict(self) -> dict[str, str]:
        """Language → text."""
        return dict(self.texts)


@dataclass(frozen=True, slots=True)
class InformedEntity:
    """One EntitySelector of an alert; set fields must all match (they narrow each other)."""

    agency_id: str | None = None
    route_id: str | None = None
    route_type: int | None = None
    direction_id: int | None = None
    trip_id: str | None = None
    stop_id: str | None = None
    #: Static indices when the ids resolved (None when absent or unknown).
    agency_index: int | None = None
    route_index: int | None = None
    trip_index: int | None = None
    stop_index: int | None = None


@dataclass(frozen=True, slots=True)
class AlertRealtime:
    """A service alert."""

    alert_id: str
    header: TranslatedText
    description: TranslatedText
    url: TranslatedText
    #: Lower-case enum names: ``construction``, ``detour``, ``warning``...
    cause: str | None
    effect: str | None
    severity: str | None
    #: (start, end) POSIX seconds; None is an open end. Empty: active while in the feed.
    active_periods: tuple[tuple[int | None, int | None], ...]
    informed: tuple[InformedEntity, ...]
    timestamp: int | None
    source: str

    def active_at(self, when: float) -> bool:
        """Whether ``when`` (POSIX) falls in an active period (start inclusive, end exclusive)."""
        if not self.active_periods:
            return True
        return any(
            (start is None or start <= when) and (end is None or when < end)
            for start, end in self.active_periods
        )

"""Plain immutable records the realtime state is made of.

Times are POSIX seconds (floats are avoided: the feed speaks whole seconds). Everything keeps
native GTFS ids plus, where resolved, indices into the static :class:`Timetable`.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal, NamedTuple, overload

import numpy as np

#: How one call of a trip stands after applying the feed.
#: ``updated``: a time or delay from the feed (given here or propagated from an earlier stop).
CallStatus = Literal["scheduled", "updated", "skipped", "no_data", "cancelled"]
#: The trip-level schedule_relationship we keep (UNSCHEDULED/REPLACEMENT are counted, not kept).
TripRelationship = Literal["scheduled", "cancelled", "deleted", "added", "duplicated"]


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


#: Stand-in for None in the int64 columns of a :class:`CallBlock`.
NONE = np.iinfo(np.int64).min
#: Status codes of a :class:`CallBlock` (index → :data:`CallStatus`).
STATUSES: tuple[CallStatus, ...] = ("scheduled", "updated", "skipped", "no_data", "cancelled")
SCHEDULED, UPDATED, SKIPPED, NO_DATA, CANCELLED = range(5)
#: Columns of :attr:`CallBlock.table`, in :class:`RealtimeCall` field order.
(
    COL_SEQ,
    COL_STOP,
    COL_SCHED_ARR,
    COL_SCHED_DEP,
    COL_EXP_ARR,
    COL_EXP_DEP,
    COL_ARR_DELAY,
    COL_DEP_DELAY,
    COL_STATUS,
    COL_UNCERTAINTY,
    COL_EXPLICIT,
) = range(11)


class CallBlock:
    """The calls of many scheduled trips, one int64 row per call.

    A big feed has ~100,000 calls per poll; building a Python object for each costs more than
    the whole rest of the apply, and boards read only a few dozen of them between two polls.
    So the apply fills this table with numpy and :class:`BlockCalls` turns a row into a
    :class:`RealtimeCall` only when someone reads it. None is stored as :data:`NONE`.
    """

    __slots__ = ("seq", "stop_ids", "table")

    def __init__(self, table: np.ndarray, stop_ids: Sequence[str]) -> None:
        self.table = table
        #: The timetable's stop ids (``stop_id`` of a call is ``stop_ids[stop_index]``).
        self.stop_ids = stop_ids
        #: stop_sequence column, contiguous so that a lookup bisects it quickly.
        self.seq = np.ascontiguousarray(table[:, COL_SEQ]) if len(table) else table[:, 0]

    def row(self, i: int) -> RealtimeCall:
        """Row ``i`` as a RealtimeCall."""
        seq, stop, sa, sd, ea, ed, ad, dd, status, unc, explicit = self.table[i].tolist()
        return RealtimeCall(
            seq,
            self.stop_ids[stop],
            stop,
            sa,
            sd,
            None if ea == NONE else ea,
            None if ed == NONE else ed,
            None if ad == NONE else ad,
            None if dd == NONE else dd,
            STATUSES[status],
            None if unc == NONE else unc,
            bool(explicit),
        )

    def delay_range(self) -> tuple[int, int]:
        """(max lateness, max earliness) of the departures in seconds, both >= 0."""
        delays = self.table[:, COL_DEP_DELAY]
        delays = delays[delays != NONE]
        if not len(delays):
            return 0, 0
        return max(int(delays.max()), 0), max(-int(delays.min()), 0)


class BlockCalls(Sequence[RealtimeCall]):
    """One trip's calls: rows ``lo:hi`` of a :class:`CallBlock`, read lazily.

    Indexing or iterating builds (once, then keeps) the RealtimeCall tuple, so identity
    checks such as ``call is trip.calls[-1]`` hold; :meth:`find` reads a single row.
    """

    __slots__ = ("_items", "block", "hi", "lo")

    def __init__(self, block: CallBlock | None, lo: int, hi: int) -> None:
        #: None only while the apply that creates it is running (set before publishing).
        self.block = block
        self.lo = lo
        self.hi = hi
        self._items: tuple[RealtimeCall, ...] | None = None

    def _all(self) -> tuple[RealtimeCall, ...]:
        items = self._items
        if items is None:
            assert self.block is not None
            items = self._items = tuple(self.block.row(i) for i in range(self.lo, self.hi))
        return items

    def __len__(self) -> int:
        return self.hi - self.lo

    @overload
    def __getitem__(self, index: int) -> RealtimeCall: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[RealtimeCall, ...]: ...

    def __getitem__(self, index: int | slice) -> RealtimeCall | tuple[RealtimeCall, ...]:
        return self._all()[index]

    def __iter__(self) -> Iterator[RealtimeCall]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BlockCalls | tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BlockCalls({list(self)!r})"

    def find(self, stop_sequence: int) -> RealtimeCall | None:
        """The call with that stop_sequence, built from its row alone."""
        if self._items is not None:
            for call in self._items:
                if call.stop_sequence == stop_sequence:
                    return call
            return None
        assert self.block is not None
        seq = self.block.seq
        i = bisect_left(seq, stop_sequence, self.lo, self.hi)
        if i < self.hi and seq[i] == stop_sequence:
            return self.block.row(i)
        return None


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
    #: In stop_sequence order: a tuple (ADDED trips) or a lazy view of a :class:`CallBlock`.
    calls: Sequence[RealtimeCall]
    _seqs: tuple[int, ...] | None = field(default=None, repr=False, compare=False)

    def call(self, stop_sequence: int) -> RealtimeCall | None:
        """The call with that stop_sequence (calls are in stop_sequence order)."""
        calls = self.calls
        if isinstance(calls, BlockCalls):
            return calls.find(stop_sequence)
        seqs = self._seqs
        if seqs is None:
            # Built on first use: most trips are never looked up between two polls.
            seqs = tuple(c.stop_sequence for c in calls)
            object.__setattr__(self, "_seqs", seqs)
        i = bisect_left(seqs, stop_sequence)
        if i < len(seqs) and seqs[i] == stop_sequence:
            return calls[i]
        return None


# A frozen dataclass's __init__ stores each field through object.__setattr__ (a global
# lookup and a generic call per field): 17 per trip, thousands of trips per feed. The slot
# descriptors' own setters store the same values a few times faster. (A field added to
# TripRealtime makes the unpacking below fail at import: then add it here too.)
(
    _set_entity_id,
    _set_trip_id,
    _set_relationship,
    _set_run,
    _set_trip_index,
    _set_service_date,
    _set_route_id,
    _set_route_index,
    _set_direction_id,
    _set_start_time,
    _set_headsign,
    _set_vehicle_id,
    _set_vehicle_label,
    _set_timestamp,
    _set_source,
    _set_calls,
    _set__seqs,
) = (getattr(TripRealtime, f.name).__set__ for f in fields(TripRealtime))


def new_trip_realtime(
    entity_id: str,
    trip_id: str,
    relationship: TripRelationship,
    run: int | None,
    trip_index: int | None,
    service_date: dt.date,
    route_id: str | None,
    route_index: int | None,
    direction_id: int | None,
    start_time: str | None,
    headsign: str | None,
    vehicle_id: str | None,
    vehicle_label: str | None,
    timestamp: int | None,
    source: str,
    calls: Sequence[RealtimeCall],
) -> TripRealtime:
    """``TripRealtime(...)`` built faster (the apply makes one per trip update)."""
    trip = object.__new__(TripRealtime)
    _set_entity_id(trip, entity_id)
    _set_trip_id(trip, trip_id)
    _set_relationship(trip, relationship)
    _set_run(trip, run)
    _set_trip_index(trip, trip_index)
    _set_service_date(trip, service_date)
    _set_route_id(trip, route_id)
    _set_route_index(trip, route_index)
    _set_direction_id(trip, direction_id)
    _set_start_time(trip, start_time)
    _set_headsign(trip, headsign)
    _set_vehicle_id(trip, vehicle_id)
    _set_vehicle_label(trip, vehicle_label)
    _set_timestamp(trip, timestamp)
    _set_source(trip, source)
    _set_calls(trip, calls)
    _set__seqs(trip, None)
    return trip


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
        picked = self.pick(languages)
        return picked[0] if picked is not None else None

    def pick(self, languages: str | Sequence[str] | None = None) -> tuple[str, str] | None:
        """(text, its language tag) in the first available preferred language, else the
        feed's first text and its tag; None when there is no text."""
        if not self.texts:
            return None
        wanted = [languages] if isinstance(languages, str) else list(languages or [])
        for lang in wanted:
            lang = lang.lower()
            for tag, text in self.texts:
                if tag.lower() == lang:
                    return text, tag
            base = lang.split("-")[0]
            for tag, text in self.texts:
                if tag.lower().split("-")[0] == base:
                    return text, tag
        tag, text = self.texts[0]
        return text, tag

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

"""What one source of a realtime feed contributes: its entities resolved against the timetable.

:func:`build_part` turns one FeedMessage's entities into trips, vehicles and alerts; a bad
entity is skipped and counted, never fatal. :mod:`.state` merges the parts of every source.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from google.transit import gtfs_realtime_pb2 as pb

from .alerts import build_alert
from .callblock import CallBlockBuilder
from .counters import FeedCounters
from .decode import FeedHeader
from .descriptors import DEFAULT_RULES, MatchRules
from .model import AlertRealtime, BlockCalls, TripRealtime, VehicleRealtime
from .trips import BadEntity, build_trip, resolve_in_bulk
from .vehicles import build_vehicle
from .wire import WireRef

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

__all__ = ["RunKey", "SourcePart", "build_part"]

#: build_part lets other threads run every this many entities when YIELD_AFTER_S has passed.
YIELD_EVERY = 16
YIELD_AFTER_S = 0.001
#: Key of a scheduled trip on a service day: (run index, service date ordinal).
RunKey = tuple[int, int]


@dataclass
class SourcePart:
    """What one source contributes, already resolved against the timetable."""

    source: str
    header: FeedHeader
    received_at: float
    trips: dict[RunKey, TripRealtime] = field(default_factory=dict)
    extra_trips: list[TripRealtime] = field(default_factory=list)
    vehicles: dict[str, VehicleRealtime] = field(default_factory=dict)
    alerts: dict[str, AlertRealtime] = field(default_factory=dict)
    counters: FeedCounters = field(default_factory=FeedCounters)
    #: (max lateness, max earliness) of the departures of the trips above, in seconds.
    delay_range: tuple[int, int] = (0, 0)
    #: The newest timestamp an entity (trip update, vehicle) carries, None when none does.
    newest_entity_ts: int | None = None
    #: When this source's body last changed (a body sent again unchanged keeps the instant
    #: it first came, so a frozen producer ages even when it answers every poll).
    changed_at: float | None = None
    #: This source's own age limit for its alerts (None: the state's). A mapped alerts
    #: document (``mapped_alerts``) sets it to infinity: its alerts last while it lists them.
    alerts_max_age_s: float | None = None

    @property
    def as_of(self) -> float:
        """The instant the data describes: the header timestamp; without one (absent or 0),
        the newest entity timestamp; without any, when the body last changed."""
        if self.header.timestamp is not None:
            return self.header.timestamp
        if self.newest_entity_ts is not None:
            return self.newest_entity_ts
        return self.changed_at if self.changed_at is not None else self.received_at


def build_part(
    tt: Timetable,
    source: str,
    header: FeedHeader,
    received_at: float,
    entities: Iterable[pb.FeedEntity],
    default_language: str,
    wire: Iterable[WireRef | None] | None = None,
    rules: MatchRules = DEFAULT_RULES,
) -> SourcePart:
    """Resolve a source's entities; each bad one is skipped and counted, never fatal.

    ``wire``: per entity (same order), its updates decoded from the bytes, or None.
    """
    part = SourcePart(source, header, received_at)
    c = part.counters
    ts = header.timestamp
    # Scheduled trips' calls are computed together, once every entity is resolved.
    builder = CallBlockBuilder(tt)
    refs: Iterable[WireRef | None]
    if wire is None:
        refs, matches = itertools.repeat(None), itertools.repeat(None)
    else:
        refs = wire = list(wire)
        # Most descriptors name one run on one day: those are resolved for all at once.
        matches = iter(resolve_in_bulk(tt, wire))
    yielded = time.perf_counter()
    for n, (entity, ref, match) in enumerate(zip(entities, refs, matches, strict=False), 1):
        if n % YIELD_EVERY == 0 and time.perf_counter() - yielded > YIELD_AFTER_S:
            # This runs in a worker thread while the event loop serves boards. A board's numpy
            # calls release the GIL, and each time getting it back from this loop can cost a
            # whole switch interval (5 ms); handing it over often keeps boards at their speed.
            # Not more often than that: a sleep(0) is a system call (~50 µs here).
            time.sleep(0)
            yielded = time.perf_counter()
        c.entities += 1
        eid = entity.id
        handled = False
        try:
            if entity.HasField("trip_update"):
                handled = True
                c.trip_updates += 1
                tu = entity.trip_update
                trip = build_trip(tt, eid, tu, ts, source, c, builder, ref, match, rules)
                if trip is not None and trip.run is not None:
                    part.trips[(trip.run, trip.service_date.toordinal())] = trip
                elif trip is not None:
                    part.extra_trips.append(trip)
            if entity.HasField("vehicle"):
                handled = True
                v = build_vehicle(tt, eid, entity.vehicle, ts, source, c)
                part.vehicles[v.key] = v
            if entity.HasField("alert"):
                handled = True
                a = build_alert(tt, eid, entity.alert, ts, source, default_language, c)
                part.alerts[a.alert_id] = a
        except BadEntity as exc:
            c.bad(eid, str(exc))
        except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
            # Anything else a hostile entity provokes: same treatment, with the type for debugging.
            c.bad(eid, f"{type(exc).__name__}: {exc}")
        if not handled:
            c.other_entities += 1
    late, early = builder.finish().delay_range()
    for trip in part.extra_trips:
        if not isinstance(trip.calls, BlockCalls):  # ADDED trips: calls built one by one
            for call in trip.calls:
                d = call.departure_delay
                if d is not None:
                    late, early = max(late, d), max(early, -d)
    part.delay_range = (late, early)
    part.newest_entity_ts = max(
        (
            t.timestamp
            for t in itertools.chain(part.trips.values(), part.extra_trips, part.vehicles.values())
            if t.timestamp is not None
        ),
        default=None,
    )
    return part

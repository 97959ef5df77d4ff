"""Apply one TripUpdate to the static schedule of its run → :class:`TripRealtime`.

Rules (DESIGN §4, with the issue threads they come from):

- StopTimeUpdates are matched to calls by stop_sequence when its stop_id agrees (or is
  absent), else by stop_id searching forward from the previous match, so a stop visited twice
  gets the right visit (maglev#1414); a sequence whose stop_id appears nowhere in the trip is
  still trusted (platform changes, gtfs-realtime-validator#51).
- ``time`` wins over ``delay`` (OTP, OBA). ``time: 0`` and an empty ``stop_id`` are absent
  (vingerha/gtfs2#119); an event with neither usable time nor delay is absent. An explicit
  ``delay: 0`` with no time is kept: the spec defines it as "exactly on time".
- A delay propagates to later calls until the next update (google/transit#144), also from
  arrival to departure at the same stop; SKIPPED does not stop propagation (MobilityData
  transit PR#6); NO_DATA ends it: later calls without updates are NO_DATA too (spec).
- Calls before the first update keep their schedule and are not marked realtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.transit import gtfs_realtime_pb2 as pb

from .callblock import CallBlockBuilder
from .decode import posix
from .descriptors import (
    DEFAULT_RULES,
    AmbiguousDescriptor,
    MatchRules,
    day_before_fits,
    resolve_route_start,
)
from .locate import lookups
from .matching import (
    MatchError,
    RunMatch,
    parse_start_date,
    parse_start_time,
    resolve_dated,
    resolve_run,
)
from .model import BlockCalls, RealtimeCall, TripRealtime, TripRelationship, new_trip_realtime
from .wire import WireRef
from .wireheads import TripHead, head_of

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

    from .counters import FeedCounters

_TD = pb.TripDescriptor
# Read once: build_trip compares the relationship with these for every trip update.
_ADDED_OR_NEW = frozenset((_TD.ADDED, _TD.NEW))
_UNSUPPORTED = frozenset((_TD.UNSCHEDULED, _TD.REPLACEMENT))
_DUPLICATED = _TD.DUPLICATED
_CANCELED = _TD.CANCELED
_DELETED = _TD.DELETED
#: A scheduled call: (stop_sequence, stop index, arrival POSIX, departure POSIX).
Scheduled = tuple[int, int, int, int]


class BadEntity(ValueError):
    """The entity cannot be understood; it is skipped and counted (never fatal)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A StopTimeEvent with absent values as None."""

    time: int | None
    delay: int | None
    uncertainty: int | None


def read_event(update: pb.TripUpdate.StopTimeUpdate, name: str) -> Event | None:
    """The arrival/departure event, or None when it carries nothing usable."""
    if not update.HasField(name):
        return None
    ev = getattr(update, name)
    time = posix(ev.time) if ev.HasField("time") else None
    delay = ev.delay if ev.HasField("delay") else None
    if time is None and (delay is None or (delay == 0 and ev.HasField("time"))):
        # time: 0 with delay: 0 is a producer filling defaults (Turin GTT), not "on time".
        return None
    uncertainty = ev.uncertainty if ev.HasField("uncertainty") and ev.uncertainty > 0 else None
    return Event(time, delay, uncertainty)


def reference_time(
    tu: pb.TripUpdate, header_ts: int | None, wire: WireRef | None = None
) -> int | None:
    """The instant a trip update is about: its first predicted time, else its timestamp.

    ``wire``: the updates decoded from the bytes, read instead of the accessors if usable.
    """
    if wire is not None and wire[0].usable(wire[1], len(tu.stop_time_update)):
        first = wire[0].first_time(wire[1])
        if first is not None:
            return posix(first)
    else:
        for u in tu.stop_time_update:
            for name in ("departure", "arrival"):
                ev = read_event(u, name)
                if ev is not None and ev.time is not None:
                    return ev.time
    entity_ts = posix(tu.timestamp) if tu.HasField("timestamp") else None
    return entity_ts or header_ts


def scheduled_calls(tt: Timetable, run: int, origin: float, shift: int = 0) -> list[Scheduled]:
    """The run's calls in POSIX seconds (``shift`` moves a duplicated copy in time)."""
    a, b = int(tt.st_ptr[run]), int(tt.st_ptr[run + 1])
    base = int(origin) + shift
    return [
        (seq, stop, base + arr, base + dep)
        for seq, stop, arr, dep in zip(
            tt.st_seq[a:b].tolist(),
            tt.st_stop[a:b].tolist(),
            tt.st_arr[a:b].tolist(),
            tt.st_dep[a:b].tolist(),
            strict=True,
        )
    ]


def apply_updates(
    tt: Timetable,
    run: int,
    base: int,
    tu: pb.TripUpdate,
    counters: FeedCounters,
) -> BlockCalls:
    """The calls of one scheduled (or duplicated) run with ``tu``'s updates applied."""
    builder = CallBlockBuilder(tt)
    view = builder.add(run, base, tu, counters)
    builder.finish()
    return view


def _descriptor_dates(head: TripHead) -> tuple[int | None, int | None]:
    try:
        return parse_start_date(head.start_date), parse_start_time(head.start_time)
    except ValueError as exc:
        raise BadEntity(str(exc)) from exc


def build_trip(
    tt: Timetable,
    entity_id: str,
    tu: pb.TripUpdate,
    header_ts: int | None,
    source: str,
    counters: FeedCounters,
    builder: CallBlockBuilder | None = None,
    wire: WireRef | None = None,
    match: RunMatch | None = None,
    rules: MatchRules = DEFAULT_RULES,
) -> TripRealtime | None:
    """Resolve and apply one TripUpdate; None when unmatched or unsupported (counted).

    With a ``builder``, a scheduled trip's calls are only queued: they cannot be read until
    ``builder.finish()`` (what :func:`~.part.build_part` does once for a whole feed).
    Without one, the trip is complete on return. ``wire``: ``tu`` decoded from the message
    bytes (see :mod:`.wire`), if available: its fields are then read from there.

    Raises :class:`BadEntity` for malformed content (the caller counts it).
    """
    head = wire[0].head(wire[1]) if wire is not None else None
    if head is None:
        head = head_of(tu)
    rel = head.relationship
    start_date, start_time = _descriptor_dates(head)
    ts = _newest(posix(head.timestamp) if head.timestamp is not None else None, header_ts)
    if rel in _ADDED_OR_NEW:
        from .added import build_added

        return build_added(tt, entity_id, tu, start_date, ts, source, counters)
    if rel in _UNSUPPORTED:
        counters.unsupported += 1
        return None
    trip_id = head.trip_id
    trip = tt.trip_index.get(trip_id) if trip_id else None
    if trip is None:
        # Not the static id: a route + start time descriptor, or the producer's own form.
        match = _resolve_other_forms(
            tt, tu, trip_id, start_date, start_time, header_ts, wire, rules
        )
        if match is None:
            counters.unmatched_trip(trip_id)
            return None
        if not isinstance(match, RunMatch):  # RunMatch is a tuple too: test it first
            counters.undescribed(trip_id or f"entity {entity_id}", *match)
            return None
        trip = match.trip
    own = builder is None
    if builder is None:
        builder = CallBlockBuilder(tt)
    if rel == _DUPLICATED:
        from .added import build_duplicated

        record = build_duplicated(tt, entity_id, tu, trip, ts, source, counters, builder, wire)
        if own:
            builder.finish()
        return record
    if match is None:
        # The reference instant reads the updates: only computed when the match needs it.
        def reference() -> int | None:
            return reference_time(tu, header_ts, wire)

        try:
            match = resolve_run(tt, trip, start_date, start_time, reference)
        except MatchError:
            corrected = None
            if start_date is not None and not rules.strict_start_date:
                corrected = day_before_fits(tt, trip, start_date, reference)
            if corrected is None:
                counters.unmatched_trip(trip_id)
                return None
            counters.start_date_corrected += 1
            match = corrected
    counters.matched += 1
    relationship: TripRelationship
    cancelled = rel in (_CANCELED, _DELETED)
    if cancelled:
        relationship = "cancelled" if rel == _CANCELED else "deleted"
        if rel == _CANCELED:
            counters.cancelled += 1
        else:
            counters.deleted += 1
    else:
        relationship = "scheduled"
    calls = builder.add(
        match.run, int(match.origin), tu, counters, cancelled=cancelled, wire=wire, head=head
    )
    if own:
        builder.finish()
    return trip_record(tt, entity_id, head, match, relationship, calls, ts, source)


def _resolve_other_forms(
    tt: Timetable,
    tu: pb.TripUpdate,
    trip_id: str,
    start_date: int | None,
    start_time: int | None,
    header_ts: int | None,
    wire: WireRef | None,
    rules: MatchRules,
) -> RunMatch | tuple[str, str] | None:
    """A descriptor whose trip_id the static feed does not know: its run, or why it has none
    (``("unmatched_descriptor" | "ambiguous_descriptor", reason)``), or None (an unknown
    trip_id and no convention to read it with: the plain unmatched case)."""

    def reference() -> int | None:
        return reference_time(tu, header_ts, wire)

    try:
        if not trip_id:
            td = tu.trip
            direction = td.direction_id if td.HasField("direction_id") else None
            return resolve_route_start(
                tt, td.route_id, direction, start_time, start_date, reference
            )
        if rules.convention is None:
            return None
        return rules.convention.resolve(tt, trip_id, start_date, reference)
    except AmbiguousDescriptor as exc:
        return "ambiguous_descriptor", str(exc)
    except MatchError as exc:
        return "unmatched_descriptor", str(exc)


def resolve_in_bulk(tt: Timetable, refs: Sequence[WireRef | None]) -> list[RunMatch | None]:
    """Per entity, its run when its decoded head names one run on one day outright
    (:func:`~.matching.resolve_dated`), else None (:func:`build_trip` resolves it)."""
    trip_index = tt.trip_index
    trips, ordinals = [], []
    for ref in refs:
        head = ref[0].head(ref[1]) if ref is not None else None
        if head is None:
            trips.append(-1)
            ordinals.append(-1)
            continue
        trips.append(trip_index.get(head.trip_id, -1))
        try:
            ordinal = parse_start_date(head.start_date)
        except ValueError:
            ordinal = None  # build_trip reports it
        ordinals.append(-1 if ordinal is None else ordinal)
    return resolve_dated(tt, trips, ordinals)


def trip_record(
    tt: Timetable,
    entity_id: str,
    head: TripHead,
    match: RunMatch,
    relationship: TripRelationship,
    calls: Sequence[RealtimeCall],
    ts: int | None,
    source: str,
    trip_id: str | None = None,
) -> TripRealtime:
    """A TripRealtime for a static run (or a copy of one)."""
    trip = match.trip
    look = lookups(tt)
    route = look.trip_route[trip]
    direction = look.trip_direction[trip]
    return new_trip_realtime(
        entity_id,
        trip_id or tt.trip_ids[trip],
        relationship,
        match.run if relationship != "duplicated" else None,
        trip,
        look.date(match.ordinal),
        tt.route_ids[route],
        route,
        direction if direction >= 0 else None,
        head.start_time or None,
        head.headsign or tt.trip_headsigns[trip] or None,
        head.vehicle_id or None,
        head.vehicle_label or None,
        ts,
        source,
        calls,
    )


def _newest(a: int | None, b: int | None) -> int | None:
    return max(a, b) if a is not None and b is not None else (a if a is not None else b)

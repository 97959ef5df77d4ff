"""The fast lane of an apply: most trip updates of a big feed, taken together.

A trip update takes the lane when everything :func:`.trips.build_trip` would decide about it
is known already from the bulk decode (:mod:`.wire`) and the batch resolution
(:func:`.trips.resolve_in_bulk`): its fields were decoded exactly, it names one run on one
day outright, it is SCHEDULED, CANCELED or DELETED, its start_time is well-formed, its run's
stop_sequences allow the vectorised placement, and its entity carries nothing else (no
vehicle, no alert). :func:`~.state.build_part` only counts those in its loop; here all their
calls are queued at once (:meth:`.callblock.CallBlockBuilder.add_many`) and their records
made in one tight loop: a few list operations per trip instead of the per-entity path.

Everything else — ADDED and DUPLICATED trips, descriptors resolved against the clock, mixed
entities, anything the accessors decode — keeps that per-entity path, the reference; tests
check that both give the same state (tests/gtfs_rt/test_rt_lane.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from google.transit import gtfs_realtime_pb2 as pb

from .callblock import CallBlockBuilder
from .decode import posix
from .locate import lookups
from .matching import RunMatch, parse_start_time
from .model import TripRealtime, TripRelationship
from .trips import newest, trip_record
from .wire import WireRef, WireUpdates

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

    from .counters import FeedCounters

_TD = pb.TripDescriptor
_RELATIONSHIPS: dict[int, TripRelationship] = {
    _TD.SCHEDULED: "scheduled",
    _TD.CANCELED: "canceled",
    _TD.DELETED: "deleted",
}
#: A lane trip's result: its entity's position, its key in ``SourcePart.trips``, its record.
Taken = tuple[int, tuple[int, int], TripRealtime]


def candidates(
    tt: Timetable, refs: Sequence[WireRef | None], matches: Sequence[RunMatch | None]
) -> list[bool]:
    """Per entity, whether its trip update can take the lane as far as its decoded fields
    tell; the caller still checks the entity itself (:func:`~.state.build_part`)."""
    seq_ok = lookups(tt).seq_ok
    out = []
    for ref, match in zip(refs, matches, strict=True):
        head = ref[0].head(ref[1]) if ref is not None else None
        if match is None or head is None or head.relationship not in _RELATIONSHIPS:
            out.append(False)
        elif head.start_time and not _well_formed(head.start_time):
            out.append(False)  # build_trip reports it
        else:
            # A cancelled trip's updates are not read: its run's sequences do not matter.
            out.append(seq_ok[match.run] or head.relationship != _TD.SCHEDULED)
    return out


def _well_formed(start_time: str) -> bool:
    try:
        parse_start_time(start_time)
    except ValueError:
        return False
    return True


def take(
    tt: Timetable,
    source: str,
    header_ts: int | None,
    lane: list[tuple[int, str, WireRef, RunMatch]],
    builder: CallBlockBuilder,
    counters: FeedCounters,
) -> list[Taken]:
    """Queue the lane's trips (entity position, entity id, decoded ref, run) on ``builder``
    and make their records, in entity order."""
    by_message: dict[int, list[tuple[int, str, WireRef, RunMatch]]] = {}
    for item in lane:
        by_message.setdefault(id(item[2][0]), []).append(item)
    out: list[Taken] = []
    for items in by_message.values():
        w: WireUpdates = items[0][2][0]
        heads = [w.heads[ref[1]] for _, _, ref, _ in items]
        relationships = [_RELATIONSHIPS[h.relationship] for h in heads]
        views = builder.add_many(
            w,
            [ref[1] for _, _, ref, _ in items],
            [match.run for *_, match in items],
            [int(match.origin) for *_, match in items],
            [r != "scheduled" for r in relationships],
            [h.delay for h in heads],
            counters,
        )
        counters.matched += len(items)
        counters.cancelled += relationships.count("canceled")
        counters.deleted += relationships.count("deleted")
        for (position, entity_id, _, match), head, relationship, calls in zip(
            items, heads, relationships, views, strict=True
        ):
            ts = newest(posix(head.timestamp) if head.timestamp is not None else None, header_ts)
            record = trip_record(tt, entity_id, head, match, relationship, calls, ts, source)
            out.append((position, (match.run, match.ordinal), record))
    if len(by_message) > 1:
        out.sort(key=lambda taken: taken[0])
    return out

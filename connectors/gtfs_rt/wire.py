"""Decode every StopTimeUpdate of a FeedMessage at once, with numpy, from the protobuf bytes.

Why this exists: a big feed has ~100,000 StopTimeUpdates, and merely reading their fields
through the protobuf accessors (one Python call per field, per update, per event) costs more
than the whole rest of the apply. Here Python touches each *entity* once and never an update:

1. a *lite* schema built at runtime (FeedMessage.entity → FeedEntity.trip_update declared as
   ``repeated bytes``) lets upb hand over each entity's TripUpdate body as bytes; joining a
   repeated field's pieces is exactly protobuf's merge of a message sent twice;
2. the bodies are concatenated and scanned "frontier" style (:mod:`.wirescan`): one cursor
   per message, all advanced together by vectorised varint reads, one field per message per
   step. Three levels: TripUpdate (the stop_time_update ranges, and the trip-level fields
   :mod:`.wireheads` reads), StopTimeUpdate, StopTimeEvent.
   Unknown fields (extensions, fields this code does not read) are skipped by wire type.

The result is tt-independent: per update its stop_sequence, stop_id byte range,
schedule_relationship and the arrival/departure values under the rules of
``callblock._raw_event``. :mod:`.locate` places them on the timetable.

Fallback rule: nothing is guessed. Whatever protobuf could read differently from this scanner
— group wire types, a known field with an unexpected wire type (e.g. packed), a singular field
sent twice in one message (protobuf merges or overrides), a truncated or overlong varint, a
range past its message, a stop_id that is not valid UTF-8 — marks the entity "not ok", and the
caller applies that entity through the protobuf accessors (``CallBlockBuilder._add_updates``,
the reference). If the lite parse itself fails, :func:`decode_updates` returns None and the
whole feed goes that way. Every index is checked against its message's end before use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as pb

from .model import NONE
from .wireheads import TU_FIELDS, TripHead, decode_heads, known_enum
from .wirescan import HIGH_BITS, LEN, PAD, U64, VARINT, Fields, int32, scan, word_view

#: schedule_relationship values the schema knows: proto2 enums are closed, so any other
#: number leaves the field unset and it reads as SCHEDULED (0).
_KNOWN_RELATIONSHIPS = np.array(
    [v.number for v in pb.TripUpdate.StopTimeUpdate.ScheduleRelationship.DESCRIPTOR.values],
    dtype=np.int64,
)
# Field numbers and wire types this module reads (gtfs-realtime.proto).
_STU_FIELDS = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT}  # seq, arr, dep, stop_id, rel
_EVENT_FIELDS = {1: VARINT, 2: VARINT, 3: VARINT}  # delay, time, uncertainty
# Fields of the schema this module does not read, with their wire types: the fast pass of
# _scan steps over them (anything else unknown waits for the general walk).
_STU_SKIP = {6: LEN, 7: VARINT}  # stop_time_properties, departure_occupancy_status
_EVENT_SKIP = {4: VARINT}  # scheduled_time


def _lite_feed_class() -> type:
    """FeedMessage(entity=2) → FeedEntity(trip_update=3 as ``repeated bytes``), privately."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="beffroi_gtfs_rt_lite.proto", package="beffroi_gtfs_rt_lite", syntax="proto2"
    )
    entity = proto.message_type.add(name="Entity")
    entity.field.add(
        name="trip_update", number=3, label=field.LABEL_REPEATED, type=field.TYPE_BYTES
    )
    feed = proto.message_type.add(name="Feed")
    feed.field.add(
        name="entity",
        number=2,
        label=field.LABEL_REPEATED,
        type=field.TYPE_MESSAGE,
        type_name=".beffroi_gtfs_rt_lite.Entity",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("beffroi_gtfs_rt_lite.Feed"))


_LiteFeed = _lite_feed_class()


@dataclass(frozen=True, slots=True)
class WireUpdates:
    """The StopTimeUpdates of one message; entity ``i``'s are rows ``first[i]:first[i + 1]``.

    Only rows of entities with ``ok[i]`` are meaningful. Events follow ``_raw_event``: NONE
    where a value is absent or unusable; ``uncertainty`` is the departure's, else the arrival's.
    """

    blob: bytes  # the TripUpdate bodies, concatenated (stop_id ranges point into it)
    first: list[int]
    ok: list[bool]
    has_seq: np.ndarray
    seq: np.ndarray
    stop_lo: np.ndarray
    stop_hi: np.ndarray
    stop_key: IdKeys
    relationship: np.ndarray
    arr_time: np.ndarray
    arr_delay: np.ndarray
    dep_time: np.ndarray
    dep_delay: np.ndarray
    uncertainty: np.ndarray
    #: Per entity: its TripUpdate-level fields (:mod:`.wireheads`), and :meth:`first_time`.
    heads: list[TripHead]
    first_times: list[int | None]

    def usable(self, i: int, count: int) -> bool:
        """Whether entity ``i`` was decoded exactly, with the ``count`` updates upb found."""
        return self.ok[i] and self.first[i + 1] - self.first[i] == count

    def first_time(self, i: int) -> int | None:
        """The first usable ``time`` of entity ``i``'s updates (departure, then arrival, update
        by update), as sent (POSIX seconds or milliseconds); None when there is none."""
        return self.first_times[i]

    def head(self, i: int) -> TripHead | None:
        """Entity ``i``'s TripUpdate-level fields, None unless it was decoded exactly."""
        return self.heads[i] if self.ok[i] else None


#: What the builder is handed per entity: the message's decoded updates and the entity index.
WireRef = tuple[WireUpdates, int]


def decode_updates(data: bytes, n_entities: int) -> WireUpdates | None:
    """The updates of FeedMessage ``data`` (already parsed by upb once), or None if the lite
    parse fails or disagrees on the entity count (then the accessors do everything)."""
    lite = _LiteFeed()
    try:
        lite.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError):
        return None
    if len(lite.entity) != n_entities:
        return None
    bodies = [b"".join(e.trip_update) for e in lite.entity]
    blob = b"".join(bodies)
    buf = np.frombuffer(blob + bytes(PAD), dtype=np.uint8)
    ends = np.cumsum(np.fromiter(map(len, bodies), np.int64, len(bodies)))
    starts = ends - np.fromiter(map(len, bodies), np.int64, len(bodies))
    bad_entity = np.zeros(n_entities, dtype=bool)

    tu = scan(buf, starts, ends, TU_FIELDS, {}, repeated=2)
    bad_entity |= tu.bad
    owner, lo, hi = tu.repeated
    first = np.searchsorted(owner, np.arange(n_entities + 1), side="left")

    stu = scan(buf, lo, hi, _STU_FIELDS, _STU_SKIP)
    bad_stu = stu.bad.copy()
    has_arr, has_dep = stu.has[2], stu.has[3]
    n_arr = int(has_arr.sum())
    ev = scan(
        buf,
        np.concatenate((stu.val[2][has_arr], stu.val[3][has_dep])).astype(np.int64),
        np.concatenate((stu.end[2][has_arr], stu.end[3][has_dep])),
        _EVENT_FIELDS,
        _EVENT_SKIP,
    )
    at, ad, au = _events(ev, len(lo), np.flatnonzero(has_arr), slice(0, n_arr))
    dt_, dd, du = _events(ev, len(lo), np.flatnonzero(has_dep), slice(n_arr, None))
    bad_stu[np.flatnonzero(has_arr)[ev.bad[:n_arr]]] = True
    bad_stu[np.flatnonzero(has_dep)[ev.bad[n_arr:]]] = True

    stop_lo = np.where(stu.has[4], stu.val[4].astype(np.int64), 0)
    stop_hi = np.where(stu.has[4], stu.end[4], 0)
    stop_key = id_keys(buf, stop_lo, stop_hi)
    bad_stu |= _invalid_utf8(blob, stop_key, stop_lo, stop_hi)
    bad_entity[owner[bad_stu]] = True

    rel = int32(stu.val[5])
    rel = np.where(stu.has[5] & known_enum(rel, _KNOWN_RELATIONSHIPS), rel, 0)
    heads = decode_heads(buf, blob, tu, bad_entity)
    # Each entity's first usable time (departure, then arrival): rows are in entity order, so
    # the first hit of each entity is where its owner changes.
    times = np.where(dt_ != NONE, dt_, at)
    hit = np.flatnonzero(times != NONE)
    hit_owner = owner[hit]
    where = np.flatnonzero(np.concatenate(([True], hit_owner[1:] != hit_owner[:-1])))
    firsts = np.full(n_entities, NONE, dtype=np.int64)
    if hit.size:
        firsts[hit_owner[where]] = times[hit[where]]
    return WireUpdates(
        blob=blob,
        first=first.tolist(),
        ok=(~bad_entity).tolist(),
        has_seq=stu.has[1],
        # uint32: upb keeps the low 32 bits of the varint.
        seq=(stu.val[1] & U64(0xFFFFFFFF)).astype(np.int64),
        stop_lo=stop_lo,
        stop_hi=stop_hi,
        stop_key=stop_key,
        relationship=rel,
        arr_time=at,
        arr_delay=ad,
        dep_time=dt_,
        dep_delay=dd,
        uncertainty=np.where(du != NONE, du, au),
        heads=heads,
        first_times=[None if t == NONE else t for t in firsts.tolist()],
    )


def _events(
    ev: Fields, n: int, owners: np.ndarray, part: slice
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, delay, uncertainty) per update for one kind of event, as ``_raw_event`` reads.

    An absent event or field reads as 0, so the rules need no special case for absence.
    """
    has_delay, has_time = ev.has[1][part], ev.has[2][part]
    delay = np.zeros(n, dtype=np.int64)
    time = np.zeros(n, dtype=np.int64)
    unc = np.zeros(n, dtype=np.int64)
    delay[owners] = np.where(has_delay, int32(ev.val[1][part]), 0)
    time[owners] = np.where(has_time, ev.val[2][part].view(np.int64), 0)
    unc[owners] = np.where(ev.has[3][part], int32(ev.val[3][part]), 0)
    set_time = np.zeros(n, dtype=bool)
    set_delay = np.zeros(n, dtype=bool)
    set_time[owners] = has_time
    set_delay[owners] = has_delay
    timed = time > 0
    # time: 0 with delay: 0 is a producer filling defaults, not "on time" (see _raw_event).
    dropped = ~timed & (delay == 0) & (set_time | ~set_delay)
    out_time = np.where(timed, time, NONE)
    out_delay = np.where(timed | dropped, NONE, delay)
    out_unc = np.where(~dropped & (unc > 0), unc, NONE)
    return out_time, out_delay, out_unc


def _invalid_utf8(blob: bytes, keys: IdKeys, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Updates whose stop_id is not valid UTF-8 (the accessors then decide what it means)."""
    bad = np.zeros(len(lo), dtype=bool)
    # Only ids with a byte >= 0x80 can be invalid (ASCII is UTF-8); long ones are not packed.
    high = (keys.words & U64(HIGH_BITS)).any(axis=1) | (keys.length > ID_BYTES)
    suspect = np.flatnonzero(high)
    for i, a, b in zip(suspect.tolist(), lo[suspect].tolist(), hi[suspect].tolist(), strict=True):
        try:
            blob[a:b].decode("utf-8")
        except UnicodeDecodeError:
            bad[i] = True
    return bad


#: Ids up to this many bytes are packed in three uint64 words (compared exactly, in numpy);
#: longer ones are looked up by slicing the bytes.
ID_BYTES = 24
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=U64)
_MIX = (U64(0x9E3779B97F4A7C15), U64(0xC2B2AE3D27D4EB4F), U64(0x165667B19E3779F9))


@dataclass(frozen=True, slots=True)
class IdKeys:
    """Byte strings as (length, three words with the bytes past the end zeroed, hash).

    Two ids of at most :data:`ID_BYTES` bytes are equal exactly when their lengths and words
    are; the hash only finds the candidate to compare with.
    """

    length: np.ndarray
    words: np.ndarray
    hash: np.ndarray


def id_keys(buf: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> IdKeys:
    """The :class:`IdKeys` of ``buf[lo[i]:hi[i]]`` (``buf`` padded by 32 bytes at least)."""
    words = word_view(buf)
    length = hi - lo
    packed = np.zeros((len(lo), 3), dtype=U64)
    h = length.astype(U64)
    for k in range(3):
        word = words[lo + 8 * k] & _MASKS[np.clip(length - 8 * k, 0, 8)]
        packed[:, k] = word
        h = (h ^ word) * _MIX[k]
    return IdKeys(length, packed, h ^ (h >> U64(29)))

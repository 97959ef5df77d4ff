"""Decode every StopTimeUpdate of a FeedMessage at once, with numpy, from the protobuf bytes.

Why this exists: a big feed has ~100,000 StopTimeUpdates, and merely reading their fields
through the protobuf accessors (one Python call per field, per update, per event) costs more
than the whole rest of the apply. Here Python touches each *entity* once and never an update:

1. a *lite* schema built at runtime (FeedMessage.entity → FeedEntity.trip_update declared as
   ``repeated bytes``) lets upb hand over each entity's TripUpdate body as bytes; joining a
   repeated field's pieces is exactly protobuf's merge of a message sent twice;
2. the bodies are concatenated and scanned "frontier" style: one cursor per message, all
   advanced together by vectorised varint reads, one field per message per step. Three
   levels: TripUpdate (to find the stop_time_update ranges), StopTimeUpdate, StopTimeEvent.
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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as pb

from .model import NONE

VARINT, I64, LEN, I32 = 0, 1, 2, 5
#: Zero bytes after the data so that a varint or fixed read near the end never indexes out
#: of the buffer (the result is then rejected by the range check, not used).
_PAD = 32
_U64 = np.uint64
#: schedule_relationship values the schema knows: proto2 enums are closed, so any other
#: number leaves the field unset and it reads as SCHEDULED (0).
_KNOWN_RELATIONSHIPS = np.array(
    [v.number for v in pb.TripUpdate.StopTimeUpdate.ScheduleRelationship.DESCRIPTOR.values],
    dtype=np.int64,
)
# Field numbers and wire types this module reads (gtfs-realtime.proto).
_TU_FIELDS = {2: LEN}  # TripUpdate.stop_time_update
_STU_FIELDS = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT}  # seq, arr, dep, stop_id, rel
_EVENT_FIELDS = {1: VARINT, 2: VARINT, 3: VARINT}  # delay, time, uncertainty
# Fields of the schema this module does not read, with their wire types: the fast pass of
# _scan steps over them (anything else unknown waits for the general walk).
_TU_SKIP = {1: LEN, 3: LEN, 4: VARINT, 5: VARINT, 6: LEN}  # trip, vehicle, timestamp...
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

    def usable(self, i: int, count: int) -> bool:
        """Whether entity ``i`` was decoded exactly, with the ``count`` updates upb found."""
        return self.ok[i] and self.first[i + 1] - self.first[i] == count

    def first_time(self, i: int) -> int | None:
        """The first usable ``time`` of entity ``i``'s updates (departure, then arrival, update
        by update), as sent (POSIX seconds or milliseconds); None when there is none."""
        s0, s1 = self.first[i], self.first[i + 1]
        dep = self.dep_time[s0:s1]
        times = np.where(dep != NONE, dep, self.arr_time[s0:s1])
        hit = np.flatnonzero(times != NONE)
        return int(times[hit[0]]) if hit.size else None


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
    buf = np.frombuffer(blob + bytes(_PAD), dtype=np.uint8)
    ends = np.cumsum(np.fromiter(map(len, bodies), np.int64, len(bodies)))
    starts = ends - np.fromiter(map(len, bodies), np.int64, len(bodies))
    bad_entity = np.zeros(n_entities, dtype=bool)

    tu = _scan(buf, starts, ends, _TU_FIELDS, _TU_SKIP, repeated=2)
    bad_entity |= tu.bad
    owner, lo, hi = tu.repeated
    first = np.searchsorted(owner, np.arange(n_entities + 1), side="left")

    stu = _scan(buf, lo, hi, _STU_FIELDS, _STU_SKIP)
    bad_stu = stu.bad.copy()
    has_arr, has_dep = stu.has[2], stu.has[3]
    n_arr = int(has_arr.sum())
    ev = _scan(
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

    rel = _int32(stu.val[5])
    rel = np.where(stu.has[5] & np.isin(rel, _KNOWN_RELATIONSHIPS), rel, 0)
    return WireUpdates(
        blob=blob,
        first=first.tolist(),
        ok=(~bad_entity).tolist(),
        has_seq=stu.has[1],
        # uint32: upb keeps the low 32 bits of the varint.
        seq=(stu.val[1] & _U64(0xFFFFFFFF)).astype(np.int64),
        stop_lo=stop_lo,
        stop_hi=stop_hi,
        stop_key=stop_key,
        relationship=rel,
        arr_time=at,
        arr_delay=ad,
        dep_time=dt_,
        dep_delay=dd,
        uncertainty=np.where(du != NONE, du, au),
    )


@dataclass(slots=True)
class _Fields:
    """What a scan found: per message and wanted field, presence and value.

    ``val`` is the varint value (VARINT) or the payload start (LEN), ``end`` the payload end.
    ``repeated``: (message, payload start, payload end) of every occurrence of the repeated
    field, by message then order of appearance.
    """

    bad: np.ndarray
    has: dict[int, np.ndarray]
    val: dict[int, np.ndarray]
    end: dict[int, np.ndarray]
    repeated: tuple[np.ndarray, np.ndarray, np.ndarray]


def _scan(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    fields: Mapping[int, int],
    skip: Mapping[int, int],
    repeated: int | None = None,
) -> _Fields:
    """Walk the messages ``buf[starts[i]:ends[i]]`` together and collect ``fields``.

    ``fields`` (number → wire type, numbers below 16) are the ones read; any other is skipped.
    """
    n = len(starts)
    words = _words(buf)
    found = _Fields(
        np.zeros(n, dtype=bool),
        {f: np.zeros(n, dtype=bool) for f in fields},
        {f: np.zeros(n, dtype=_U64) for f in fields},
        {f: np.zeros(n, dtype=np.int64) for f in fields},
        (np.empty(0, np.int64),) * 3,
    )
    rep: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    cur = np.array(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    # Fast pass: writers emit fields in field-number or declaration order, so try each field
    # of the schema in turn at every cursor, twice round (a one-byte tag compare, then the
    # payload for the messages where it matched). Whatever remains — unknown fields, other
    # orders, repeats — is left to the general walk below, from where each message stopped.
    order = sorted({**skip, **fields}.items())
    live = np.flatnonzero(cur < ends)
    for _ in range(2):
        for number, kind in order:
            tag = number << 3 | kind
            act = live[buf[cur[live]] == tag]
            while act.size:
                lim = ends[act]
                value, start, pos, ok = _payload(buf, words, cur[act] + 1, lim, kind)
                if not ok.all():
                    found.bad[act[~ok]] = True
                    fine = np.flatnonzero(ok)
                    act, value, start, pos = act[fine], value[fine], start[fine], pos[fine]
                cur[act] = pos
                if number in fields:
                    fresh = _keep(found, rep, act, number, kind, value, start, pos, repeated)
                    found.bad[act[~fresh]] = True  # sent twice: for the accessors
                if number != repeated:
                    break
                # A repeated field comes in runs: follow each run to its end.
                act = act[(pos < ends[act]) & (buf[pos] == tag)]
            live = live[(cur[live] < ends[live]) & ~found.bad[live]]
    act = live
    while act.size:
        lim = ends[act]
        tag, pos, ok = _varint(buf, words, cur[act], lim)
        wt = (tag & _U64(7)).astype(np.int64)
        num = tag >> _U64(3)
        # Groups (3, 4) and undefined wire types are not modelled; field 0 / tags over 32 bits
        # are invalid. upb rejected them already; stay safe anyway.
        ok &= ((wt == VARINT) | (wt == I64) | (wt == LEN) | (wt == I32)) & (num > 0)
        ok &= tag <= _U64(0xFFFFFFFF)
        value = np.zeros(len(act), dtype=_U64)
        start = pos.copy()
        for kind in (VARINT, LEN, I64, I32):
            sel = np.flatnonzero(ok & (wt == kind))
            if sel.size:
                value[sel], start[sel], pos[sel], ok[sel] = _payload(
                    buf, words, pos[sel], lim[sel], kind
                )
        for number, expected in fields.items():
            sel = np.flatnonzero(ok & (num == _U64(number)))
            if not sel.size:
                continue
            # A known field with another wire type (packed, say) is for the accessors.
            ok[sel[wt[sel] != expected]] = False
            sel = sel[wt[sel] == expected]
            ok[sel] = _keep(
                found, rep, act[sel], number, expected, value[sel], start[sel], pos[sel], repeated
            )
        found.bad[act[~ok]] = True
        cur[act] = pos
        act = act[ok & (pos < lim)]
    if rep:
        owner = np.concatenate([r[0] for r in rep])
        # Occurrences come message by message in order of appearance within each pass: a
        # stable sort by message keeps that order.
        order_ = np.argsort(owner, kind="stable")
        found.repeated = (
            owner[order_],
            np.concatenate([r[1] for r in rep])[order_],
            np.concatenate([r[2] for r in rep])[order_],
        )
    return found


def _payload(
    buf: np.ndarray, words: np.ndarray, pos: np.ndarray, lim: np.ndarray, kind: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(varint value, payload start, position after, ok) of fields of wire type ``kind``
    whose tag ends at ``pos``."""
    if kind in (I64, I32):
        after = pos + (8 if kind == I64 else 4)
        return np.zeros(len(pos), dtype=_U64), pos, after, after <= lim
    value, after, ok = _varint(buf, words, pos, lim)
    if kind == VARINT:
        return value, pos, after, ok
    # LEN: compared unsigned before any conversion, so a huge length cannot wrap around.
    ok &= value <= np.maximum(lim - after, 0).astype(_U64)
    return value, after, after + np.where(ok, value, _U64(0)).astype(np.int64), ok


def _keep(
    found: _Fields,
    rep: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    msgs: np.ndarray,
    number: int,
    kind: int,
    value: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    repeated: int | None,
) -> np.ndarray:
    """Record one occurrence of field ``number`` in each of ``msgs``; False where the field
    was already there (protobuf would merge or override: not modelled)."""
    if number == repeated:
        rep.append((msgs, start, end))
        return np.ones(len(msgs), dtype=bool)
    has = found.has[number]
    fresh = ~has[msgs]
    if not fresh.all():
        msgs, value, start, end = msgs[fresh], value[fresh], start[fresh], end[fresh]
    has[msgs] = True
    if kind == VARINT:
        found.val[number][msgs] = value
    else:
        found.val[number][msgs] = start.astype(_U64)
        found.end[number][msgs] = end
    return fresh


_HIGH_BITS = 0x8080808080808080
_LOW_BITS = 0x0101010101010101


def _words(buf: np.ndarray) -> np.ndarray:
    """The 8 bytes from every offset of ``buf`` as a little-endian uint64 (a strided view)."""
    return np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))


def _varint(
    buf: np.ndarray, words: np.ndarray, pos: np.ndarray, lim: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value as uint64, position after, ok) of the varints at ``pos`` (each before ``lim``).

    One 8-byte load per varint and bit tricks instead of a loop over bytes: the first byte
    without its high bit ends the varint, and the 7-bit groups are packed together in three
    shift-and-mask steps. Varints of 9 or 10 bytes (negative int32/int64 values) take a
    second load. Bits past the 64th are dropped, as upb does; more than 10 bytes is an error.
    """
    first = buf[pos]
    if not (first & 0x80).any():  # all one byte (tags, lengths, small numbers): no bit tricks
        after = pos + 1
        return first.astype(_U64), after, (pos < lim) & (after <= lim)
    w = words[pos]
    ends = ~w & _U64(_HIGH_BITS)
    last = ends & (~ends + _U64(1))  # the lowest end bit, 0 if none in these 8 bytes
    span = (last << _U64(1)) - _U64(1)  # all bits up to it (all 64 when none)
    length = (((span & _U64(_LOW_BITS)) * _U64(_LOW_BITS)) >> _U64(56)).astype(np.int64)
    x = w & span & _U64(0x7F7F7F7F7F7F7F7F)
    x = ((x & _U64(0x7F007F007F007F00)) >> _U64(1)) | (x & _U64(0x007F007F007F007F))
    x = ((x & _U64(0x3FFF00003FFF0000)) >> _U64(2)) | (x & _U64(0x00003FFF00003FFF))
    x = ((x & _U64(0x0FFFFFFF00000000)) >> _U64(4)) | (x & _U64(0x000000000FFFFFFF))
    ok = pos < lim
    long = np.flatnonzero(last == 0)
    if long.size:
        tail = words[pos[long] + 8]
        b8, b9 = tail & _U64(0xFF), (tail >> _U64(8)) & _U64(0xFF)
        ten = b8 >= 0x80
        x[long] |= ((b8 & _U64(0x7F)) << _U64(56)) | np.where(ten, b9 << _U64(63), _U64(0))
        length[long] = np.where(ten, 10, 9)
        ok[long[ten & (b9 >= 0x80)]] = False
    after = pos + length
    ok &= after <= lim
    return x, after, ok


def _int32(values: np.ndarray) -> np.ndarray:
    """int32/enum fields: the low 32 bits of the varint, signed (negatives use 10 bytes)."""
    return (values & _U64(0xFFFFFFFF)).astype(np.uint32).view(np.int32).astype(np.int64)


def _events(
    ev: _Fields, n: int, owners: np.ndarray, part: slice
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, delay, uncertainty) per update for one kind of event, as ``_raw_event`` reads.

    An absent event or field reads as 0, so the rules need no special case for absence.
    """
    has_delay, has_time = ev.has[1][part], ev.has[2][part]
    delay = np.zeros(n, dtype=np.int64)
    time = np.zeros(n, dtype=np.int64)
    unc = np.zeros(n, dtype=np.int64)
    delay[owners] = np.where(has_delay, _int32(ev.val[1][part]), 0)
    time[owners] = np.where(has_time, ev.val[2][part].view(np.int64), 0)
    unc[owners] = np.where(ev.has[3][part], _int32(ev.val[3][part]), 0)
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
    high = (keys.words & _U64(_HIGH_BITS)).any(axis=1) | (keys.length > ID_BYTES)
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
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=_U64)
_MIX = (_U64(0x9E3779B97F4A7C15), _U64(0xC2B2AE3D27D4EB4F), _U64(0x165667B19E3779F9))


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
    words = _words(buf)
    length = hi - lo
    packed = np.zeros((len(lo), 3), dtype=_U64)
    h = length.astype(_U64)
    for k in range(3):
        word = words[lo + 8 * k] & _MASKS[np.clip(length - 8 * k, 0, 8)]
        packed[:, k] = word
        h = (h ^ word) * _MIX[k]
    return IdKeys(length, packed, h ^ (h >> _U64(29)))

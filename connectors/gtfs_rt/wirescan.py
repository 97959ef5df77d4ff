"""A vectorised protobuf wire-format scanner: many messages of one type walked together.

Used by :mod:`.wire` (StopTimeUpdates and their events) and :mod:`.wireheads` (the
TripUpdate-level fields). One cursor per message, all advanced together by vectorised varint
reads, one field per message per step; unknown fields are skipped by wire type. Whatever
protobuf could read differently (groups, a known field with another wire type, a singular
field sent twice, a bad varint or length) marks the message ``bad``: the caller then leaves
it to the protobuf accessors. Every index is checked against its message's end before use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

VARINT, I64, LEN, I32 = 0, 1, 2, 5
#: Zero bytes a buffer must have after its data, so that a varint or fixed read near the end
#: never indexes out of it (the result is then rejected by the range check, not used).
PAD = 32
U64 = np.uint64


@dataclass(slots=True)
class Fields:
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


def scan(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    fields: Mapping[int, int],
    skip: Mapping[int, int],
    repeated: int | None = None,
) -> Fields:
    """Walk the messages ``buf[starts[i]:ends[i]]`` together and collect ``fields``.

    ``fields`` (number → wire type, numbers below 16) are the ones read; any other is skipped.
    """
    n = len(starts)
    words = word_view(buf)
    found = Fields(
        np.zeros(n, dtype=bool),
        {f: np.zeros(n, dtype=bool) for f in fields},
        {f: np.zeros(n, dtype=U64) for f in fields},
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
            if not live.size:
                break
            tag = number << 3 | kind
            act = live[buf[cur[live]] == tag]
            if not act.size:
                continue  # no message is at this field: nothing moved, nothing ended
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
        wt = (tag & U64(7)).astype(np.int64)
        num = tag >> U64(3)
        # Groups (3, 4) and undefined wire types are not modelled; field 0 / tags over 32 bits
        # are invalid. upb rejected them already; stay safe anyway.
        ok &= ((wt == VARINT) | (wt == I64) | (wt == LEN) | (wt == I32)) & (num > 0)
        ok &= tag <= U64(0xFFFFFFFF)
        value = np.zeros(len(act), dtype=U64)
        start = pos.copy()
        for kind in (VARINT, LEN, I64, I32):
            sel = np.flatnonzero(ok & (wt == kind))
            if sel.size:
                value[sel], start[sel], pos[sel], ok[sel] = _payload(
                    buf, words, pos[sel], lim[sel], kind
                )
        for number, expected in fields.items():
            sel = np.flatnonzero(ok & (num == U64(number)))
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
        return np.zeros(len(pos), dtype=U64), pos, after, after <= lim
    value, after, ok = _varint(buf, words, pos, lim)
    if kind == VARINT:
        return value, pos, after, ok
    # LEN: compared unsigned before any conversion, so a huge length cannot wrap around.
    ok &= value <= np.maximum(lim - after, 0).astype(U64)
    return value, after, after + np.where(ok, value, U64(0)).astype(np.int64), ok


def _keep(
    found: Fields,
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
        found.val[number][msgs] = start.astype(U64)
        found.end[number][msgs] = end
    return fresh


HIGH_BITS = 0x8080808080808080
_LOW_BITS = 0x0101010101010101


def word_view(buf: np.ndarray) -> np.ndarray:
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
        return first.astype(U64), after, (pos < lim) & (after <= lim)
    w = words[pos]
    ends = ~w & U64(HIGH_BITS)
    last = ends & (~ends + U64(1))  # the lowest end bit, 0 if none in these 8 bytes
    span = (last << U64(1)) - U64(1)  # all bits up to it (all 64 when none)
    length = (((span & U64(_LOW_BITS)) * U64(_LOW_BITS)) >> U64(56)).astype(np.int64)
    x = w & span & U64(0x7F7F7F7F7F7F7F7F)
    x = ((x & U64(0x7F007F007F007F00)) >> U64(1)) | (x & U64(0x007F007F007F007F))
    x = ((x & U64(0x3FFF00003FFF0000)) >> U64(2)) | (x & U64(0x00003FFF00003FFF))
    x = ((x & U64(0x0FFFFFFF00000000)) >> U64(4)) | (x & U64(0x000000000FFFFFFF))
    ok = pos < lim
    long = np.flatnonzero(last == 0)
    if long.size:
        tail = words[pos[long] + 8]
        b8, b9 = tail & U64(0xFF), (tail >> U64(8)) & U64(0xFF)
        ten = b8 >= 0x80
        x[long] |= ((b8 & U64(0x7F)) << U64(56)) | np.where(ten, b9 << U64(63), U64(0))
        length[long] = np.where(ten, 10, 9)
        ok[long[ten & (b9 >= 0x80)]] = False
    after = pos + length
    ok &= after <= lim
    return x, after, ok


def int32(values: np.ndarray) -> np.ndarray:
    """int32/enum fields: the low 32 bits of the varint, signed (negatives use 10 bytes)."""
    return (values & U64(0xFFFFFFFF)).astype(np.uint32).view(np.int32).astype(np.int64)

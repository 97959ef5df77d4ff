"""The TripUpdate-level fields of every entity (:class:`TripHead`), from the bytes in bulk.

Why: resolving a trip update needs a dozen fields of its TripUpdate, TripDescriptor,
VehicleDescriptor and TripProperties. Read through the protobuf accessors that is ~20 calls
per trip (each sub-message access builds a Python wrapper): a good share of the apply for
thousands of trips. :mod:`.wire` already walks every TripUpdate body; the same scanner
(:mod:`.wirescan`) walks the three sub-messages, and Python only slices out the strings.

:func:`head_of` is the reference (the accessors); the tests compare the two. As everywhere in
:mod:`.wire`, whatever protobuf could read differently (a sub-message or singular field sent
twice, which protobuf merges; a known field with another wire type; a string that is not valid
UTF-8) marks the entity bad, and the caller then reads it through the accessors.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np
from google.transit import gtfs_realtime_pb2 as pb

from .wirescan import LEN, VARINT, Fields, int32, scan

#: TripUpdate fields: trip, stop_time_update (repeated), vehicle, timestamp, delay,
#: trip_properties. The TripUpdate scan of :mod:`.wire` reads them all.
TU_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: VARINT, 5: VARINT, 6: LEN}
# Read: trip_id, start_time, start_date, schedule_relationship; skipped: route_id,
# direction_id, modified_trip (not used by the apply).
_TD_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: VARINT}
_TD_SKIP = {5: LEN, 6: VARINT, 7: LEN}
_VEHICLE_FIELDS = {1: LEN, 2: LEN}  # id, label
_VEHICLE_SKIP = {3: LEN, 4: VARINT}  # license_plate, wheelchair_accessible
_PROPS_FIELDS = {5: LEN}  # trip_headsign
_PROPS_SKIP = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 6: LEN}
#: TripDescriptor.schedule_relationship values the schema knows: proto2 enums are closed, so
#: any other number leaves the field unset (it reads as SCHEDULED, 0).
_KNOWN_TRIP_RELATIONSHIPS = np.array(
    [v.number for v in pb.TripDescriptor.ScheduleRelationship.DESCRIPTOR.values],
    dtype=np.int64,
)


class TripHead(NamedTuple):
    """What the apply reads of a TripUpdate besides its stop_time_updates.

    Strings are "" when absent (as the accessors read them); ``timestamp`` (as sent) and
    ``delay`` are None when absent, since presence matters for them.
    """

    trip_id: str
    start_date: str
    start_time: str
    relationship: int
    timestamp: int | None
    delay: int | None
    vehicle_id: str
    vehicle_label: str
    headsign: str


def head_of(tu: pb.TripUpdate) -> TripHead:
    """A :class:`TripHead` through the protobuf accessors (the reference)."""
    td = tu.trip
    vehicle = tu.vehicle
    return TripHead(
        td.trip_id,
        td.start_date,
        td.start_time,
        td.schedule_relationship,
        tu.timestamp if tu.HasField("timestamp") else None,
        tu.delay if tu.HasField("delay") else None,
        vehicle.id,
        vehicle.label,
        tu.trip_properties.trip_headsign if tu.HasField("trip_properties") else "",
    )


def decode_heads(buf: np.ndarray, blob: bytes, tu: Fields, bad: np.ndarray) -> list[TripHead]:
    """Per entity, its :class:`TripHead`; ``tu`` is the TripUpdate scan (:data:`TU_FIELDS`).

    Entities that cannot be read exactly are set in ``bad`` (their heads are meaningless).
    """
    n = len(bad)
    text = blob.decode("latin-1")
    td_at, td = _sub(buf, tu, 1, _TD_FIELDS, _TD_SKIP, bad)
    ve_at, ve = _sub(buf, tu, 3, _VEHICLE_FIELDS, _VEHICLE_SKIP, bad)
    pr_at, pr = _sub(buf, tu, 6, _PROPS_FIELDS, _PROPS_SKIP, bad)
    rel = np.zeros(n, dtype=np.int64)
    sent = int32(td.val[4])
    rel[td_at] = np.where(td.has[4] & known_enum(sent, _KNOWN_TRIP_RELATIONSHIPS), sent, 0)
    # tuple.__new__ over zipped columns: a named tuple's own __new__ is a Python function.
    return list(
        map(
            partial(tuple.__new__, TripHead),
            zip(
                _strings(text, blob, td_at, td, 1, bad),
                _strings(text, blob, td_at, td, 3, bad),
                _strings(text, blob, td_at, td, 2, bad),
                rel.tolist(),
                _optional(tu.val[4].tolist(), tu.has[4]),  # uint64: the value as sent
                _optional(int32(tu.val[5]).tolist(), tu.has[5]),
                _strings(text, blob, ve_at, ve, 1, bad),
                _strings(text, blob, ve_at, ve, 2, bad),
                _strings(text, blob, pr_at, pr, 5, bad),
                strict=True,
            ),
        )
    )


def known_enum(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Whether each value is one of ``known`` (small non-negative numbers): a table lookup,
    cheaper than ``np.isin`` on 100,000 values."""
    table = np.zeros(int(known.max()) + 2, dtype=bool)
    table[known] = True
    # Anything out of the table's range lands on its last slot, which is False.
    return table[np.where((values >= 0) & (values < len(table)), values, len(table) - 1)]


def _sub(
    buf: np.ndarray,
    tu: Fields,
    number: int,
    fields: dict[int, int],
    skip: dict[int, int],
    bad: np.ndarray,
) -> tuple[np.ndarray, Fields]:
    """Scan the sub-message ``number`` of the TripUpdates that have it: (entities, fields)."""
    at = np.flatnonzero(tu.has[number])
    found = scan(buf, tu.val[number][at].astype(np.int64), tu.end[number][at], fields, skip)
    bad[at[found.bad]] = True
    return at, found


def _strings(
    text: str, blob: bytes, at: np.ndarray, found: Fields, number: int, bad: np.ndarray
) -> list[str]:
    """Per entity, string field ``number`` of its sub-message ("" when absent).

    ``text`` is ``blob`` decoded as Latin-1 (one character per byte, same offsets): an
    ASCII slice of it is already the UTF-8 decoding, and slicing a str is much cheaper than
    slicing and decoding bytes. Anything else is decoded from the bytes.
    """
    out = [""] * len(bad)
    has = found.has[number]
    rows = at[has].tolist()
    bounds = list(
        zip(found.val[number][has].tolist(), found.end[number][has].tolist(), strict=True)
    )
    values = [text[lo:hi] for lo, hi in bounds]
    for i, value in zip(rows, values, strict=True):
        out[i] = value
    if not all(map(str.isascii, values)):
        for i, value, (lo, hi) in zip(rows, values, bounds, strict=True):
            if not value.isascii():
                try:
                    out[i] = blob[lo:hi].decode("utf-8")
                except UnicodeDecodeError:
                    bad[i] = True  # what the accessors make of it is theirs to say
    return out


def _optional(values: list[int], has: np.ndarray) -> list[int | None]:
    return [v if h else None for v, h in zip(values, has.tolist(), strict=True)]

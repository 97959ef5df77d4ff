"""The bulk decoder (connectors/gtfs_rt/wire.py + locate.py) against the protobuf accessors.

Feeds are written byte by byte here, so that they hold what protobuf writers rarely emit but
a parser must take: fields out of order, unknown fields and extensions, negative int32s as
10-byte varints, unknown enum numbers, 64-bit enum values, invalid UTF-8, and what the decoder
must hand back to the accessors (a field sent twice, packed scalars, groups). Ingesting the
bytes (decoded in bulk) and the parsed message (accessors only) must give the same state, and
the block apply must match the per-call reference.
"""

from __future__ import annotations

import random

import pytest
from google.transit import gtfs_realtime_pb2 as pb
from reference_apply import apply_updates as reference_apply
from rtfeeds import DAY, ts

from connectors.gtfs_rt import RealtimeFeed, decode_feed
from connectors.gtfs_rt.callblock import CallBlockBuilder
from connectors.gtfs_rt.counters import FeedCounters
from connectors.gtfs_rt.matching import resolve_run
from connectors.gtfs_rt.trips import read_event, scheduled_calls
from connectors.gtfs_rt.wire import decode_updates
from connectors.gtfs_rt.wireheads import head_of

TRIPS = ("T1", "T2", "LOOP", "NIGHT", "Q")
VARINT, I64, LEN, I32 = 0, 1, 2, 5


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negatives as protobuf writes them: 10 bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, wire_type: int, payload: int | bytes) -> bytes:
    tag = varint(number << 3 | wire_type)
    if wire_type == VARINT:
        assert isinstance(payload, int)
        return tag + varint(payload)
    if wire_type == I64:
        assert isinstance(payload, int)
        return tag + payload.to_bytes(8, "little", signed=True)
    if wire_type == I32:
        assert isinstance(payload, int)
        return tag + payload.to_bytes(4, "little", signed=True)
    assert isinstance(payload, bytes)
    return tag + varint(len(payload)) + payload


def unknown_field(
    rng: random.Random, numbers: tuple[int, ...] = (6, 7, 9, 15, 16, 1000, 1500, 9000)
) -> bytes:
    number = rng.choice(numbers)
    kind = rng.choice([VARINT, I64, LEN, I32])
    if kind == LEN and number == 6:  # stop_time_properties / trip_properties: a message
        return field(number, LEN, field(1, LEN, b"x"))
    if kind == LEN:
        return field(number, LEN, bytes(rng.randrange(256) for _ in range(rng.randint(0, 12))))
    return field(number, kind, rng.randint(-(2**31), 2**31 - 1))


def event(rng: random.Random, sched: int) -> bytes:
    parts = []
    roll = rng.random()
    if roll < 0.45:
        parts.append(field(2, VARINT, sched + rng.randint(-300, 900)))
    elif roll < 0.55:
        parts.append(field(2, VARINT, (sched + rng.randint(-60, 600)) * 1000))  # ms
    elif roll < 0.62:
        parts.append(field(2, VARINT, rng.choice([0, -5, -(2**40)])))
    if rng.random() < 0.5:
        parts.append(field(1, VARINT, rng.choice([0, 0, rng.randint(-900, 900), -(2**31)])))
    if rng.random() < 0.3:
        parts.append(field(3, VARINT, rng.choice([0, 30, -30, 60])))
    if rng.random() < 0.15:
        parts.append(unknown_field(rng))
    rng.shuffle(parts)
    return b"".join(parts)


def stop_time_update(rng: random.Random, tt, schedule, *, hostile: bool) -> bytes:
    seq, stop, arr, dep = rng.choice(schedule)
    parts = []
    roll = rng.random()
    stop_id = tt.stop_ids[stop].encode()
    if roll < 0.55:
        parts += [field(1, VARINT, seq), field(4, LEN, stop_id)]
    elif roll < 0.7:
        parts.append(field(4, LEN, stop_id))  # stop_id only
    elif roll < 0.8:
        parts.append(field(1, VARINT, seq))
        parts.append(field(4, LEN, rng.choice([b"A", b"B", b"C", b"D", b"nowhere", b""])))
    elif roll < 0.9:
        parts.append(field(1, VARINT, rng.choice([0, 99, seq, seq + (1 << 32)])))
    else:
        parts.append(field(4, LEN, rng.choice([b"\xc3\xa9t\xc3\xa9", b"A" * 30, b"B\x00"])))
    roll = rng.random()
    if roll < 0.08:
        parts.append(field(5, VARINT, 1))  # SKIPPED
    elif roll < 0.14:
        parts.append(field(5, VARINT, 2))  # NO_DATA
    elif roll < 0.2:
        # SCHEDULED, UNSCHEDULED, unknown (→ SCHEDULED), negative, 2^32 + 1 (int32: 1).
        parts.append(field(5, VARINT, rng.choice([0, 3, 7, -1, (1 << 32) + 1])))
    if rng.random() < 0.75:
        parts.append(field(2, LEN, event(rng, arr)))
    if rng.random() < 0.75:
        parts.append(field(3, LEN, event(rng, dep)))
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        parts.append(unknown_field(rng))
    if rng.random() < 0.3:
        rng.shuffle(parts)
    if hostile and rng.random() < 0.05:
        parts.append(
            rng.choice(
                [
                    field(1, VARINT, seq),  # stop_sequence twice: the last one wins
                    field(4, LEN, b"B"),  # stop_id twice
                    field(3, LEN, field(1, VARINT, 5)),  # departure twice: merged
                    field(1, LEN, varint(seq)),  # packed: not legal for a singular field
                    field(4, LEN, b"\xff\xfe"),  # invalid UTF-8
                    varint(8 << 3 | 3) + field(1, VARINT, 1) + varint(8 << 3 | 4),  # a group
                ]
            )
        )
    return b"".join(parts)


def descriptor_fields(rng: random.Random, trip_id: str, duplicated: bool) -> list[bytes]:
    """A TripDescriptor's fields besides start_date, in any order."""
    parts = [field(1, LEN, trip_id.encode())]
    if rng.random() < 0.2:
        parts.append(field(2, LEN, rng.choice([b"08:00:00", b"25:10:00", b""])))
    if rng.random() < 0.2:
        parts.append(field(5, LEN, b"R1"))  # route_id, direction_id: not read, skipped
    if rng.random() < 0.2:
        parts.append(field(6, VARINT, rng.choice([0, 1])))
    roll = rng.random()
    if duplicated:
        parts.append(field(4, VARINT, pb.TripDescriptor.DUPLICATED))
    elif roll < 0.05:
        parts.append(field(4, VARINT, pb.TripDescriptor.CANCELED))
    elif roll < 0.08:
        parts.append(field(4, VARINT, pb.TripDescriptor.DELETED))
    elif roll < 0.12:
        # SCHEDULED, unknown (→ SCHEDULED), negative, 2^32 + 3 (int32: UNSCHEDULED).
        parts.append(field(4, VARINT, rng.choice([0, 4, 42, -1, (1 << 32) + 3])))
    if rng.random() < 0.05:
        parts.append(unknown_field(rng, (8, 9, 1000)))
    rng.shuffle(parts)
    return parts


def trip_level_fields(rng: random.Random) -> list[bytes]:
    """vehicle, timestamp, delay, trip_properties of a TripUpdate (each maybe absent)."""
    parts = []
    if rng.random() < 0.2:
        parts.append(field(5, VARINT, rng.choice([rng.randint(-60, 600), 0, -(2**31)])))
    if rng.random() < 0.4:
        vehicle = [field(1, LEN, b"bus"), field(2, LEN, "Ligne é".encode())]
        if rng.random() < 0.3:
            vehicle += [field(3, LEN, b"AB-123-CD"), field(4, VARINT, 2)]
        rng.shuffle(vehicle)
        parts.append(field(3, LEN, b"".join(rng.sample(vehicle, rng.randint(0, len(vehicle))))))
    if rng.random() < 0.4:
        parts.append(field(4, VARINT, rng.choice([ts(8, 0) - 30, ts(8, 0) * 1000, 0])))
    if rng.random() < 0.2:
        props = [field(5, LEN, rng.choice([b"Gare", b""])), field(6, LEN, b"short")]
        parts.append(field(6, LEN, b"".join(rng.sample(props, rng.randint(0, 2)))))
    return parts


def hostile_trip_field(rng: random.Random, trip_id: str) -> bytes:
    """What protobuf reads otherwise than a single pass could: the accessors take over."""
    return rng.choice(
        [
            field(1, LEN, field(2, LEN, b"08:00:00")),  # trip sent twice: merged
            field(1, LEN, field(1, LEN, trip_id.encode())),  # trip_id twice, via a merge
            field(3, LEN, field(2, LEN, b"x")),  # vehicle twice
            field(6, LEN, field(5, LEN, b"y")),  # trip_properties twice (or once, with DUP.)
            field(4, LEN, b"12"),  # timestamp with a wrong wire type
            field(5, I32, 7),  # delay with a wrong wire type
            field(3, LEN, field(2, LEN, b"\xff\xfe")),  # invalid UTF-8 (second vehicle)
        ]
    )


def trip_update_entity(rng: random.Random, tt, i: int, *, hostile: bool) -> tuple[bytes, str]:
    trip_id = rng.choice(TRIPS)
    match = resolve_run(tt, tt.trip_index[trip_id], DAY.toordinal(), None, None)
    schedule = scheduled_calls(tt, match.run, match.origin)
    duplicated = rng.random() < 0.05
    parts = descriptor_fields(rng, trip_id, duplicated)
    if rng.random() < 0.8:
        parts.insert(rng.randrange(len(parts) + 1), field(3, LEN, b"20260610"))
    # A duplicated trip's trip_properties says when the copy starts.
    extra = [field(6, LEN, field(3, LEN, b"10:00:00"))] if duplicated else trip_level_fields(rng)
    if hostile and rng.random() < 0.15:
        extra.append(hostile_trip_field(rng, trip_id))
    if hostile and rng.random() < 0.05:
        parts.append(field(1, LEN, b"\xc3("))  # trip_id: invalid UTF-8, and sent twice
    updates = [
        field(2, LEN, stop_time_update(rng, tt, schedule, hostile=hostile))
        for _ in range(rng.randint(0, len(schedule) + 2))
    ]
    parts = [field(1, LEN, b"".join(parts)), *updates]
    for part in extra:
        parts.insert(rng.randrange(len(parts) + 1), part)
    if rng.random() < 0.1:
        parts.append(unknown_field(rng, (7, 9, 15, 16, 1000, 1500, 9000)))  # 1-6 are known
    body = b"".join(parts)
    if rng.random() < 0.1 and len(parts) > 1:
        # The TripUpdate sent in two pieces: protobuf merges them (updates concatenated).
        cut = len(b"".join(parts[: rng.randint(1, len(parts) - 1)]))
        pieces = field(3, LEN, body[:cut]) + field(3, LEN, body[cut:])
    else:
        pieces = field(3, LEN, body)
    entity_id = f"e{i}"
    return field(2, LEN, field(1, LEN, entity_id.encode()) + pieces), entity_id


def random_feed(rng: random.Random, tt, *, hostile: bool, entities: int = 12) -> bytes:
    header = field(1, LEN, b"2.0") + field(3, VARINT, ts(8, 0))
    body = [field(1, LEN, header)]
    for i in range(entities):
        body.append(trip_update_entity(rng, tt, i, hostile=hostile)[0])
    return b"".join(body)


def states_equal(a, b) -> None:
    assert a.trips.keys() == b.trips.keys()
    for key, trip in a.trips.items():
        assert trip == b.trips[key], key
        assert tuple(trip.calls) == tuple(b.trips[key].calls), key
    assert a.extra_trips == b.extra_trips
    assert a.counters == b.counters


def ingest_both(tt, data: bytes):
    msg = decode_feed(data)  # what the accessors read
    by_bytes, by_message = RealtimeFeed(tt), RealtimeFeed(tt)
    by_bytes.ingest("s", data, ts(8, 0))
    by_message.ingest("s", msg, ts(8, 0))
    return by_bytes.state, by_message.state


@pytest.mark.parametrize("seed", range(40))
def test_bulk_decode_gives_the_accessors_state(tt, seed: int) -> None:
    data = random_feed(random.Random(seed), tt, hostile=False)
    wire = decode_updates(data, len(decode_feed(data).entity))
    assert wire is not None and all(wire.ok)  # nothing here needs the accessors
    states_equal(*ingest_both(tt, data))


@pytest.mark.parametrize("seed", range(40))
def test_entities_needing_the_accessors_give_the_same_state(tt, seed: int) -> None:
    data = random_feed(random.Random(1000 + seed), tt, hostile=True, entities=20)
    states_equal(*ingest_both(tt, data))


@pytest.mark.parametrize("hostile", [False, True])
def test_trip_level_fields_are_read_as_the_accessors_do(tt, hostile: bool) -> None:
    checked = 0
    for seed in range(60):
        data = random_feed(random.Random(3000 + seed), tt, hostile=hostile, entities=20)
        msg = decode_feed(data)
        wire = decode_updates(data, len(msg.entity))
        assert wire is not None
        for i, entity in enumerate(msg.entity):
            if wire.ok[i]:
                tu = entity.trip_update
                assert wire.head(i) == head_of(tu), (seed, i)
                assert wire.first_time(i) == _first_time(tu), (seed, i)
                checked += 1
            else:
                assert wire.head(i) is None
    assert checked > 500


def _first_time(tu: pb.TripUpdate) -> int | None:
    """The first usable time as sent (departure, then arrival), through the accessors."""
    for update in tu.stop_time_update:
        for name in ("departure", "arrival"):
            ev = read_event(update, name)
            if ev is not None and ev.time is not None:
                return getattr(update, name).time
    return None


def test_hostile_feeds_do_fall_back(tt) -> None:
    fell_back = 0
    for seed in range(40):
        data = random_feed(random.Random(1000 + seed), tt, hostile=True, entities=20)
        wire = decode_updates(data, len(decode_feed(data).entity))
        assert wire is not None
        fell_back += wire.ok.count(False)
    assert fell_back > 10  # the hostile cases above are really exercised


@pytest.mark.parametrize("seed", range(30))
def test_bulk_block_apply_matches_the_reference(tt, seed: int) -> None:
    rng = random.Random(2000 + seed)
    data = random_feed(rng, tt, hostile=False, entities=15)
    msg = decode_feed(data)
    wire = decode_updates(data, len(msg.entity))
    assert wire is not None
    builder = CallBlockBuilder(tt)
    cases = []
    for i, entity in enumerate(msg.entity):
        tu = entity.trip_update
        if tu.trip.schedule_relationship != pb.TripDescriptor.SCHEDULED:
            continue
        match = resolve_run(tt, tt.trip_index[tu.trip.trip_id], DAY.toordinal(), None, None)
        mine = FeedCounters()
        view = builder.add(match.run, int(match.origin), tu, mine, wire=(wire, i))
        theirs = FeedCounters()
        schedule = scheduled_calls(tt, match.run, match.origin)
        cases.append((view, reference_apply(tt, schedule, tu, theirs), mine, theirs))
    builder.finish()
    for view, expected, mine, theirs in cases:
        assert tuple(view) == expected
        assert (mine.skipped_stops, mine.unmatched_stop_updates) == (
            theirs.skipped_stops,
            theirs.unmatched_stop_updates,
        )


def test_values_are_read_as_protobuf_does() -> None:
    stu = (
        field(1, VARINT, 7)
        + field(4, LEN, "é".encode())
        + field(5, VARINT, (1 << 32) + 1)  # an int32 enum keeps the low 32 bits: SKIPPED
        + field(2, LEN, field(1, VARINT, -42) + field(1000, VARINT, 5))
        + field(3, LEN, field(2, VARINT, 1_780_000_000_123) + field(3, VARINT, 30))
    )
    tu = field(2, LEN, stu) + field(2, LEN, field(5, VARINT, 9) + field(1, VARINT, 0))
    data = field(1, LEN, field(1, LEN, b"2.0")) + field(2, LEN, field(3, LEN, tu))
    msg = decode_feed(data)
    wire = decode_updates(data, 1)
    assert wire is not None and wire.ok == [True] and wire.first == [0, 2]
    parsed = msg.entity[0].trip_update.stop_time_update
    assert wire.seq.tolist() == [u.stop_sequence for u in parsed] == [7, 0]
    assert wire.has_seq.tolist() == [u.HasField("stop_sequence") for u in parsed]
    assert wire.relationship.tolist() == [u.schedule_relationship for u in parsed] == [1, 0]
    assert wire.arr_delay[0] == parsed[0].arrival.delay == -42
    assert wire.dep_time[0] == parsed[0].departure.time == 1_780_000_000_123
    assert wire.uncertainty[0] == 30
    lo, hi = int(wire.stop_lo[0]), int(wire.stop_hi[0])
    assert wire.blob[lo:hi].decode() == parsed[0].stop_id == "é"


def test_a_lite_parse_failure_leaves_everything_to_the_accessors() -> None:
    assert decode_updates(b"\x12\x05abc", 1) is None  # truncated
    data = field(1, LEN, field(1, LEN, b"2.0"))
    assert decode_updates(data, 3) is None  # the entity counts disagree


@pytest.mark.parametrize(
    ("relationship", "expected"),
    [(3, 3), ((1 << 32) + 3, 3), (4, 0), (-1, 0), (1, 1)],  # int32, closed enum
)
def test_trip_level_values_are_read_as_protobuf_does(relationship: int, expected: int) -> None:
    descriptor = (
        field(3, LEN, b"20260610")
        + field(6, VARINT, 1)
        + field(4, VARINT, relationship)
        + field(1, LEN, "Tö".encode())
        + field(2, LEN, b"25:10:00")
    )
    tu = (
        field(6, LEN, field(6, LEN, b"s") + field(5, LEN, "Gare é".encode()))
        + field(5, VARINT, -42)  # a 10-byte varint
        + field(3, LEN, field(4, VARINT, 1) + field(2, LEN, b"L") + field(1, LEN, b"V"))
        + field(4, VARINT, 1_780_000_000_123)
        + field(1, LEN, descriptor)
    )
    data = field(1, LEN, field(1, LEN, b"2.0")) + field(2, LEN, field(3, LEN, tu))
    wire = decode_updates(data, 1)
    assert wire is not None and wire.ok == [True]
    head = wire.head(0)
    assert head == head_of(decode_feed(data).entity[0].trip_update)
    assert head == (
        "Tö",
        "20260610",
        "25:10:00",
        expected,
        1_780_000_000_123,
        -42,
        "V",
        "L",
        "Gare é",
    )

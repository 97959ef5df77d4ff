"""Decoding and feed semantics: corrupt bodies, mixed entities, FULL_DATASET, DIFFERENTIAL,
out-of-order headers, staleness."""

from __future__ import annotations

import pytest
from google.transit import gtfs_realtime_pb2 as pb
from rtfeeds import alert, message, stu, trip_update, ts, vehicle

from connectors.gtfs_rt import (
    FeedDecodeError,
    RealtimeFeed,
    decode_feed,
    entity_kinds,
    read_header,
)
from connectors.gtfs_rt.decode import SLICE_BYTES, _slice_ends


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty body"),
        (b"<html><body>502 Bad Gateway</body></html>", "HTML"),
        (b'{"entity": []}', "JSON"),
        (b"\xff\xff\xff\xff garbage", "not a GTFS-realtime FeedMessage"),
    ],
)
def test_corrupt_body_raises_a_clear_error(body, why):
    """Bodies that are not a FeedMessage raise FeedDecodeError saying why."""
    with pytest.raises(FeedDecodeError, match=why):
        decode_feed(body)


def big_message() -> pb.FeedMessage:
    """A message several times :data:`SLICE_BYTES` long, of every kind of entity and field
    (so that the slices cut between entities of all kinds, unknown fields included)."""
    entities = []
    for i in range(2500):
        entities.append(trip_update(f"T{i}", *(stu(k, "A", dep_delay=k) for k in range(1, 9))))
        entities.append(vehicle(f"bus-{i}", trip_id=f"T{i}", start_date="20260610"))
        entities.append(alert(f"al-{i}", header=[("fr", "Travaux " * 20)], route_id="R"))
    m = message(*entities)
    return m


def test_a_big_body_is_parsed_in_slices_into_the_same_message():
    """Above SLICE_BYTES the body is merged slice by slice (so a worker thread lets the GIL
    go in between): the message is the one a single ParseFromString gives."""
    body = big_message().SerializeToString() + b"\xa8\x06\x2a"  # field 101 = 42: unknown
    assert len(body) > 3 * SLICE_BYTES
    ends = _slice_ends(body)
    assert ends is not None and len(ends) >= 3 and ends[-1] == len(body)
    reference = pb.FeedMessage()
    reference.ParseFromString(body)
    decoded = decode_feed(body)
    assert decoded == reference
    assert decoded.SerializeToString() == reference.SerializeToString()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda body: body[: len(body) - 7], "truncated in the last entity"),
        (lambda body: body[: len(body) // 2 + 3], "truncated in the middle"),
        (lambda body: body + b"\x12\xff\xff\xff\xff\x0f", "a length past the end"),
        (lambda body: body + b"\x12", "a tag without its length"),
    ],
)
def test_a_damaged_big_body_is_still_refused_with_a_clear_error(damage, why):
    """Whatever the slicing makes of a damaged body, decode_feed refuses it as before."""
    body = damage(big_message().SerializeToString())
    with pytest.raises(FeedDecodeError, match="not a GTFS-realtime FeedMessage"):
        decode_feed(body)


def test_a_big_body_the_slicer_does_not_model_is_parsed_in_one_go():
    """A (legal, unknown) group field at the top level: no slices, protobuf decides."""
    body = big_message().SerializeToString() + b"\x9b\x06\x9c\x06"  # group 99, empty
    assert _slice_ends(body) is None
    reference = pb.FeedMessage()
    reference.ParseFromString(body)
    assert decode_feed(body) == reference


def test_header_is_read_and_millisecond_timestamps_are_scaled():
    """Version, incrementality and timestamp; a timestamp in ms is read as seconds."""
    m = message(timestamp=ts(8, 0) * 1000, differential=True)
    header = read_header(decode_feed(m.SerializeToString()))
    assert (header.version, header.incrementality, header.timestamp) == (
        "2.0",
        "differential",
        ts(8, 0),
    )


def test_mixed_entity_types_in_one_message(tt):
    """One message with trip updates, vehicles and alerts (Lille's single URL) feeds all three."""
    m = message(
        trip_update("T1", stu(1, "A", dep_delay=60)),
        vehicle("bus-1", trip_id="T1", start_date="20260610"),
        alert("al-1", header=[("fr", "Travaux")], route_id="R"),
    )
    assert dict(entity_kinds(m)) == {"trip_update": 1, "vehicle": 1, "alert": 1}
    feed = RealtimeFeed(tt)
    result = feed.ingest("lille", m.SerializeToString(), received_at=ts(8, 0))
    assert result.accepted
    assert result.kinds == {"trip_update": 1, "vehicle": 1, "alert": 1}
    state = feed.state
    assert (len(state.trips), len(state.vehicles), len(state.alerts)) == (1, 1, 1)
    assert state.counters.entities == 3


def test_full_dataset_replaces_the_previous_state(tt):
    """A second FULL_DATASET without T1 drops T1's update."""
    feed = RealtimeFeed(tt)
    feed.ingest("tu", message(trip_update("T1", stu(1, "A", dep_delay=60))), ts(8, 0))
    feed.ingest("tu", message(trip_update("T2", stu(1, "A", dep_delay=60)), timestamp=ts(8, 1)), 0)
    assert [t.trip_id for t in feed.state.trips.values()] == ["T2"]


def _send(feed: RealtimeFeed, form: str, msg: pb.FeedMessage, received_at: float) -> None:
    """Ingest ``msg`` decoded, as bytes, or decoded with its bytes (the connector's way)."""
    data = msg.SerializeToString()
    if form == "message":
        feed.ingest("tu", msg, received_at)
    elif form == "bytes":
        feed.ingest("tu", data, received_at)
    else:
        feed.ingest("tu", pb.FeedMessage.FromString(data), received_at, raw=data)


@pytest.mark.parametrize("form", ["message", "bytes", "message+raw"])
def test_differential_upserts_and_deletes_by_entity_id(tt, form):
    """DIFFERENTIAL keeps other entities (their updates read from the earlier message),
    replaces same ids and honours is_deleted, whatever form the messages come in."""
    feed = RealtimeFeed(tt)
    first = message(
        trip_update("T1", stu(1, "A", dep_delay=60)),
        trip_update("T2", stu(1, "A", dep_delay=60)),
        trip_update("Q", stu(1, "A", dep_delay=120)),
    )
    _send(feed, form, first, ts(8, 0))
    gone = pb.FeedEntity(id="T2", is_deleted=True)
    diff = message(
        trip_update("T1", stu(1, "A", dep_delay=180)), gone, timestamp=ts(8, 1), differential=True
    )
    _send(feed, form, diff, ts(8, 1))
    trips = sorted((t.trip_id, t.calls[0].departure_delay) for t in feed.state.trips.values())
    assert trips == [("Q", 120), ("T1", 180)]
    feed.set_timetable(tt)  # re-resolved from what each message said
    trips = sorted((t.trip_id, t.calls[0].departure_delay) for t in feed.state.trips.values())
    assert trips == [("Q", 120), ("T1", 180)]


def test_timestamp_going_backwards_is_ignored(tt):
    """An older header timestamp than the last accepted one leaves the state untouched."""
    feed = RealtimeFeed(tt)
    feed.ingest("tu", message(trip_update("T1", stu(1, "A", dep_delay=60)), timestamp=ts(8, 1)), 0)
    result = feed.ingest(
        "tu", message(trip_update("T2", stu(1, "A", dep_delay=60)), timestamp=ts(8, 0)), 0
    )
    assert (result.accepted, result.reason) == (False, "ignored: timestamp went backwards")
    assert [t.trip_id for t in feed.state.trips.values()] == ["T1"]


def test_sources_have_their_own_timestamps(tt):
    """Two URLs of one feed: an older timestamp on the second source is not "backwards"."""
    feed = RealtimeFeed(tt)
    feed.ingest("tu", message(trip_update("T1", stu(1, "A", dep_delay=60)), timestamp=ts(8, 1)), 0)
    result = feed.ingest("vp", message(vehicle("bus-1"), timestamp=ts(8, 0)), 0)
    assert result.accepted
    assert (len(feed.state.trips), len(feed.state.vehicles)) == (1, 1)


def test_staleness_is_judged_against_now(tt):
    """Trip updates are stale after 90 s (configurable), alerts after 10 min."""
    feed = RealtimeFeed(tt, stale_after_s=90)
    feed.ingest(
        "all",
        message(
            trip_update("T1", stu(1, "A", dep_delay=60)),
            alert("al-1", header=[("fr", "Travaux")], route_id="R"),
        ),
        ts(8, 0),
    )
    state = feed.state
    run = tt.runs_of_trip(tt.trip_index["T1"])[0]
    day = next(iter(state.trips))[1]
    assert state.trip(run, day, ts(8, 1)) is not None
    assert state.trip(run, day, ts(8, 2)) is None
    fresh, stale = state.staleness(ts(8, 1)), state.staleness(ts(8, 5))
    assert (fresh.trip_updates_stale, stale.trip_updates_stale) == (False, True)
    assert (stale.alerts_stale, state.staleness(ts(8, 11)).alerts_stale) == (False, True)
    assert [a.alert_id for a in state.active_alerts(ts(8, 9))] == ["al-1"]
    assert state.active_alerts(ts(8, 11)) == []


def test_message_without_timestamp_ages_from_reception(tt):
    """No header timestamp: freshness counts from when the message was received."""
    m = message(trip_update("T1", stu(1, "A", dep_delay=60)))
    m.header.ClearField("timestamp")
    feed = RealtimeFeed(tt)
    feed.ingest("tu", m, received_at=ts(9, 0))
    assert not feed.state.staleness(ts(9, 1)).trip_updates_stale
    assert feed.state.staleness(ts(9, 2)).trip_updates_stale


def test_new_timetable_re_resolves_sources(tt):
    """set_timetable re-matches what the sources said against the new static feed."""
    feed = RealtimeFeed(tt)
    feed.ingest("tu", message(trip_update("T1", stu(1, "A", dep_delay=60))), ts(8, 0))
    feed.set_timetable(tt)
    assert feed.state.counters.matched == 1

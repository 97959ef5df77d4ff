"""Real static + realtime pairs: match counts and delays checked against an independent
decoding (stop_times.txt read with csv, the service-day origin computed here with zoneinfo)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from google.transit import gtfs_realtime_pb2 as pb
from rtfeeds import static_timetable

from connectors.gtfs import compile_feed
from connectors.gtfs_rt import RealtimeFeed, decode_feed, realtime_departures

PAIRS = Path(__file__).resolve().parents[3] / "shared" / "data" / "gtfs-rt-pairs"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gtfs_rt"
needs_shared = pytest.mark.skipif(
    not PAIRS.is_dir(), reason=f"shared GTFS-RT pairs not found at {PAIRS} (../shared absent)"
)


def _table(zip_path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(zip_path) as z:
        text = z.read(name).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def _secs(text: str) -> int:
    h, m, s = (int(x) for x in text.strip().split(":"))
    return h * 3600 + m * 60 + s


def _origin(date_text: str, zone: str) -> int:
    """POSIX of noon minus 12 h on the service date, computed independently of the engine."""
    d = dt.datetime.strptime(date_text, "%Y%m%d")
    return int(d.replace(hour=12, tzinfo=ZoneInfo(zone)).timestamp()) - 43200


@pytest.fixture(scope="module")
def caltrain():
    base = PAIRS / "caltrain-2023-11-07"
    tt = compile_feed(base / "gtfs" / "ct.zip")
    feed = RealtimeFeed(tt)
    messages = {}
    for name in ("ct-trip-updates.pb", "ct-vehicle-positions.pb", "ct-service-alerts.pb"):
        body = (base / "rt" / name).read_bytes()
        messages[name] = decode_feed(body)
        assert feed.ingest(name, body, received_at=1699405560).accepted
    return base, tt, feed.state, messages


@needs_shared
def test_caltrain_all_trip_updates_match_with_the_feeds_delays(caltrain):
    """19/19 trip updates match ct.zip; every stated time equals schedule + our delay."""
    base, _tt, state, messages = caltrain
    c = state.counters
    assert (c.trip_updates, c.matched, c.unmatched, c.bad_entities) == (19, 19, 0, 0)
    scheduled = {
        (r["trip_id"], int(r["stop_sequence"])): (
            _secs(r["arrival_time"]),
            _secs(r["departure_time"]),
        )
        for r in _table(base / "gtfs" / "ct.zip", "stop_times.txt")
    }
    trips = {(t.trip_id, t.service_date): t for t in state.trips.values()}
    checked = 0
    for entity in messages["ct-trip-updates.pb"].entity:
        tu = entity.trip_update
        origin = _origin(tu.trip.start_date, "America/Los_Angeles")
        trip = trips[(tu.trip.trip_id, dt.datetime.strptime(tu.trip.start_date, "%Y%m%d").date())]
        for u in tu.stop_time_update:
            call = trip.call(u.stop_sequence)
            assert call is not None and call.stop_id == u.stop_id
            arr, dep = scheduled[(tu.trip.trip_id, u.stop_sequence)]
            if u.departure.time:
                assert call.expected_departure == u.departure.time
                assert call.departure_delay == u.departure.time - (origin + dep)
                checked += 1
            if u.arrival.time:
                assert call.expected_arrival == u.arrival.time
                assert call.arrival_delay == u.arrival.time - (origin + arr)
                checked += 1
    assert checked > 100


@needs_shared
def test_caltrain_boards_at_capture_time_show_the_feeds_times(caltrain):
    """At each updated stop, the board at capture time shows the trip at the feed's time."""
    _base, tt, state, messages = caltrain
    now = dt.datetime.fromtimestamp(1699405560, dt.UTC)
    shown = 0
    for entity in messages["ct-trip-updates.pb"].entity:
        tu = entity.trip_update
        for u in list(tu.stop_time_update)[:-1]:  # the last stop is a terminus: no boarding
            if (
                not u.departure.time
                or not now.timestamp() <= u.departure.time < now.timestamp() + 7200
            ):
                continue
            board = realtime_departures(tt, state, u.stop_id, now, now, duration_s=7200, limit=200)
            row = next(d for d in board.departures if d.trip_id == tu.trip.trip_id)
            assert row.expected is not None and row.expected.timestamp() == u.departure.time
            assert row.realtime and row.status in ("on_time", "delayed", "early")
            shown += 1
    assert shown > 30


@needs_shared
def test_caltrain_vehicles_resolve_to_their_trips(caltrain):
    """All 14 vehicle positions resolve to a run of ct.zip on the 2023-11-07 service day."""
    _base, tt, state, _messages = caltrain
    vehicles = list(state.vehicles.values())
    assert len(vehicles) == 14
    assert all(v.run is not None and v.service_date == dt.date(2023, 11, 7) for v in vehicles)
    assert {v.route_id for v in vehicles} <= set(tt.route_ids)
    assert state.counters.vehicles_with_trip == 14


@needs_shared
def test_bart_match_ratio_equals_an_independent_count():
    """BART (no start_date): matched = SCHEDULED updates whose trip runs that day in trips.txt."""
    base = PAIRS / "bart-2019-08-07"
    zip_path = base / "gtfs" / "bart-rt.zip"
    feed = RealtimeFeed(compile_feed(zip_path))
    body = (base / "rt" / "bart-trip-updates.pb").read_bytes()
    feed.ingest("tu", body, received_at=0)
    c = feed.state.counters
    # Independent: trip → service from trips.txt; 2019-08-07 is a Wednesday (calendar.txt).
    service_of = {r["trip_id"]: r["service_id"] for r in _table(zip_path, "trips.txt")}
    running = {
        r["service_id"]
        for r in _table(zip_path, "calendar.txt")
        if r["wednesday"] == "1" and r["start_date"] <= "20190807" <= r["end_date"]
    }
    for r in _table(zip_path, "calendar_dates.txt"):
        if r["date"] == "20190807":
            (running.add if r["exception_type"] == "1" else running.discard)(r["service_id"])
    msg = decode_feed(body)
    scheduled = [
        e.trip_update.trip for e in msg.entity if e.trip_update.trip.schedule_relationship == 0
    ]
    expected_matched = sum(service_of.get(t.trip_id) in running for t in scheduled)
    added = len(msg.entity) - len(scheduled)
    assert (c.matched, c.unmatched, c.added) == (
        expected_matched,
        len(scheduled) - expected_matched,
        added,
    )
    assert c.match_ratio == pytest.approx(65 / 83)
    print(
        f"BART 2019-08-07 trip updates matched: {c.matched}/{c.matched + c.unmatched} "
        f"({c.match_ratio:.1%}), added: {c.added}, examples: {c.unmatched_trip_ids[:3]}"
    )


def test_bibus_alerts_decoded_with_french_text():
    """Bibus Brest: 12 untagged French alerts served as "fr", with cause, effect and routes."""
    body = (FIXTURES / "bibus-brest-gtfs-rt-alerts.pb").read_bytes()
    feed = RealtimeFeed(static_timetable(), default_language="fr")
    feed.ingest("alerts", body, received_at=0)
    alerts = feed.state.alerts
    assert len(alerts) == 12 and feed.state.counters.bad_entities == 0
    first = alerts["2ea09850-74d9-4db7-a537-d97d821956e8"]
    assert list(first.header.as_dict()) == ["fr"]
    assert first.header.get("fr") == "L 45 Prolongation des travaux rue de Kermaria jusqu'au 24/12"
    assert "déviation en place" in (first.description.get("fr-FR") or "")
    assert (first.cause, first.effect) == ("construction", "detour")
    assert [e.route_id for e in first.informed] == ["45"]
    assert first.active_at(1639668542)  # the capture time
    assert not first.active_at(1640365200)  # the period's end is exclusive


def test_bullrunner_vehicles_with_route_only_are_kept():
    """USF Bull Runner: 10 vehicles with a route and no trip, all kept with their routes."""
    tt = compile_feed(FIXTURES / "bullrunner-gtfs.zip")
    feed = RealtimeFeed(tt)
    feed.ingest("vp", (FIXTURES / "bullrunner-vehicle-positions.pb").read_bytes(), received_at=0)
    vehicles = list(feed.state.vehicles.values())
    assert len(vehicles) == 10
    assert all(v.trip_id is None and v.route_index is not None for v in vehicles)
    assert all(v.lat is not None and v.lon is not None for v in vehicles)


def test_vehicle_positions_fixture_is_a_plain_feed_message():
    """The copied fixture decodes as the FULL_DATASET its provenance says."""
    msg = decode_feed((FIXTURES / "bullrunner-vehicle-positions.pb").read_bytes())
    assert msg.header.incrementality == pb.FeedHeader.FULL_DATASET

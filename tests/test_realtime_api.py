"""Realtime merged into the API, on Caltrain's real timetable and its realtime captures of
2023-11-08T01:05Z, plus hand-made messages for what the captures lack (alerts, cancellations)."""

import gc
import shutil
import weakref
import zipfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.transit import gtfs_realtime_pb2 as pb
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app

DATA = Path(__file__).parents[1] / "config" / "demo-data"
CAPTURE = 1699405534  # the trip updates' header timestamp (2023-11-08T01:05:34Z)


def config(rt_urls: list[str], clock: str = "2023-11-07T17:06:00-08:00") -> str:
    urls = "\n".join(f"      - {url}" for url in rt_urls)
    return f"""
defaults:
  allow_file_urls: true
  languages: [fr, en]
clock:
  fixed: {clock}
connectors:
  - id: caltrain-rt
    type: gtfs_rt
    feed: caltrain
    retries: 0
    urls:
{urls}
  - id: caltrain
    type: gtfs
    url: file:caltrain-2023-11.gtfs.zip
"""


CAPTURES = [
    "file:caltrain-2023-11-08T0105Z-trip-updates.pb",
    "file:caltrain-2023-11-08T0105Z-vehicle-positions.pb",
    "file:caltrain-2023-11-08T0105Z-service-alerts.pb",
]


async def started(yaml: str):
    runtime = runtime_from(yaml, base_dir=DATA)
    await runtime.poll_once("caltrain")
    await runtime.poll_once("caltrain-rt")
    return runtime


@pytest.fixture
async def client():
    runtime = await started(config(CAPTURES))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def get_json(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


def board_of(body):
    return {d["trip_id"]: d for d in body["data"]["departures"]}


async def test_board_shows_expected_times_and_delays(client):
    """At Lawrence, trip 310 runs 203 s late: expected time, delay and status say so."""
    body = await get_json(client, "/v1/stops/caltrain:lawrence/departures?duration=2h&limit=20")
    trip = board_of(body)["caltrain:310"]
    assert trip["realtime"] is True
    assert trip["delay_s"] == 203
    assert trip["status"] == "delayed"
    assert trip["scheduled_time"] == "2023-11-07T17:36:00-08:00"
    assert trip["expected_time"] == "2023-11-07T17:39:23-08:00"
    assert trip["vehicle_id"] == "caltrain:310"
    times = [d["expected_time"] for d in body["data"]["departures"]]
    assert times == sorted(times)
    assert body["meta"]["realtime"]["caltrain"] == {
        "available": True,
        "source": "caltrain-rt",
        "stale": False,
    }
    assert set(body["meta"]["sources"]) == {"caltrain", "caltrain-rt"}


async def test_late_trip_scheduled_before_the_board_still_appears(client):
    """Trip 124 was due at Lawrence at 17:03 but leaves at 17:05:04: a 17:04 board shows it."""
    body = await get_json(
        client, "/v1/stops/caltrain:lawrence/departures?at=2023-11-07T17:04:00-08:00"
    )
    trip = board_of(body)["caltrain:124"]
    assert trip["scheduled_time"] == "2023-11-07T17:03:00-08:00"
    assert trip["expected_time"] == "2023-11-07T17:05:04-08:00"
    assert trip["delay_s"] == 124 and trip["status"] == "delayed"


async def test_source_status_has_the_feed_counters(client):
    """The realtime source reports matched trips, vehicles and the ages of its data."""
    stats = (await get_json(client, "/v1/sources/caltrain-rt"))["data"]["stats"]
    assert stats["trip_updates"] == 19 and stats["matched"] == 19 and stats["unmatched"] == 0
    assert stats["vehicles"] == 14 and stats["vehicles_with_trip"] == 14
    assert stats["trip_updates_age_s"] == 26.0 and stats["trip_updates_stale"] is False


async def test_vehicles_by_line_bbox_and_geojson(client):
    """Vehicles come with their line and trip; bbox and line filter; GeoJSON on request."""
    body = await get_json(client, "/v1/vehicles")
    assert len(body["data"]) == 14
    assert all(v["trip_id"] and v["line"] for v in body["data"])
    l1 = await get_json(client, "/v1/vehicles?line=caltrain:L1")
    assert l1["data"] and {v["line"]["id"] for v in l1["data"]} == {"caltrain:L1"}
    # Everything north of Palo Alto.
    north = await get_json(client, "/v1/vehicles?bbox=-123,37.45,-122,38")
    assert 0 < len(north["data"]) < 14 and all(v["lat"] >= 37.45 for v in north["data"])
    geo = await get_json(client, "/v1/vehicles?format=geojson")
    lon, lat = geo["features"][0]["geometry"]["coordinates"]
    assert lon < -121 and 37 < lat < 38


async def test_trip_detail_with_expected_times(client):
    """A trip's calls carry scheduled and expected times, on its service date."""
    body = await get_json(client, "/v1/trips/caltrain:124")
    trip = body["data"]
    assert trip["service_date"] == "2023-11-07" and trip["realtime"] is True
    lawrence = next(c for c in trip["calls"] if c["stop"]["name"].startswith("Lawrence"))
    assert lawrence["delay_s"] == 124 and lawrence["status"] == "delayed"
    static = await get_json(client, "/v1/trips/caltrain:124?date=2023-11-14")
    assert static["data"]["realtime"] is False and static["data"]["runs_on_date"] is True
    await get_json(client, "/v1/trips/caltrain:124?date=14/11/2023", status=400)
    await get_json(client, "/v1/trips/caltrain:nope", status=404)


async def test_departure_vehicle_ids_are_the_ids_vehicles_lists(client):
    """A departure's vehicle_id is the id /v1/vehicles gives that vehicle, so an app joins them;
    ?trip= finds the vehicle of a departure's trip."""
    board = await get_json(client, "/v1/stops/caltrain:lawrence/departures?duration=2h&limit=20")
    vehicles = (await get_json(client, "/v1/vehicles"))["data"]
    by_id = {v["id"]: v for v in vehicles}
    positioned = [d for d in board["data"]["departures"] if d["vehicle_id"] in by_id]
    assert {d["trip_id"] for d in positioned} >= {"caltrain:127", "caltrain:310"}
    for departure in positioned:
        assert by_id[departure["vehicle_id"]]["trip_id"] == departure["trip_id"]
    # Trip 128's update names a vehicle that has no position: namespaced all the same.
    assert all(
        d["vehicle_id"] is None or d["vehicle_id"].startswith("caltrain:")
        for d in board["data"]["departures"]
    )
    serving = (await get_json(client, "/v1/vehicles?trip=caltrain:310"))["data"]
    assert [v["id"] for v in serving] == [by_id["caltrain:310"]["id"]]
    assert serving[0]["trip_id"] == "caltrain:310"
    assert (await get_json(client, "/v1/vehicles?trip=caltrain:nope"))["data"] == []
    assert (await get_json(client, "/v1/vehicles?trip=elsewhere:310"))["data"] == []
    both = await get_json(client, "/v1/vehicles?trip=caltrain:310&line=caltrain:L1")
    assert both["data"] == []  # 310 runs on L3
    problem = await get_json(client, "/v1/vehicles?trip=310", status=400)
    assert "trip" in str(problem)


async def test_trip_detail_status_reflects_the_delay(client):
    """Trip 310, 203 s late at Lawrence: the trip says delayed with its delay, keeps its
    schedule relationship apart, marks the calls already passed and shows its vehicle."""
    body = await get_json(client, "/v1/trips/caltrain:310")
    trip = body["data"]
    assert body["meta"]["now"] == "2023-11-07T17:06:00-08:00"
    assert trip["realtime"] is True
    assert trip["schedule_relationship"] == "scheduled"
    assert trip["status"] == "delayed"
    lawrence = next(c for c in trip["calls"] if c["stop"]["name"].startswith("Lawrence"))
    assert lawrence["delay_s"] == 203 and lawrence["passed"] is False
    upcoming = [c for c in trip["calls"] if not c["passed"]]
    # The next call is Hillsdale, 878 s late (the feed has nothing for the three before).
    assert upcoming[0]["stop"]["name"].startswith("Hillsdale")
    assert trip["delay_s"] == upcoming[0]["delay_s"] == 878
    # Calls are passed exactly when their expected (else scheduled) time is before meta.now.
    passed = [c for c in trip["calls"] if c["passed"]]
    assert passed and upcoming
    assert trip["calls"] == passed + upcoming  # passed calls come first, in order
    for call in passed:
        assert (call["expected_departure"] or call["scheduled_departure"]) < "2023-11-07T17:06"
    for call in upcoming:
        assert (call["expected_departure"] or call["scheduled_departure"]) >= "2023-11-07T17:06"
    vehicle = trip["vehicle"]
    assert trip["vehicle_id"] == vehicle["id"] == "caltrain:310"
    listed = (await get_json(client, "/v1/vehicles?trip=caltrain:310"))["data"][0]
    for key in ("lat", "lon", "bearing", "speed_m_s", "timestamp", "status"):
        assert vehicle[key] == listed[key]
    assert vehicle["lat"] is not None and vehicle["timestamp"] is not None
    assert set(vehicle) >= {"current_stop_sequence", "stop_id"}
    # Another day, no realtime: scheduled, nothing known, no vehicle.
    other = (await get_json(client, "/v1/trips/caltrain:310?date=2023-11-14"))["data"]
    assert other["status"] == "scheduled" and other["schedule_relationship"] == "scheduled"
    assert other["delay_s"] is None and other["vehicle"] is None and other["vehicle_id"] is None
    assert not any(c["passed"] for c in other["calls"])


async def test_the_poller_path_reads_the_updates_in_bulk():
    """GtfsRtConnector.parse validates each body first, then gives the feed the message *and*
    its bytes: every entity is read by the bulk decoder (.wire), the fast path the apply
    benchmark measures, not through the protobuf accessors one update at a time."""
    runtime = await started(config(CAPTURES))
    feed = runtime.connectors["caltrain-rt"]._feed
    assert feed is not None
    sources = [src for src in feed._sources.values() if src.entities]
    assert len(sources) == 2  # the alerts capture holds no entity
    for src in sources:
        assert src.wire.keys() == src.entities.keys()
    # And the decoder read each trip update exactly (nothing left to the accessors).
    trip_updates = [
        (src.wire[key], entity.trip_update)
        for src in sources
        for key, entity in src.entities.items()
        if entity.HasField("trip_update")
    ]
    assert len(trip_updates) == 19
    for (wire, i), update in trip_updates:
        assert wire.usable(i, len(update.stop_time_update))


async def test_a_new_timetable_frees_the_old_one_without_the_collector(tmp_path):
    """After every kind of transit answer has been built on a timetable (boards, grouped and
    nearby boards, lines and their GeoJSON, trips, vehicles, alerts, search), a new version of
    the feed replaces it and reference counting alone frees the old one: nothing the queries
    cache on it points back to it. (The adopted heap is frozen, so a timetable caught in a
    cycle would stay in memory until the next sweep, see aggregator.live.)"""
    for name in ["caltrain-2023-11.gtfs.zip", *(c.removeprefix("file:") for c in CAPTURES)]:
        shutil.copy(DATA / name, tmp_path / name)
    runtime = runtime_from(config(CAPTURES), base_dir=tmp_path)
    await runtime.poll_once("caltrain")
    await runtime.poll_once("caltrain-rt")
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        for path in (
            "/v1/stops?q=san%20francisco&limit=2",
            "/v1/stops?lat=37.4434&lon=-122.1652&radius=800",
            "/v1/stops/caltrain:lawrence/departures?limit=3",
            "/v1/stops/caltrain:san_francisco/departures?group=line_direction",
            "/v1/departures?lat=37.7764&lon=-122.3949&radius=500",
            "/v1/lines/caltrain:L1",
            "/v1/lines/caltrain:L1?format=geojson",
            "/v1/vehicles?line=caltrain:L1",
            "/v1/trips/caltrain:310",
            "/v1/alerts",
            "/v1/home?lat=37.7764&lon=-122.3949",
        ):
            await get_json(client, path)
        old = weakref.ref(runtime.live.snapshot("caltrain").data)
        gc.disable()
        try:
            with zipfile.ZipFile(tmp_path / "caltrain-2023-11.gtfs.zip", "a") as feed:
                feed.comment = b"republished"  # new bytes, same timetable
            assert (await runtime.poll_once("caltrain")).outcome == "changed"
            assert runtime.live.snapshot("caltrain").data is not old()
            # The realtime source resolves its last payload against the new timetable.
            await runtime.runners["caltrain-rt"].run_once(reparse=True)
            assert old() is None
        finally:
            gc.enable()


async def test_stale_realtime_falls_back_to_the_schedule():
    """Ten minutes after the capture the feed is stale: schedule only, and meta says so."""
    runtime = await started(config(CAPTURES, clock="2023-11-07T17:16:00-08:00"))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        body = await get_json(client, "/v1/stops/caltrain:lawrence/departures?duration=3h")
        assert all(d["realtime"] is False for d in body["data"]["departures"])
        assert body["meta"]["realtime"]["caltrain"]["stale"] is True
        assert (await get_json(client, "/v1/vehicles"))["data"] == []
        stats = (await get_json(client, "/v1/sources/caltrain-rt"))["data"]["stats"]
        assert stats["trip_updates_stale"] is True


def message(*entities: pb.FeedEntity, timestamp: int = CAPTURE) -> bytes:
    feed = pb.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = timestamp
    feed.entity.extend(entities)
    return feed.SerializeToString()


def cancellation(trip_id: str) -> pb.FeedEntity:
    entity = pb.FeedEntity(id=f"cancel-{trip_id}")
    entity.trip_update.trip.trip_id = trip_id
    entity.trip_update.trip.start_date = "20231107"
    entity.trip_update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
    return entity


def alert_on_l1() -> pb.FeedEntity:
    entity = pb.FeedEntity(id="works-l1")
    alert = entity.alert
    alert.active_period.add(start=CAPTURE - 3600, end=CAPTURE + 3600)
    alert.informed_entity.add(route_id="L1")
    alert.cause = pb.Alert.MAINTENANCE
    alert.effect = pb.Alert.REDUCED_SERVICE
    alert.header_text.translation.add(text="Travaux sur la ligne L1", language="fr")
    alert.header_text.translation.add(text="Works on line L1", language="en")
    return entity


async def test_cancelled_trip_is_flagged_or_hidden_and_alerts_are_translated(upstream):
    """A CANCELED trip shows as cancelled (or hidden on request); an alert reaches its line."""
    upstream.route("/rt.pb", Reply(body=message(cancellation("412"), alert_on_l1())))
    runtime = await started(config([upstream.url("/rt.pb")]))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        board = await get_json(client, "/v1/stops/caltrain:san_francisco/departures?limit=5")
        assert board_of(board)["caltrain:412"]["status"] == "cancelled"
        hidden = await get_json(
            client, "/v1/stops/caltrain:san_francisco/departures?limit=5&include_cancelled=false"
        )
        assert "caltrain:412" not in board_of(hidden)
        trip = (await get_json(client, "/v1/trips/caltrain:412"))["data"]
        assert trip["status"] == trip["schedule_relationship"] == "cancelled"
        assert trip["vehicle"] is None and trip["vehicle_id"] is None  # no positions here
        # A malformed filter is refused even with no vehicle at all.
        await get_json(client, "/v1/vehicles?trip=412", status=400)

        english = await get_json(client, "/v1/alerts?lang=en")
        assert [a["header"] for a in english["data"]] == ["Works on line L1"]
        alert = english["data"][0]
        assert alert["id"] == "caltrain:works-l1"
        assert alert["effect"] == "reduced_service" and alert["cause"] == "maintenance"
        assert [line["id"] for line in alert["lines"]] == ["caltrain:L1"]
        french = await get_json(client, "/v1/alerts?line=caltrain:L1")
        assert french["data"][0]["header"] == "Travaux sur la ligne L1"
        assert (await get_json(client, "/v1/alerts?line=caltrain:L3"))["data"] == []
        later = await get_json(client, "/v1/alerts?active_at=2023-11-07T20:00:00-08:00")
        assert later["data"] == []
        line = await get_json(client, "/v1/lines/caltrain:L1")
        assert line["data"]["alert_ids"] == ["caltrain:works-l1"]
        l1_departure = next(
            d for d in board["data"]["departures"] if d["line"]["id"] == "caltrain:L1"
        )
        assert l1_departure["alert_ids"] == ["caltrain:works-l1"]


async def test_corrupt_or_older_feed_keeps_the_last_good_state(upstream):
    """A corrupt body fails the poll and a feed going back in time is ignored; data stays."""
    good = message(cancellation("412"), timestamp=CAPTURE)
    older = message(timestamp=CAPTURE - 60)
    upstream.route(
        "/rt.pb", [Reply(body=good), Reply(body=b"<html>oops</html>"), Reply(body=older)]
    )
    runtime = await started(config([upstream.url("/rt.pb")]))
    status = runtime.statuses["caltrain-rt"]
    assert (await runtime.poll_once("caltrain-rt")).outcome == "failed"
    assert "could not be read" in status.last_error
    assert (await runtime.poll_once("caltrain-rt")).outcome == "changed"
    assert any("timestamp went backwards" in issue for issue in status.issue_samples)
    state = runtime.live.snapshot("caltrain-rt").data.state
    assert state.counters.cancelled == 1  # the cancellation of the good message still holds
    await runtime.stop()


async def test_realtime_waits_for_its_timetable_then_loads_by_itself():
    """Polled before its timetable, the realtime source waits (no failure) and loads right after."""
    runtime = runtime_from(config(CAPTURES), base_dir=DATA)
    status = runtime.statuses["caltrain-rt"]
    await runtime.start()
    try:
        await eventually(lambda: status.has_data)
        assert status.consecutive_failures == 0 and status.total_failures == 0
        assert status.waiting_for is None
    finally:
        await runtime.stop()


async def test_feed_must_name_a_gtfs_source():
    """A realtime source naming a missing or non-GTFS source is a config error."""
    from aggregator.config import ConfigError

    yaml = config(CAPTURES).replace("feed: caltrain", "feed: caltrian")
    with pytest.raises(ConfigError, match=r"connectors\[0\]\.feed: no source 'caltrian'"):
        runtime_from(yaml, base_dir=DATA)


def alert_with_a_french_only_header() -> pb.FeedEntity:
    entity = alert_on_l1()
    entity.alert.header_text.ClearField("translation")
    entity.alert.header_text.translation.add(text="Travaux sur la ligne L1", language="fr")
    entity.alert.description_text.translation.add(text="Bus de remplacement", language="fr")
    entity.alert.description_text.translation.add(text="Replacement buses", language="en")
    return entity


async def test_each_alert_text_says_its_language_and_content_language_only_claims_the_truth(
    upstream,
):
    """An alert whose header the feed has only in French, asked in English: the header comes
    in French and says so, the description in English; no Content-Language claims English.
    Asked in French, every text is French and the answer says so."""
    upstream.route("/rt.pb", Reply(body=message(alert_with_a_french_only_header())))
    runtime = await started(config([upstream.url("/rt.pb")]))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        english = await client.get("/v1/alerts?lang=en")
        (alert,) = (await english.json())["data"]
        assert (alert["header"], alert["description"]) == (
            "Travaux sur la ligne L1",
            "Replacement buses",
        )
        assert alert["text_languages"] == {"header": "fr", "description": "en"}
        assert "Content-Language" not in english.headers
        assert "Accept-Language" in english.headers["Vary"]
        french = await client.get("/v1/alerts?lang=fr")
        (alert,) = (await french.json())["data"]
        assert alert["text_languages"] == {"header": "fr", "description": "fr"}
        assert french.headers["Content-Language"] == "fr"
        # The home screen gathers texts in several languages: it claims none.
        home = await client.get("/v1/home?lat=37.7764&lon=-122.3949&lang=fr")
        assert home.status == 200 and "Content-Language" not in home.headers

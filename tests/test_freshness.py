"""One freshness truth (issue 16) and content staleness as a source state (issue 20).

Real upstreams on 127.0.0.1 serve the demo's real feeds (Caltrain's timetable and realtime
captures of 2023-11-08T01:05Z, Lovélo's GBFS capture of 2025-02-28); the data's clock
(``clock.fixed``) places the answers at the capture instant or long after it; upstreams are
stopped to make a feed unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
from aiohttp.test_utils import TestClient, TestServer
from support import CONNECTOR_TYPES, config_from, eventually, runtime_from
from upstream_server import Reply, Upstream

from aggregator.api.app import create_app
from aggregator.runtime import Runtime

DATA = Path(__file__).parents[1] / "config" / "demo-data"
CAPTURE_CLOCK = "2023-11-07T17:06:00-08:00"  # the realtime captures are fresh then
#: A year after Caltrain's timetable ended (2024-06-01), three months after Lovélo's capture.
LATER_CLOCK = "2025-06-01T12:00:00+02:00"
SAN_FRANCISCO = "lat=37.7764&lon=-122.3949"
ROUEN = "lat=49.4402&lon=1.0944"
RT_FILES = {
    "/tu.pb": "caltrain-2023-11-08T0105Z-trip-updates.pb",
    "/vp.pb": "caltrain-2023-11-08T0105Z-vehicle-positions.pb",
    "/sa.pb": "caltrain-2023-11-08T0105Z-service-alerts.pb",
}


def serve_demo(upstream: Upstream) -> None:
    """The demo's feeds over HTTP. Lovélo's files say ``ttl: 15``, which lets the connector
    reuse them for 15 s without asking: served with ``ttl: 0`` so every poll asks."""
    upstream.route("/caltrain.zip", Reply.file(DATA / "caltrain-2023-11.gtfs.zip"))
    for path, name in RT_FILES.items():
        upstream.route(path, Reply.file(DATA / name))
    for name in ("station-information", "station-status"):
        body = orjson.loads((DATA / f"lovelo-{name}.json").read_bytes())
        body["ttl"] = 0
        upstream.route(f"/{name}.json", Reply(body=orjson.dumps(body)))


def demo_config(upstream: Upstream, clock: str, *, realtime: bool = True) -> str:
    rt = "".join(f"\n      - {upstream.url(path)}" for path in RT_FILES)
    realtime_source = f"""
  - id: caltrain-rt
    type: gtfs_rt
    feed: caltrain
    retries: 0
    required: true
    urls:{rt}"""
    return f"""
defaults:
  languages: [fr, en]
clock:
  fixed: {clock}
connectors:
  - id: caltrain
    type: gtfs
    url: {upstream.url("/caltrain.zip")}
    retries: 0
    required: true
{realtime_source if realtime else ""}
  - id: lovelo-bikes
    type: gbfs
    retries: 0
    required: true
    files:
      station_information: {upstream.url("/station-information.json")}
      station_status: {upstream.url("/station-status.json")}
"""


async def polled(yaml: str):
    runtime = runtime_from(yaml)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()
    return runtime


async def get(client: TestClient, path: str) -> dict:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_stopped_realtime_feed_is_stale_in_meta_realtime_and_every_prediction(upstream):
    """After the realtime upstream stops, ``meta.sources``, ``meta.realtime``, the boards, the
    trip details and the home's alerts all say stale, from one judgement: departures fall back
    to the schedule (GTFS-realtime's best practice, DESIGN §4) instead of old predictions
    shown as live."""
    serve_demo(upstream)
    runtime = await polled(demo_config(upstream, CAPTURE_CLOCK))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        board = await get(client, "/v1/stops/caltrain:san_francisco/departures?limit=10")
        live = [d for d in board["data"]["departures"] if d["realtime"]]
        assert live, "the capture predicts departures from San Francisco"
        assert board["meta"]["realtime"]["caltrain"]["stale"] is False
        trip_id = live[0]["trip_id"]
        assert (await get(client, f"/v1/trips/{trip_id}"))["data"]["realtime"] is True

        await upstream.close()  # the realtime feed (and every other) is now unreachable
        for _ in range(3):
            assert (await runtime.poll_once("caltrain-rt")).outcome == "failed"

        board = await get(client, "/v1/stops/caltrain:san_francisco/departures?limit=10")
        source = board["meta"]["sources"]["caltrain-rt"]
        assert (source["stale"], source["stale_reason"]) == (True, "repeated_failures")
        assert board["meta"]["realtime"]["caltrain"] == {
            "available": True,
            "source": "caltrain-rt",
            "stale": True,
            "stale_reason": "repeated_failures",
        }
        departures = board["data"]["departures"]
        assert departures and not any(d["realtime"] for d in departures)
        assert all(
            (d["delay_s"], d["status"], d["expected_time"])
            == (None, "scheduled", d["scheduled_time"])
            for d in departures
        )

        trip = await get(client, f"/v1/trips/{trip_id}")
        assert trip["data"]["realtime"] is False
        assert not any(call["realtime"] for call in trip["data"]["calls"])
        assert trip["meta"]["realtime"]["caltrain"]["stale"] is True
        assert trip["meta"]["sources"]["caltrain-rt"]["stale"] is True

        home = await get(client, f"/v1/home?{SAN_FRANCISCO}")
        alerts = home["data"]["alerts"]["reason"]
        assert (alerts["code"], alerts["sources"]) == ("stale", ["caltrain-rt"])
        assert home["meta"]["sources"]["caltrain-rt"]["stale"] is True
        departures_part = home["data"]["departures"]
        assert departures_part["reason"]["code"] == "stale"
        assert not any(
            d["realtime"] for board in departures_part["items"] for d in board["departures"]
        )


async def test_bike_stations_of_a_stale_source_are_stale_with_the_datas_real_age(upstream):
    """Under the demo's 2023 clock Lovélo's 2025 reports have no age of their own (0.0); once
    its feed is unreachable the stations say stale, and at least the time since the source
    last answered, as ``meta.sources`` does."""
    serve_demo(upstream)
    runtime = await polled(demo_config(upstream, CAPTURE_CLOCK, realtime=False))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        before = await get(client, f"/v1/bikes/stations?{ROUEN}&limit=2")
        assert before["data"][0]["freshness"]["stale"] is False

        await upstream.close()
        for _ in range(3):
            assert (await runtime.poll_once("lovelo-bikes")).outcome == "failed"
        await asyncio.sleep(0.3)  # let the last good data age by a measurable amount

        body = await get(client, f"/v1/bikes/stations?{ROUEN}&limit=2")
        source = body["meta"]["sources"]["lovelo-bikes"]
        assert source["stale"] is True and source["age_s"] >= 0.3
        for station in body["data"]:
            assert station["freshness"] == {"age_s": source["age_s"], "stale": True}
        assert body["meta"]["feeds"]["lovelo-bikes"]["stale"] is True
        home = await get(client, f"/v1/home?{ROUEN}")
        assert home["data"]["bikes"]["reason"]["code"] == "stale"


async def test_home_parts_tell_empty_from_no_source_from_failing(upstream):
    """Alerts: ``no_source`` without a realtime source; ``loading`` before its first poll;
    ``failing`` (and still named in ``meta.sources``) when it is configured but has never
    loaded; ``ok`` or ``empty`` only with a healthy, fresh alert source — when an app may say
    "Trafic normal"."""
    serve_demo(upstream)
    without = await polled(demo_config(upstream, CAPTURE_CLOCK, realtime=False))
    async with TestClient(TestServer(create_app(without, poll=False))) as client:
        home = await get(client, f"/v1/home?{SAN_FRANCISCO}&lang=en")
        assert home["data"]["alerts"]["reason"] == {
            "code": "no_source",
            "message": "No source provides this.",
            "sources": [],
        }
        assert home["data"]["departures"]["reason"]["code"] == "ok"

    healthy = await polled(demo_config(upstream, CAPTURE_CLOCK))
    async with TestClient(TestServer(create_app(healthy, poll=False))) as client:
        home = await get(client, f"/v1/home?{SAN_FRANCISCO}")
        alerts = home["data"]["alerts"]
        expected = "ok" if alerts["items"] else "empty"
        assert alerts["reason"]["code"] == expected
        assert alerts["reason"]["sources"] == ["caltrain-rt"]
        assert alerts["unavailable"] == (
            None
            if alerts["items"]
            else {"code": "empty", "message": "Rien à afficher ici pour le moment."}
        )

    loading = runtime_from(demo_config(upstream, CAPTURE_CLOCK))
    for source_id in ("caltrain", "lovelo-bikes"):  # the realtime feed is not polled yet
        await loading.poll_once(source_id)
    async with TestClient(TestServer(create_app(loading, poll=False))) as client:
        home = await get(client, f"/v1/home?{SAN_FRANCISCO}")
        reason = home["data"]["alerts"]["reason"]
        assert (reason["code"], reason["sources"]) == ("loading", ["caltrain-rt"])

    for path in RT_FILES:
        upstream.route(path, Reply(status=503))
    failing = await polled(demo_config(upstream, CAPTURE_CLOCK))
    async with TestClient(TestServer(create_app(failing, poll=False))) as client:
        home = await get(client, f"/v1/home?{SAN_FRANCISCO}&lang=en")
        assert home["data"]["alerts"]["reason"] == {
            "code": "failing",
            "message": "The source of this data is failing; nothing can be shown.",
            "sources": ["caltrain-rt"],
        }
        assert home["meta"]["sources"]["caltrain-rt"]["state"] == "failing"
        alerts = await get(client, "/v1/alerts")
        assert alerts["meta"]["sources"]["caltrain-rt"]["state"] == "failing"


async def test_realtime_content_past_its_max_age_is_stale_although_polls_succeed(upstream):
    """At 17:30 the 17:05 capture is 24 minutes old: every poll succeeds, yet the source is
    stale for its content, and boards show the schedule saying so, consistently."""
    serve_demo(upstream)
    runtime = await polled(demo_config(upstream, "2023-11-07T17:30:00-08:00"))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        board = await get(client, "/v1/stops/caltrain:san_francisco/departures?limit=5")
        source = board["meta"]["sources"]["caltrain-rt"]
        assert (source["state"], source["stale_reason"]) == ("stale", "content_outdated")
        assert board["meta"]["realtime"]["caltrain"]["stale"] is True
        assert not any(d["realtime"] for d in board["data"]["departures"])
        status = (await get(client, "/v1/sources/caltrain-rt"))["data"]
        assert status["consecutive_failures"] == 0
        assert status["content"]["stale"] is True
        assert "trip updates are 24 min old (limit 90 s)" in status["content"]["detail"]


def _stale_lines(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if "content is" in r.getMessage()]


async def test_content_staleness_is_a_state_a_readiness_reason_a_metric_and_two_log_lines(
    upstream, caplog
):
    """At a 2025 clock: Caltrain's timetable ended in 2024 (every board would explain
    outside_feed_validity), its realtime capture is two years old and Lovélo's feed three
    months old. Each source is ``stale`` with its reason although every poll succeeds; the
    status page's data and /readyz say so; the metric is 1; the log says it once, and once
    more when a current timetable comes back."""
    serve_demo(upstream)
    caplog.set_level(logging.INFO, logger="aggregator.poller")
    runtime = await polled(demo_config(upstream, LATER_CLOCK))
    await runtime.poll_once("caltrain")  # a second poll: no second log line
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        sources = {s["id"]: s for s in (await get(client, "/v1/sources"))["data"]}
        expected = {
            "caltrain": "content_expired",
            "caltrain-rt": "content_outdated",
            "lovelo-bikes": "content_outdated",
        }
        assert {i: (s["state"], s["stale_reason"]) for i, s in sources.items()} == {
            i: ("stale", reason) for i, reason in expected.items()
        }
        assert sources["caltrain"]["content"]["detail"] == (
            "the timetable's last service day was 2024-06-01"
        )
        assert all(s["consecutive_failures"] == 0 for s in sources.values())
        assert all(s["content"]["since"] is not None for s in sources.values())

        ready = await client.get("/readyz")
        body = (await ready.json())["data"]
        assert ready.status == 200 and body["status"] == "degraded"
        assert any("caltrain is stale (content_expired)" in r for r in body["reasons"])

        page = await (await client.get("/")).text()
        assert "stale_reason" in page and "content.detail" in page

        metrics = await (await client.get("/metrics")).text()
        for source_id in expected:
            assert f'beffroi_source_content_stale{{source="{source_id}"}} 1.0' in metrics

        caltrain_lines = [m for m in _stale_lines(caplog.records) if "source caltrain " in m]
        assert caltrain_lines == [
            "source caltrain content is stale (content_expired): "
            "the timetable's last service day was 2024-06-01"
        ]

        # A current timetable (the STQ ferries, 2026) replaces the expired one.
        upstream.route("/caltrain.zip", Reply.file(DATA / "stq-ferries-2026.gtfs.zip"))
        assert (await runtime.poll_once("caltrain")).outcome == "changed"
        await runtime.live.settled()
        status = (await get(client, "/v1/sources/caltrain"))["data"]
        assert (status["state"], status["stale_reason"]) == ("ok", None)
        assert status["content"] == {"stale": False, "reason": None, "detail": None, "since": None}
        metrics = await (await client.get("/metrics")).text()
        assert 'beffroi_source_content_stale{source="caltrain"} 0.0' in metrics
        caltrain_lines = [m for m in _stale_lines(caplog.records) if "source caltrain " in m]
        assert caltrain_lines[1:] == ["source caltrain content is current again"]


async def test_content_staleness_is_shared_through_redis(upstream, redis_server):
    """A poller process judges the content; an API process sharing its Redis store shows the
    same state, reason and since-when, and its /readyz counts it."""
    serve_demo(upstream)
    store = f"""
server:
  cursor_secret: freshness-test-shared-secret
store:
  backend: redis
  url: {redis_server.url}
"""
    yaml = store + demo_config(upstream, LATER_CLOCK, realtime=False)
    poller = Runtime(config_from(yaml), CONNECTOR_TYPES, role="poller")
    api = Runtime(config_from(yaml), CONNECTOR_TYPES, role="api")
    await poller.start(poll=False)
    await api.start(poll=False)
    try:
        for source_id in poller.connectors:
            await poller.poll_once(source_id)

        def judged() -> bool:
            status = api.statuses["caltrain"]
            return status.content_stale is not None and api.live.snapshot("caltrain") is not None

        await eventually(judged)
        async with TestClient(TestServer(create_app(api, poll=False))) as client:
            status = (await get(client, "/v1/sources/caltrain"))["data"]
            assert (status["state"], status["stale_reason"]) == ("stale", "content_expired")
            assert status["content"]["since"] == poller.statuses[
                "caltrain"
            ].content_stale_since.isoformat(timespec="seconds")
            ready = (await (await client.get("/readyz")).json())["data"]
            assert ready["status"] == "degraded"
    finally:
        await api.stop()
        await poller.stop()


async def test_a_stale_feed_elsewhere_does_not_make_a_board_here_stale(upstream):
    """Québec's ferries and their realtime feed go stale (3 failed polls): a home screen in
    San Francisco, whose boards and alerts come from Caltrain alone, stays current; near
    Québec's ferry it says ``stale``."""
    serve_demo(upstream)
    stq_zip = Reply.file(DATA / "stq-ferries-2026.gtfs.zip")
    upstream.route("/stq.zip", [stq_zip, Reply(status=503)])
    # Any realtime body will do for a feed that is about to fail: Caltrain's alerts capture.
    upstream.route("/stq-rt.pb", [Reply.file(DATA / RT_FILES["/sa.pb"]), Reply(status=503)])
    stq = f"""
  - id: stq
    type: gtfs
    url: {upstream.url("/stq.zip")}
    retries: 0
  - id: stq-rt
    type: gtfs_rt
    feed: stq
    retries: 0
    urls: ["{upstream.url("/stq-rt.pb")}"]
"""
    runtime = await polled(demo_config(upstream, CAPTURE_CLOCK) + stq)
    for source_id in ("stq", "stq-rt") * 3:
        assert (await runtime.poll_once(source_id)).outcome == "failed"
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        home = await get(client, f"/v1/home?{SAN_FRANCISCO}")
        assert home["data"]["departures"]["reason"]["code"] == "ok"
        assert "stq" not in home["data"]["departures"]["reason"]["sources"]
        alerts = home["data"]["alerts"]["reason"]
        assert alerts["code"] in ("ok", "empty") and alerts["sources"] == ["caltrain-rt"]
        levis = await get(client, "/v1/home?lat=46.8125&lon=-71.2027")  # Québec-Lévis ferry
        departures = levis["data"]["departures"]
        assert departures["items"][0]["stop"]["id"].startswith("stq:")
        reason = departures["reason"]
        assert (reason["code"], reason["sources"]) == ("stale", ["stq", "stq-rt"])

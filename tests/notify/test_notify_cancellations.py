"""Cancelled trips and mapped disruptions as notifications, end to end on 127.0.0.1: a GTFS-RT
feed served by a local upstream (the real Caltrain capture plus a CANCELED trip, built with
gtfs-realtime-bindings: no real capture with a cancellation is at hand) and the local push
service, which checks the VAPID signature and decrypts every payload.

The data's clock is a test clock the test moves (no waiting for wall-clock hours): a trip
cancelled three hours ahead is told when its first departure is an hour away, by the
notifier's own clock-driven round, with no poll and no change of the feed in between.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from conftest import CAPTURE, DATA, MovedClock, notify_config
from google.transit import gtfs_realtime_pb2 as pb
from support import CONNECTOR_TYPES, config_from, eventually, runtime_from
from test_mapped_alerts import DOCUMENT, lille_entry
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.config import ConfigError
from aggregator.notify.service import push_topic
from aggregator.runtime import Runtime

#: The instant of the Caltrain captures (Tuesday 7 November 2023, local evening).
START = datetime.fromisoformat("2023-11-07T17:06:00-08:00")
#: L1 train 135, San Jose Diridon 20:11 → San Francisco 21:50 (stops at Palo Alto 20:44).
TRIP = "135"


def trip_updates(*cancelled: str) -> bytes:
    """The real trip updates capture, plus these trips of the capture's day CANCELED."""
    message = pb.FeedMessage()
    message.ParseFromString((DATA / f"{CAPTURE}-trip-updates.pb").read_bytes())
    for trip_id in cancelled:
        update = message.entity.add(id=f"cancel-{trip_id}").trip_update
        update.trip.trip_id = trip_id
        update.trip.start_date = "20231107"
        update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
    return message.SerializeToString()


def skipped_stop(trip_id: str, stop_sequence: int) -> bytes:
    """The real trip updates capture, plus one stop of a trip of the capture's day SKIPPED."""
    message = pb.FeedMessage()
    message.ParseFromString((DATA / f"{CAPTURE}-trip-updates.pb").read_bytes())
    update = message.entity.add(id=f"skip-{trip_id}").trip_update
    update.trip.trip_id = trip_id
    update.trip.start_date = "20231107"
    stop = update.stop_time_update.add(stop_sequence=stop_sequence)
    stop.schedule_relationship = pb.TripUpdate.StopTimeUpdate.SKIPPED
    return message.SerializeToString()


def make_runtime(yaml_text: str, clock: MovedClock) -> Runtime:
    return Runtime(config_from(yaml_text, base_dir=DATA), CONNECTOR_TYPES, clock=clock)  # type: ignore[arg-type]


async def test_a_trip_cancelled_hours_ahead_is_told_once_when_its_hour_comes(
    database: str, upstream, push, vapid
) -> None:
    # Under notifications.deep_links, beside the alert template.
    line_link = "    line: https://app.city.example/lines/{id}"
    yaml_text = notify_config(upstream, database, vapid[0], extra=line_link)
    upstream.route("/trip-updates.pb", Reply(body=trip_updates(TRIP)))
    clock = MovedClock(START)
    runtime = make_runtime(yaml_text, clock)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await runtime.poll_once("caltrain")
        for name, topics, lang in (
            ("ann", {"lines": ["caltrain:L1"]}, "fr"),
            ("bob", {"stops": ["caltrain:palo_alto"]}, "en"),  # the station of a platform
            ("cat", {"lines": ["caltrain:L5"]}, "fr"),
        ):
            answer = await client.post(
                "/v1/subscriptions",
                json={"target": push.target(name), "topics": topics, "lang": lang},
            )
            assert answer.status == 201, await answer.text()
        notifier = runtime.notifier
        assert notifier is not None
        await runtime.poll_once("caltrain-rt")
        await notifier.step()
        # 17:06: the 20:11 departure is three hours away; nobody is told yet.
        assert push.received == []

        clock.at = datetime.fromisoformat("2023-11-07T19:10:59-08:00")
        await notifier.step()
        assert push.received == []

        # 19:11: an hour before. No poll, no change of the feed: the notifier's clock-driven
        # round finds it on its own.
        clock.at = datetime.fromisoformat("2023-11-07T19:11:00-08:00")
        await eventually(lambda: len(push.messages("ann")) == 1 and push.messages("bob"))
        ann = push.messages("ann")[0]
        assert ann.message == {
            "v": 1,
            "kind": "cancellation",
            "id": "cancellation:caltrain:135:2023-11-07",
            "subject": "caltrain:135",
            "title": "L1 : train 135 de 20:11 supprimé",
            "body": "San Jose Diridon Caltrain Station 20:11 → San Francisco : ne circule "
            "pas aujourd'hui.",
            "lang": "fr",
            "url": "https://app.city.example/lines/caltrain%3AL1",
        }
        assert ann.headers["urgency"] == "high"
        assert ann.headers["topic"] == push_topic("cancellation:caltrain:135:2023-11-07")
        assert push.messages("bob")[0].message["title"] == "L1: train 135 at 20:11 cancelled"

        # The feed repeats the cancellation, polled again and again: told once.
        clock.at += timedelta(minutes=10)
        await runtime.poll_once("caltrain-rt")
        await notifier.step()
        await notifier.step()
        assert len(push.messages("ann")) == 1 and len(push.messages("bob")) == 1
        assert push.messages("cat") == []

    # A restart at 19:30, the feed still saying it: nothing is sent twice.
    clock.at = datetime.fromisoformat("2023-11-07T19:30:00-08:00")
    runtime = make_runtime(yaml_text, clock)
    async with TestClient(TestServer(create_app(runtime, poll=False))):
        await runtime.poll_once("caltrain")
        await runtime.poll_once("caltrain-rt")
        assert runtime.notifier is not None
        await runtime.notifier.step()
        assert len(push.messages("ann")) == 1 and len(push.messages("bob")) == 1


async def test_a_cancelled_trip_already_run_is_not_told(database: str, upstream, push, vapid):
    """Trip 135 ended at 21:50: a cancellation first seen at 22:00 is no news to anyone.
    The same subscription, feed and database seen before the departure (19:30) do push:
    only the hour kept it quiet."""
    upstream.route("/trip-updates.pb", Reply(body=trip_updates(TRIP)))
    yaml_text = notify_config(upstream, database, vapid[0])
    clock = MovedClock(datetime.fromisoformat("2023-11-07T22:00:00-08:00"))
    runtime = make_runtime(yaml_text, clock)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await runtime.poll_once("caltrain")
        answer = await client.post(
            "/v1/subscriptions",
            json={"target": push.target("dan"), "topics": {"lines": ["caltrain:L1"]}},
        )
        assert answer.status == 201
        await runtime.poll_once("caltrain-rt")
        assert runtime.notifier is not None
        await runtime.notifier.step()
        assert push.messages("dan") == []

    clock.at = datetime.fromisoformat("2023-11-07T19:30:00-08:00")
    runtime = make_runtime(yaml_text, clock)
    async with TestClient(TestServer(create_app(runtime, poll=False))):
        await runtime.poll_once("caltrain")
        await runtime.poll_once("caltrain-rt")
        assert runtime.notifier is not None
        await eventually(lambda: len(push.messages("dan")) == 1)
        assert push.messages("dan")[0].message["id"] == "cancellation:caltrain:135:2023-11-07"


async def test_a_skipped_stop_is_told_to_the_followers_of_that_stop(
    database: str, upstream, push, vapid
) -> None:
    """Train 135 runs but skips Palo Alto (20:44): the station's followers hear of it from
    19:44; the line's followers and another stop's do not. With a trip template, the
    notification opens that trip on that day (without one it opens the stop, or the line)."""
    upstream.route("/trip-updates.pb", Reply(body=skipped_stop(TRIP, 8)))
    clock = MovedClock(START)
    trip_link = "    trip: https://app.city.example/trips/{id}?date={date}"
    runtime = make_runtime(notify_config(upstream, database, vapid[0], extra=trip_link), clock)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await runtime.poll_once("caltrain")
        for name, topics in (
            ("gil", {"stops": ["caltrain:palo_alto"]}),
            ("hal", {"lines": ["caltrain:L1"]}),
            ("ivy", {"stops": ["caltrain:menlo_park"]}),
        ):
            answer = await client.post(
                "/v1/subscriptions",
                json={"target": push.target(name), "topics": topics, "lang": "fr"},
            )
            assert answer.status == 201, await answer.text()
        await runtime.poll_once("caltrain-rt")
        notifier = runtime.notifier
        assert notifier is not None
        clock.at = datetime.fromisoformat("2023-11-07T19:43:59-08:00")
        await notifier.step()
        assert push.received == []
        clock.at = datetime.fromisoformat("2023-11-07T19:44:00-08:00")
        await eventually(lambda: len(push.messages("gil")) == 1)
        message = push.messages("gil")[0].message
        assert message["kind"] == "cancellation"
        assert message["id"] == "skipped:caltrain:135:2023-11-07:70171"
        assert message["url"] == "https://app.city.example/trips/caltrain%3A135?date=2023-11-07"
        assert message["title"] == (
            "L1 : train 135 de 20:11 ne s'arrête pas à Palo Alto Caltrain Station"
        )
        await runtime.poll_once("caltrain-rt")
        await notifier.step()
        assert len(push.messages("gil")) == 1
        assert push.messages("hal") == push.messages("ivy") == []


async def test_lille_disruptions_mapped_into_alerts_reach_the_followers_of_a_line(
    database: str, upstream, push, vapid
) -> None:
    """config/lille.yaml's mapped_alerts source (Ilévia's disruptions), read on the Caltrain
    timetable: its alerts are pushed as GTFS-RT alerts are, to the followers of their line."""
    entry = {**lille_entry("ilevia-perturbations"), "id": "perturbations", "feed": "caltrain"}
    entry.update(url=upstream.url("/perturbations"), retries=0)
    source = textwrap.indent(yaml.safe_dump([entry], allow_unicode=True), "  ")
    upstream.route("/perturbations", Reply(body=b'{"type": "FeatureCollection", "features": []}'))
    runtime = runtime_from(
        f"""
defaults: {{languages: [fr, en], allow_file_urls: true}}
clock: {{fixed: "2023-11-07T17:06:00-08:00"}}
notifications:
  enabled: true
  database: {database}
  vapid_private_key: {vapid[0]}
  allow_private_push_endpoints: true
  interval: 0.2s
  deep_links: {{alert: "https://app.city.example/alerts/{{id}}"}}
connectors:
  - id: caltrain
    type: gtfs
    url: file:caltrain-2023-11.gtfs.zip
{source}""",
        base_dir=DATA,
    )
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await runtime.poll_once("caltrain")
        await runtime.poll_once("perturbations")  # no disruption yet
        for name, line in (("eve", "caltrain:L1"), ("fay", "caltrain:L5")):
            answer = await client.post(
                "/v1/subscriptions",
                json={"target": push.target(name), "topics": {"lines": [line]}, "lang": "fr"},
            )
            assert answer.status == 201, await answer.text()
        upstream.route(
            "/perturbations",
            Reply(body=DOCUMENT.read_bytes(), content_type="application/geo+json"),
        )
        await runtime.poll_once("perturbations")
        await eventually(lambda: len(push.messages("eve")) == 1)
        message = push.messages("eve")[0].message
        assert message["kind"] == "alert"
        assert message["subject"] == "caltrain:perturbations:M-9001"
        assert message["title"].startswith("L1 : Ligne L1 : trafic perturbé")
        assert message["url"] == "https://app.city.example/alerts/caltrain%3Aperturbations%3AM-9001"
        # Polled again unchanged: nothing new; L5 is named by no disruption.
        await runtime.poll_once("perturbations")
        assert runtime.notifier is not None
        await runtime.notifier.step()
        assert len(push.messages("eve")) == 1
        assert push.messages("fay") == []


@pytest.mark.parametrize(
    ("templates", "refusal"),
    [
        ('{line: "https://app.city.example/lines"}', r"deep_links\.line: needs \{id\}"),
        ('{alert: "https://x.example/{id}?d={date}"}', r"deep_links\.alert: \{date\} is only"),
    ],
)
def test_a_deep_link_template_that_cannot_name_its_target_is_refused(
    templates: str, refusal: str
) -> None:
    """A template without {id} would send every notification of its kind to one page, and a
    {date} is only known for a trip: both are refused when the file is read."""
    with pytest.raises(ConfigError, match=refusal):
        config_from(f"notifications: {{enabled: true, deep_links: {templates}}}\nconnectors: []")

"""News categories and waste collection reminders as notification topics, end to end on
127.0.0.1 with real data: The Guardian's and UOL's real RSS feeds (tests/fixtures/news) and
Bordeaux Métropole's real collection zones (tests/fixtures/waste), served by a local upstream,
and the local push service, which checks VAPID and decrypts every payload.

The evening reminders run on a test clock the test moves: no waiting for 19:00.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import MovedClock
from support import CONNECTOR_TYPES, config_from, eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.config import ConfigError
from aggregator.runtime import Runtime

FIXTURES = Path(__file__).parents[1] / "fixtures"
GUARDIAN = (FIXTURES / "news" / "guardian.rss").read_bytes()
UOL = (FIXTURES / "news" / "uolNoticias.rss").read_bytes()
ZONES = FIXTURES / "waste" / "bordeaux-metropole-en_frcol_s.json"
#: Inside household zone 4330 (Tue, Fri) and recycling zone 4316 (Mon), Bordeaux centre.
INSIDE = {"lat": 44.8452295, "lon": -0.5909103094389943}
#: A vertex shared by household zones 4330 and 4312 and recycling zones 4341 and 4316.
BORDER = {"lat": 44.8419, "lon": -0.5994925}
#: Lille: in no Bordeaux zone.
OUTSIDE = {"lat": 50.6366, "lon": 3.0635}


def notifications(database: str, vapid_private: str) -> str:
    return f"""
notifications:
  enabled: true
  database: {database}
  vapid_private_key: {vapid_private}
  allow_private_push_endpoints: true
  interval: 0.2s
  deep_links: {{news: "https://app.city.example/news/{{id}}"}}
"""


def without_item(feed: bytes, domain: bytes) -> tuple[bytes, bytes]:
    """``feed`` without its first item in the category of ``domain``, and that item's guid."""
    for item in re.finditer(rb"<item>.*?</item>", feed, re.S):
        if domain in item.group():
            guid = re.search(rb"<guid[^>]*>([^<]+)</guid>", item.group())
            assert guid is not None
            return feed[: item.start()] + feed[item.end() :], guid.group(1)
    raise AssertionError("no such item")


async def subscribe(client, push, name: str, topics: dict, lang: str = "fr", status: int = 201):
    answer = await client.post(
        "/v1/subscriptions", json={"target": push.target(name), "topics": topics, "lang": lang}
    )
    assert answer.status == status, await answer.text()
    return await answer.json(content_type=None)


async def test_a_new_item_in_a_followed_news_category_is_pushed_once(
    database: str, upstream, push, vapid
) -> None:
    culture = b"https://www.theguardian.com/culture/culture"
    earlier, guid = without_item(GUARDIAN, culture)
    upstream.route("/guardian.rss", Reply(body=earlier, content_type="application/rss+xml"))
    upstream.route("/uol.rss", Reply(body=UOL, content_type="application/rss+xml"))
    runtime = runtime_from(
        notifications(database, vapid[0])
        + f"""
connectors:
  - id: guardian
    type: news
    url: {upstream.url("/guardian.rss")}
  - id: uol
    type: news
    url: {upstream.url("/uol.rss")}
"""
    )
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await runtime.poll_once("guardian")
        await runtime.poll_once("uol")
        notifier = runtime.notifier
        assert notifier is not None
        await notifier.step()  # the items already there are recorded, told to nobody
        created = await subscribe(client, push, "ann", {"news": ["CULTURE"]})
        # Case and accents do not matter; the answer gives the category as it is matched.
        assert created["data"]["topics"]["news"] == ["culture"]
        await subscribe(client, push, "bob", {"news": ["Sport"], "news_sources": ["guardian"]})
        await subscribe(client, push, "cat", {"news_sources": ["uol"]}, lang="en")
        await subscribe(
            client, push, "dan", {"news": ["Sport", "Culture"], "news_sources": ["guardian"]}
        )
        # UOL's items have no such category: refused, naming it.
        problem = await subscribe(
            client, push, "x", {"news": ["culture"], "news_sources": ["uol"]}, status=400
        )
        assert problem["errors"][0]["parameter"] == "topics.news[0]"

        # A mere re-poll: nothing.
        await runtime.poll_once("guardian")
        await notifier.step()
        assert push.received == []

        # The feed gains the Culture item: its followers are told, once.
        upstream.route("/guardian.rss", Reply(body=GUARDIAN, content_type="application/rss+xml"))
        await runtime.poll_once("guardian")
        await eventually(lambda: len(push.messages("ann")) == 1 and push.messages("dan"))
        message = push.messages("ann")[0].message
        item_id = f"guardian:{guid.decode()}"
        assert message["kind"] == "news"
        assert message["subject"] == item_id
        assert message["id"] == f"news:{item_id}"
        assert message["title"].startswith("Actualité : ")
        assert message["url"].startswith("https://app.city.example/news/guardian%3A")
        assert push.messages("ann")[0].headers["urgency"] == "low"
        await runtime.poll_once("guardian")
        await notifier.step()
        assert len(push.messages("ann")) == 1 and len(push.messages("dan")) == 1
        # Sport only, or the other source only: not theirs.
        assert push.messages("bob") == push.messages("cat") == []


async def test_news_topics_are_checked_against_the_loaded_news(
    database: str, upstream, push, vapid
) -> None:
    upstream.route("/guardian.rss", Reply(body=GUARDIAN, content_type="application/rss+xml"))
    runtime = runtime_from(
        notifications(database, vapid[0])
        + f"""
connectors:
  - id: guardian
    type: news
    url: {upstream.url("/guardian.rss")}
"""
    )
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await runtime.poll_once("guardian")
        for topics, parameter, code in (
            ({"news": ["Gardening"]}, "topics.news[0]", "news_category_unknown"),
            ({"news": ["Sport", 3]}, "topics.news[1]", "topic_not_a_string"),
            ({"news": "Sport"}, "topics.news", "topic_not_a_list"),
            ({"news": ["x" * 101]}, "topics.news[0]", "too_long"),
            ({"news": ["Sport"] * 51}, "topics.news", "too_many_topics"),
            (
                {"agenda": True, "categories": ["c"] * 49, "news": ["Sport"] * 2},
                "topics.news",
                "too_many_topics",
            ),
            ({"news_sources": ["nope"]}, "topics.news_sources[0]", "news_source_unknown"),
            ({"news_sources": ["guardian"] * 11}, "topics.news_sources", "list_too_long"),
        ):
            answer = await client.post(
                "/v1/subscriptions",
                json={"target": push.target("eve"), "topics": topics},
                headers={"Accept-Language": "fr"},
            )
            assert answer.status == 400, topics
            problem = await answer.json(content_type=None)
            assert problem["errors"][0]["parameter"] == parameter, problem
            assert problem["errors"][0]["code"] == code, problem
            assert problem["detail"].startswith(parameter)
        # In French, as the house texts say it.
        answer = await client.post(
            "/v1/subscriptions",
            json={"target": push.target("eve"), "topics": {"news": ["Gardening"]}},
            headers={"Accept-Language": "fr"},
        )
        problem = await answer.json(content_type=None)
        assert problem["detail"] == (
            "topics.news[0]: Gardening n'est pas une catégorie des actualités servies ici"
        )


def waste_runtime(
    upstream,
    database: str,
    vapid_private: str,
    clock: MovedClock,
    at: str | None = None,
    extra: str = "",
) -> Runtime:
    reminder = f"  waste_reminder_at: {at}\n" if at else ""
    yaml_text = (
        notifications(database, vapid_private)
        + reminder
        + extra
        + f"""
defaults: {{timezone: Europe/Paris, languages: [fr, en]}}
connectors:
  - id: bdx
    type: waste
    url: {upstream.url("/zones.json")}
    fields: {{id: gid, name: commune, geometry: geo_shape, stream: type, weekdays: jour_col}}
    values:
      stream: {{OM: household, TRI: recycling}}
    holiday_shifts: {{2026-04-06: 2026-04-07, 2026-04-03: null}}
"""
    )
    return Runtime(config_from(yaml_text), CONNECTOR_TYPES, clock=clock)  # type: ignore[arg-type]


async def test_waste_reminders_the_evening_before_each_collection(
    database: str, upstream, push, vapid
) -> None:
    upstream.route("/zones.json", Reply.file(ZONES))
    # Easter Monday 6 April 2026: its recycling collection moves to Tuesday 7, a household day.
    clock = MovedClock(datetime.fromisoformat("2026-04-06T18:59:00+02:00"))
    runtime = waste_runtime(upstream, database, vapid[0], clock)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await runtime.poll_once("bdx")
        created = await subscribe(client, push, "ann", {"waste": INSIDE})
        assert created["data"]["topics"]["waste"] == {**INSIDE, "zones": ["bdx:4316", "bdx:4330"]}
        await subscribe(client, push, "bob", {"waste": BORDER}, lang="en")
        for topics, parameter, code in (
            ({"waste": OUTSIDE}, "topics.waste", "waste_outside_zones"),
            ({"waste": {"lat": 100, "lon": 0}}, "topics.waste.lat", "out_of_range"),
            ({"waste": {"lat": "44.8", "lon": 0}}, "topics.waste.lat", "not_a_number"),
            ({"waste": {"lat": 44.8}}, "topics.waste", "waste_point_expected"),
            ({"waste": [44.8, -0.59]}, "topics.waste", "waste_point_expected"),
            ({"waste": {**INSIDE, "alt": 3}}, "topics.waste.alt", "unknown_parameter_accepted"),
        ):
            problem = await subscribe(client, push, "x", topics, status=400)
            assert problem["errors"][0]["parameter"] == parameter, problem
            assert problem["errors"][0]["code"] == code, problem
        notifier = runtime.notifier
        assert notifier is not None
        await notifier.step()
        assert push.received == []  # 18:59

        # 19:00: the notifier's own round, driven by the clock (no poll, no new data).
        clock.at = datetime.fromisoformat("2026-04-06T19:00:00+02:00")
        await eventually(lambda: len(push.messages("ann")) == 1 and push.messages("bob"))
        ann = push.messages("ann")[0].message
        assert ann["kind"] == "waste"
        assert ann["title"] == "Demain : ordures ménagères, emballages"
        assert ann["body"] == "Collecte du 2026-04-07 : sortez les bacs ce soir."
        assert ann["subject"] == "bdx:2026-04-07"
        assert push.messages("bob")[0].message["title"] == "Tomorrow: household waste, recycling"
        await notifier.step()
        assert len(push.messages("ann")) == 1

        # Someone following the same point from 19:30 is reminded too, once; nobody twice.
        clock.at = datetime.fromisoformat("2026-04-06T19:30:00+02:00")
        await subscribe(client, push, "cat", {"waste": INSIDE})
        await eventually(lambda: len(push.messages("cat")) == 1)
        await notifier.step()
        assert [len(push.messages(n)) for n in ("ann", "bob", "cat")] == [1, 1, 1]

    # A restart that evening sends nothing again.
    clock.at = datetime.fromisoformat("2026-04-06T21:00:00+02:00")
    runtime = waste_runtime(upstream, database, vapid[0], clock)
    async with TestClient(TestServer(create_app(runtime, poll=False))):
        await runtime.poll_once("bdx")
        notifier = runtime.notifier
        assert notifier is not None
        await notifier.step()
        assert [len(push.messages(n)) for n in ("ann", "bob", "cat")] == [1, 1, 1]

        # Tuesday evening: nothing on Wednesday. Thursday evening: Friday's household waste.
        clock.at = datetime.fromisoformat("2026-04-07T19:05:00+02:00")
        await notifier.step()
        assert len(push.messages("ann")) == 1
        clock.at = datetime.fromisoformat("2026-04-09T19:05:00+02:00")
        await eventually(lambda: len(push.messages("ann")) == 2)
        friday = push.messages("ann")[1]
        assert friday.message["title"] == "Demain : ordures ménagères"
        assert friday.headers["topic"] == push.messages("ann")[0].headers["topic"]


async def test_a_point_followed_through_a_process_that_does_not_send_is_reminded_too(
    database: str, upstream, push, vapid, redis_server
) -> None:
    """Two processes share a Redis store and the database; only the lease holder sends. A
    point followed through the other one during the evening is reminded all the same: the
    sender finds the new follow in the database (that process cannot wake it)."""
    upstream.route("/zones.json", Reply.file(ZONES))
    clock = MovedClock(datetime.fromisoformat("2026-04-06T19:30:00+02:00"))
    shared = f"""
store: {{backend: redis, url: "{redis_server.url}"}}
server: {{cursor_secret: a-secret-shared-by-both-processes}}
"""
    runtimes = [waste_runtime(upstream, database, vapid[0], clock, extra=shared) for _ in "ab"]
    clients = [TestClient(TestServer(create_app(r, poll=False))) for r in runtimes]
    try:
        for runtime, client in zip(runtimes, clients, strict=True):
            await client.start_server()
            await runtime.poll_once("bdx")
        notifiers = [r.notifier for r in runtimes]
        assert notifiers[0] is not None and notifiers[1] is not None
        # A point followed through each process in turn, ten minutes apart: one of them
        # does not hold the lease, and its notifier cannot send.
        for minute, client, name, point in (
            (40, clients[0], "bob", BORDER),
            (50, clients[1], "cat", INSIDE),
        ):
            clock.at = datetime.fromisoformat(f"2026-04-06T19:{minute}:00+02:00")
            await subscribe(client, push, name, {"waste": point}, lang="en")
            await eventually(lambda name=name: len(push.messages(name)) == 1)
        assert push.messages("bob")[0].message["title"] == "Tomorrow: household waste, recycling"
        assert push.messages("cat")[0].message["subject"] == "bdx:2026-04-07"
        # Counted once the push service's answer is recorded, a moment after it got it.
        await eventually(lambda: sum(n.counts["sent"] for n in notifiers) == 2)
        for notifier in notifiers:
            await notifier.step()
        assert [len(push.messages(n)) for n in ("bob", "cat")] == [1, 1]
    finally:
        for client in clients:
            await client.close()


async def test_the_reminder_time_is_configurable(database: str, upstream, push, vapid) -> None:
    upstream.route("/zones.json", Reply.file(ZONES))
    clock = MovedClock(datetime.fromisoformat("2026-04-09T17:59:00+02:00"))  # a Thursday
    runtime = waste_runtime(upstream, database, vapid[0], clock, at='"18:00"')
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await runtime.poll_once("bdx")
        await subscribe(client, push, "joe", {"waste": INSIDE}, lang="en")
        assert runtime.notifier is not None
        await runtime.notifier.step()
        assert push.received == []
        clock.at = datetime.fromisoformat("2026-04-09T18:00:00+02:00")
        await eventually(lambda: len(push.messages("joe")) == 1)
        assert push.messages("joe")[0].message["title"] == "Tomorrow: household waste"


def test_an_unquoted_reminder_time_is_refused_naming_it() -> None:
    """YAML 1.1 reads 19:00 unquoted as the number 1140 (minutes in base 60)."""
    with pytest.raises(ConfigError, match=r"waste_reminder_at.*quote it"):
        config_from("notifications: {enabled: true, waste_reminder_at: 19:00}\nconnectors: []")

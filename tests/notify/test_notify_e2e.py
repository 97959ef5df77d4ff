"""End to end with real parts on 127.0.0.1: a realtime feed served by a local upstream gains
an alert on a followed line, and the local push service (which checks the VAPID signature and
decrypts the payload with the fake browser's key) receives it; a restart loses nothing and
sends nothing twice; unsubscribing stops it; a 410 removes the subscription."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from conftest import DATA, alerts_feed, notify_config
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.notify.service import push_topic
from aggregator.runtime import RUNTIME

WORKS = {"fr": "Travaux sur la ligne", "en": "Engineering works on the line"}
MOVED = {"fr": "Travaux prolongés", "en": "Works extended"}


async def start(yaml: str) -> TestClient:
    runtime = runtime_from(yaml, base_dir=DATA)
    client = TestClient(TestServer(create_app(runtime)))
    await client.start_server()
    await eventually(lambda: runtime.live.snapshot("caltrain-rt") is not None, within=60)
    return client


async def test_alert_on_a_followed_line_reaches_the_browser_once(
    database: str, upstream, push, vapid
) -> None:
    yaml = notify_config(upstream, database, vapid[0])
    client = await start(yaml)
    try:
        created = await client.post(
            "/v1/subscriptions",
            json={"target": push.target("ann"), "topics": {"lines": ["caltrain:L1"]}, "lang": "fr"},
        )
        assert created.status == 201, await created.text()
        data = (await created.json())["data"]
        sub_id, secret = data["id"], data["secret"]
        auth = {"Authorization": f"Bearer {secret}"}
        # A subscriber of another line hears nothing of L1.
        other = await client.post(
            "/v1/subscriptions",
            json={"target": push.target("bob"), "topics": {"lines": ["caltrain:L5"]}},
        )
        assert other.status == 201

        upstream.route("/alerts.pb", Reply(body=alerts_feed(("works", "L1", WORKS))))
        await eventually(lambda: len(push.messages("ann")) == 1, within=60)
        first = push.messages("ann")[0]
        assert first.message == {
            "v": 1,
            "kind": "alert",
            "id": first.message["id"],
            "subject": "caltrain:works",
            "title": "L1 : Travaux sur la ligne",
            "body": "Travaux sur la ligne (details)",
            "lang": "fr",
            "url": "https://app.city.example/alerts/caltrain%3Aworks",
        }
        assert first.claims["sub"] == "mailto:ops@city.example"
        assert first.headers["urgency"] == "high"  # reduced service
        assert first.headers["ttl"] == "3600"
        assert first.headers["topic"] == push_topic("alert:caltrain:works")
        assert push.messages("bob") == []
    finally:
        await client.close()

    # Restart: the subscription is still there, and the alert it was told about is not sent
    # again (the new process polls the same feed and sees the same alert).
    client = await start(yaml)
    try:
        from aggregator.runtime import RUNTIME

        runtime = client.server.app[RUNTIME]
        assert runtime.notifier is not None
        await runtime.poll_once("caltrain-rt")
        await runtime.notifier.step()
        assert len(push.messages("ann")) == 1
        still = await client.get(f"/v1/subscriptions/{sub_id}", headers=auth)
        assert still.status == 200
        assert (await still.json())["data"]["topics"]["lines"] == ["caltrain:L1"]

        # The alert changes: told once more, collapsed onto the first by its Topic.
        upstream.route("/alerts.pb", Reply(body=alerts_feed(("works", "L1", MOVED))))
        await eventually(lambda: len(push.messages("ann")) == 2, within=60)
        second = push.messages("ann")[1]
        assert second.message["title"] == "L1 : Travaux prolongés"
        assert second.headers["topic"] == first.headers["topic"]

        # Unsubscribe: nothing more.
        gone = await client.delete(f"/v1/subscriptions/{sub_id}", headers=auth)
        assert gone.status == 204
        upstream.route("/alerts.pb", Reply(body=alerts_feed(("works", "L1", WORKS | {"en": "x"}))))
        await runtime.poll_once("caltrain-rt")
        await runtime.notifier.step()
        assert len(push.messages("ann")) == 2
        missing = await client.get(f"/v1/subscriptions/{sub_id}", headers=auth)
        assert missing.status == 404
    finally:
        await client.close()


async def test_a_subscription_the_push_service_calls_gone_is_deleted(
    database: str, upstream, push, vapid
) -> None:
    client = await start(notify_config(upstream, database, vapid[0]))
    try:
        target = push.target("carla")
        push.browsers.clear()  # the browser unsubscribed: the push service answers 410
        created = await client.post(
            "/v1/subscriptions", json={"target": target, "topics": {"lines": ["caltrain:L1"]}}
        )
        data = (await created.json())["data"]
        upstream.route("/alerts.pb", Reply(body=alerts_feed(("works", "L1", WORKS))))
        await eventually(lambda: ("/push/carla", 410) in push.refused, within=60)
        from aggregator.runtime import RUNTIME

        notifier = client.server.app[RUNTIME].notifier
        assert notifier is not None
        await eventually(lambda: notifier.counts["gone"] == 1)
        assert await notifier.store.get(data["id"]) is None
        answer = await client.get(
            f"/v1/subscriptions/{data['id']}", headers={"Authorization": f"Bearer {data['secret']}"}
        )
        assert answer.status == 404
    finally:
        await client.close()


async def test_429_and_503_are_retried_honouring_retry_after(
    database: str, upstream, push, vapid
) -> None:
    client = await start(notify_config(upstream, database, vapid[0]))
    try:
        target = push.target("dan")
        push.script["/push/dan"] = [(429, {"Retry-After": "1"}), (503, {})]
        created = await client.post(
            "/v1/subscriptions", json={"target": target, "topics": {"lines": ["caltrain:L1"]}}
        )
        assert created.status == 201
        upstream.route("/alerts.pb", Reply(body=alerts_feed(("works", "L1", WORKS))))
        await eventually(lambda: len(push.messages("dan")) == 1, within=60)
        assert push.refused == [("/push/dan", 429), ("/push/dan", 503)]
        from aggregator.runtime import RUNTIME

        notifier = client.server.app[RUNTIME].notifier
        assert notifier is not None
        # The push service holds the message; the sender records its answer right after.
        await eventually(lambda: notifier.counts["sent"] == 1)
        assert notifier.counts["retry"] == 2
        assert (await notifier.store.states()) == {"sent": 1}
    finally:
        await client.close()


async def test_alerts_already_over_in_the_feed_are_not_pushed(
    database: str, upstream, push, vapid
) -> None:
    client = await start(notify_config(upstream, database, vapid[0]))
    try:
        created = await client.post(
            "/v1/subscriptions",
            json={"target": push.target("fay"), "topics": {"lines": ["caltrain:L1"]}},
        )
        assert created.status == 201
        feed_time = 1699405546  # the capture's header timestamp
        feed = alerts_feed(
            ("over", "L1", {"en": "Yesterday's works"}),
            ("now", "L1", {"en": "Delays"}),
            ended={"over": feed_time - 60},
        )
        upstream.route("/alerts.pb", Reply(body=feed))
        await eventually(lambda: len(push.messages("fay")) == 1, within=60)
        runtime = client.server.app[RUNTIME]
        await runtime.poll_once("caltrain-rt")
        await runtime.notifier.step()
        assert [m.message["subject"] for m in push.messages("fay")] == ["caltrain:now"]
    finally:
        await client.close()


async def test_changes_of_a_round_that_failed_to_record_are_recorded_by_the_next(
    tmp_path, upstream, push, vapid, caplog
) -> None:
    """The database refuses a round's write (another writer holds its lock past the busy
    timeout): the changes that round gathered are looked at again once it can write, not
    forgotten until the feed changes again."""
    import sqlite3

    database = tmp_path / "subs.sqlite3"
    client = await start(notify_config(upstream, database, vapid[0]))
    try:
        created = await client.post(
            "/v1/subscriptions",
            json={"target": push.target("ann"), "topics": {"lines": ["caltrain:L1"]}},
        )
        assert created.status == 201, await created.text()
        locker = sqlite3.connect(database, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # the write lock, held
            upstream.route("/alerts.pb", Reply(body=alerts_feed(("works", "L1", WORKS))))
            await eventually(
                lambda: any("were not recorded" in r.getMessage() for r in caplog.records),
                within=60,
            )
            assert push.messages("ann") == []
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        # The feed says nothing new from now on: the alert comes from the failed round.
        await eventually(lambda: len(push.messages("ann")) == 1, within=60)
        assert push.messages("ann")[0].message["subject"] == "caltrain:works"
    finally:
        await client.close()

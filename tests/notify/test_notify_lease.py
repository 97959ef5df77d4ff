"""In the Redis deployment every process takes subscriptions, one sends: the holder of the
``notifications`` lease. When it stops, another takes over and nothing is sent twice."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from conftest import DATA, alerts_feed, notify_config
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.runtime import RUNTIME


async def test_only_the_lease_holder_sends_and_another_takes_over(
    database: str, upstream, push, vapid, redis_server
) -> None:
    shared = f"""
store:
  backend: redis
  url: {redis_server.url}
server:
  cursor_secret: a-secret-shared-by-both-processes
"""
    yaml = notify_config(upstream, database, vapid[0]) + shared
    clients = []
    for _ in range(2):
        client = TestClient(TestServer(create_app(runtime_from(yaml, base_dir=DATA))))
        await client.start_server()
        clients.append(client)
    first, second = (c.server.app[RUNTIME] for c in clients)
    try:
        await eventually(lambda: first.live.snapshot("caltrain-rt") is not None, within=60)
        await eventually(lambda: second.live.snapshot("caltrain-rt") is not None, within=60)
        created = await clients[1].post(
            "/v1/subscriptions",
            json={"target": push.target("eve"), "topics": {"lines": ["caltrain:L1"]}, "lang": "en"},
        )
        assert created.status == 201
        upstream.route("/alerts.pb", Reply(body=alerts_feed(("a1", "L1", {"en": "Delays"}))))
        await eventually(lambda: len(push.messages("eve")) == 1, within=60)
        assert first.notifier is not None and second.notifier is not None
        # The push service holds the message before the sender has read its answer and
        # counted it: wait for the count, not only for the message.
        await eventually(
            lambda: first.notifier.counts["sent"] + second.notifier.counts["sent"] == 1,
            within=60,
        )
        senders = [r for r in (first, second) if r.notifier and r.notifier.counts["sent"]]
        assert len(senders) == 1
        holder = senders[0]
        # Both processes saw the alert (each follows the shared store); still one message.
        await first.notifier.step()
        await second.notifier.step()
        assert len(push.messages("eve")) == 1

        # The holder stops (releasing its lease): the other one sends from now on.
        index = (first, second).index(holder)
        await clients[index].close()
        other = (first, second)[1 - index]
        upstream.route("/alerts.pb", Reply(body=alerts_feed(("a1", "L1", {"en": "Cancelled"}))))
        await eventually(lambda: len(push.messages("eve")) == 2, within=60)
        assert other.notifier is not None
        await eventually(lambda: other.notifier.counts["sent"] == 1, within=60)
        assert push.messages("eve")[1].message["title"] == "L1: Cancelled"
    finally:
        for client in clients:
            await client.close()

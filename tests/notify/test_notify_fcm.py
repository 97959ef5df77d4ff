"""Firebase Cloud Messaging (HTTP v1) end to end, against local fakes of Google's token and
send endpoints (tests/fcm_fakes.py): the real ones are unreachable from the tests."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import DATA, alerts_feed, notify_config
from fcm_fakes import FakeGoogle
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.notify.service import push_topic
from aggregator.runtime import RUNTIME


@pytest.fixture
async def google():
    async with FakeGoogle() as fake:
        yield fake


async def test_alerts_reach_fcm_tokens_and_unregistered_ones_are_removed(
    tmp_path, upstream, vapid, google
) -> None:
    account = google.service_account().replace("'", "''")
    extra = f"""  fcm:
    service_account: '{account}'
    base_url: {google.base_url}
"""
    yaml = notify_config(upstream, str(tmp_path / "subs.sqlite3"), vapid[0], extra=extra)
    runtime = runtime_from(yaml, base_dir=DATA)
    async with TestClient(TestServer(create_app(runtime))) as client:
        await eventually(lambda: runtime.live.snapshot("caltrain-rt") is not None, within=60)
        ids = {}
        for token in ("phone-token-1", "gone-token-2"):
            answer = await client.post(
                "/v1/subscriptions",
                json={
                    "target": {"type": "fcm", "token": token},
                    "topics": {"lines": ["caltrain:L1"]},
                    "lang": "en",
                },
            )
            assert answer.status == 201, await answer.text()
            ids[token] = (await answer.json())["data"]["id"]
        bad = await client.post(
            "/v1/subscriptions",
            json={"target": {"type": "fcm", "token": "a b"}, "topics": {"agenda": True}},
        )
        assert (await bad.json())["errors"][0]["parameter"] == "target.token"

        upstream.route("/alerts.pb", Reply(body=alerts_feed(("w", "L1", {"en": "Works"}))))
        await eventually(lambda: len(google.messages) == 1, within=60)
        message = google.messages[0]
        assert message["token"] == "phone-token-1"
        assert message["notification"] == {"title": "L1: Works", "body": "Works (details)"}
        assert message["data"]["subject"] == "caltrain:w"
        assert message["android"]["collapse_key"] == push_topic("alert:caltrain:w")
        assert message["android"]["priority"] == "high"
        notifier = client.server.app[RUNTIME].notifier
        assert notifier is not None
        await eventually(lambda: notifier.counts["gone"] == 1)
        assert await notifier.store.get(ids["gone-token-2"]) is None

        upstream.route("/alerts.pb", Reply(body=alerts_feed(("w", "L1", {"en": "More works"}))))
        await eventually(lambda: len(google.messages) == 2, within=60)
        assert len(google.issued) == 1  # the access token is reused until it nears expiry


async def test_fcm_targets_are_refused_when_fcm_is_not_configured(tmp_path, upstream, vapid):
    runtime = runtime_from(notify_config(upstream, str(tmp_path / "s.db"), vapid[0]), base_dir=DATA)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        answer = await client.post(
            "/v1/subscriptions",
            json={"target": {"type": "fcm", "token": "t"}, "topics": {"agenda": True}},
        )
        problem = await answer.json()
        assert {
            "parameter": "target.type",
            "code": "fcm_not_configured",
        }.items() <= problem["errors"][0].items()

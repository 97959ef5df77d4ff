"""The next attempt a source's status shows is the one the scheduler will make: after an
admin refresh (recovered or failed), after a long Retry-After, during a slow poll, and in
one UTC offset. Real scheduler, real upstream on 127.0.0.1, real redis-server."""

import asyncio
import logging
from datetime import UTC, datetime

from aiohttp.test_utils import TestClient, TestServer
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.store.redis_store import RedisStore

ROWS = b'[{"code": "P1", "nom": "Gare"}]'
TOKEN = "schedule-truth-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config(url: str, refresh: str, extra: str = "", store: str = "") -> str:
    return f"""
    server:
      admin_token: {TOKEN}
      cursor_secret: schedule-truth-cursor-secret
    {store}
    connectors:
      - id: parkings
        type: json_records
        url: "{url}"
        refresh: {refresh}
        retries: 0
        timeout: 10s
        id_field: code
        {extra}
    """


def seconds_until(iso: str) -> float:
    return (datetime.fromisoformat(iso) - datetime.now(UTC)).total_seconds()


async def test_admin_refresh_schedules_the_retry_or_returns_to_cadence(upstream):
    """A failed admin refresh schedules the documented retry (it left the old one); one that
    recovers a backed-off source puts it back on its 30 s cadence (it kept the backoff, minutes
    away). Every next_run is written in UTC (it switched between +01:00 and +00:00)."""
    upstream.route("/p.json", [Reply(status=500)] * 3 + [Reply(body=ROWS)])
    runtime = runtime_from(config(upstream.url("/p.json"), "30s"))
    status = runtime.statuses["parkings"]
    async with TestClient(TestServer(create_app(runtime))) as client:
        await eventually(lambda: status.consecutive_failures == 1 and status.next_run is not None)
        shown = []
        for failures in (2, 3):
            answer = await client.post("/v1/admin/sources/parkings/refresh", headers=AUTH)
            body = (await answer.json())["data"]
            assert body["outcome"] == "failed"
            assert body["status"]["consecutive_failures"] == failures
            shown.append(body["status"]["next_run"])
            # 30 s doubled per failure, ±10 %: 60 s, then 120 s.
            expected = 30 * 2 ** (failures - 1)
            assert 0.85 * expected <= seconds_until(body["status"]["next_run"]) <= 1.1 * expected
        answer = await client.post("/v1/admin/sources/parkings/refresh", headers=AUTH)
        body = (await answer.json())["data"]
        assert body["outcome"] == "changed"
        assert 0 < seconds_until(body["status"]["next_run"]) <= 33  # the interval and its jitter
        shown.append(body["status"]["next_run"])
        public = (await (await client.get("/v1/sources/parkings")).json())["data"]
        shown.append(public["next_run"])
    assert all(value.endswith("+00:00") for value in shown), shown


async def test_a_long_retry_after_is_capped_per_source_said_and_shared(
    upstream, redis_server, caplog
):
    """Retry-After: 86400 on a one-minute source: the wait is capped by the source's
    max_retry_after (5 min here), a warning says so, and the next attempt is what every
    process reads from the store (it was null there: saved before it was known)."""
    upstream.route("/p.json", Reply(status=503, headers={"Retry-After": "86400"}))
    store = f"store:\n      backend: redis\n      url: {redis_server.url}\n      key_prefix: 't:'"
    runtime = runtime_from(
        config(upstream.url("/p.json"), "1m", extra="max_retry_after: 5m", store=store)
    )
    status = runtime.statuses["parkings"]
    caplog.set_level(logging.WARNING, logger="aggregator.scheduler")
    await runtime.start()
    reader = RedisStore(redis_server.url, prefix="t:")
    try:
        await eventually(lambda: status.consecutive_failures >= 1 and status.next_run is not None)
        assert 270 <= (status.next_run - datetime.now(UTC)).total_seconds() <= 300
        shared = (await reader.load_statuses())["parkings"]
        assert shared["next_run"] == status.next_run.isoformat()
    finally:
        await reader.close()
        await runtime.stop()
    lines = [r.getMessage() for r in caplog.records if "Retry-After" in r.getMessage()]
    assert lines[0].startswith("source parkings: the upstream asked to wait 86400 s (Retry-After)")


async def test_a_poll_slower_than_its_schedule_is_said_once_and_shows_no_past_next_run(
    upstream, caplog
):
    """A 1 s source whose poll takes seconds: while it runs the status shows since when and no
    next run (it showed one in the past); the skipped runs are counted, with one line of ours
    instead of APScheduler's warning at every skipped run."""
    # The upstream answers when the test says so (a fixed 3.5 s delay could end the poll
    # before a loaded machine had let the test look at it).
    answer = asyncio.Event()
    upstream.route("/p.json", [Reply(body=ROWS, hold=answer), Reply(body=ROWS)])
    runtime = runtime_from(config(upstream.url("/p.json"), "1s"))
    status = runtime.statuses["parkings"]
    caplog.set_level(logging.INFO)
    await runtime.start()
    try:
        await eventually(lambda: status.polling_since is not None)
        assert status.next_run is None
        await eventually(lambda: status.overruns >= 2)
        assert status.polling_since is not None
        answer.set()
        await eventually(lambda: status.polling_since is None and status.version == 1)
        assert status.next_run is not None and status.next_run > datetime.now(UTC)
    finally:
        await runtime.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "maximum number of running instances" in m]
    slow = [m for m in messages if "longer than its schedule" in m]
    assert len(slow) == 1
    assert slow[0].startswith("source parkings: a poll has been running for")

"""A Redis outage is one warning when it starts and one line when it ends, however long it
lasts: the store's listener retried every second and warned at every retry."""

import asyncio
import logging

from support import eventually, runtime_from
from upstream_server import Reply

ROWS = b'[{"code": "P1", "nom": "Gare"}]'


async def test_a_redis_outage_is_one_line_down_and_one_line_back(upstream, redis_server, caplog):
    upstream.route("/p.json", Reply(body=ROWS))
    runtime = runtime_from(
        f"""
        server: {{cursor_secret: outage-logs-secret}}
        store: {{backend: redis, url: "{redis_server.url}", key_prefix: "outage:"}}
        connectors:
          - {{id: parks, type: json_records, url: "{upstream.url("/p.json")}", id_field: code}}
        """
    )
    caplog.set_level(logging.INFO, logger="aggregator")
    await runtime.start()
    try:
        await eventually(lambda: runtime.live.snapshot("parks") is not None)
        # In a thread: the runtime under test runs on this loop.
        await asyncio.to_thread(redis_server.stop)
        await eventually(lambda: not runtime.store_ok)
        await asyncio.sleep(5)  # five one-second retries of the listener
        await asyncio.to_thread(redis_server.start)
        await eventually(lambda: runtime.store_ok, within=60)
        await eventually(
            lambda: any("is back" in r.getMessage() for r in caplog.records), within=60
        )
    finally:
        await runtime.stop()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("aggregator")]
    lost = [m for m in messages if m.startswith("store: lost the connection to Redis")]
    back = [m for m in messages if m == "store: connection to Redis is back; caught up"]
    assert len(lost) == 1, "\n".join(messages)
    assert len(back) == 1, messages
    assert len([m for m in messages if m.startswith("store: Redis does not answer")]) == 1

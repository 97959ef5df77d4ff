"""A rolling upgrade of a Redis deployment: what one version writes, another reads. The
store says which format and Beffroi version wrote each snapshot; a process meeting JSON data
in a newer format than it reads keeps serving what it has (and says so once) instead of
serving data whose shape its code does not know."""

import logging

import orjson
import redis.asyncio as aioredis
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator import __version__
from aggregator.store.base import STORE_FORMAT

V1 = b'[{"code": "P1", "nom": "Gare"}]'


def config(url: str, redis_url: str) -> str:
    return f"""
    server: {{cursor_secret: store-format-secret}}
    store: {{backend: redis, url: "{redis_url}", key_prefix: "fmt:"}}
    connectors:
      - {{id: parks, type: json_records, url: "{url}", id_field: code, fields: {{name: nom}}}}
    """


async def test_a_snapshot_in_a_newer_store_format_is_not_adopted(upstream, redis_server, caplog):
    upstream.route("/p.json", Reply(body=V1))
    yaml = config(upstream.url("/p.json"), redis_server.url)
    poller = runtime_from(yaml)
    api = runtime_from(yaml)
    api.role = "api"
    client = aioredis.from_url(redis_server.url)
    caplog.set_level(logging.WARNING, logger="aggregator.follower")
    await poller.start()
    await api.start(poll=False)
    try:
        await eventually(lambda: api.live.snapshot("parks") is not None)
        meta = orjson.loads(await client.hget("fmt:snap:parks", "meta"))
        assert meta["format"] == STORE_FORMAT
        assert meta["writer"] == __version__
        # A newer Beffroi writes version 2 in a format this one does not read.
        meta.update(format=STORE_FORMAT + 1, writer="9.0.0")
        body = orjson.dumps([{"id": "parks:P1", "renamed_field": "Gare"}])
        await client.hset(
            "fmt:snap:parks", mapping={"version": 2, "meta": orjson.dumps(meta), "body": body}
        )
        event = orjson.dumps({"kind": "snapshot", "source": "parks", "version": 2})
        for _ in range(2):
            await client.publish("fmt:events", event)
        await eventually(lambda: any("newer than" in r.getMessage() for r in caplog.records))
        snapshot = api.live.snapshot("parks")
        assert snapshot.version == 1
        assert snapshot.data[0]["name"] == "Gare"
    finally:
        await client.aclose()
        await api.stop()
        await poller.stop()
    # Once per process (both follow the store), however many announcements.
    warnings = [r.getMessage() for r in caplog.records if "newer than" in r.getMessage()]
    assert warnings == 2 * [
        f"source parks: the store holds version 2 written by beffroi 9.0.0 in store format "
        f"{STORE_FORMAT + 1}, newer than this process reads ({STORE_FORMAT}); keeping the "
        "data it has until it is upgraded"
    ]

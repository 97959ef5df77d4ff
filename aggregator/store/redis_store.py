"""The shared store: snapshots, statuses and polling leases in Redis.

Keys (under the configured prefix, so two deployments can share one Redis)::

    {prefix}snap:{source}    hash: version, meta (JSON, with the writer's store format and
                             Beffroi version), body (zlib when large)
    {prefix}status:{source}  JSON of the source's status
    {prefix}lease:{source}   the poller holding the source, with a TTL it renews
    {prefix}events           pub/sub channel: {"kind": "snapshot"|"status", "source", "version"}
    {prefix}sync:{collection}:*  change logs (see aggregator.store.changelog)

Snapshots are written only when newer than the stored one (a Lua script compares versions),
so a late poll can never roll data back. The data itself travels as JSON when it is plain
data, else as the raw upstream payload that each process parses again (a compiled
timetable is several times bigger than its zip).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from aggregator import __version__
from aggregator.cancelling import cancel_and_wait
from aggregator.model import ChangeEvent, Snapshot
from aggregator.status import SourceStatus, status_to_state
from aggregator.store import changelog
from aggregator.store.base import STORE_FORMAT, Shipped, Store

log = logging.getLogger(__name__)

#: Bodies above this size are compressed (zlib level 3: fast, and JSON shrinks 5-10x).
COMPRESS_ABOVE = 4096
_PLAIN_ONLY = (
    orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)

_SAVE = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'meta', ARGV[2], 'body', ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[4])
return 1
"""
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStore(Store):
    """Shares snapshots and statuses between processes; announces changes on pub/sub."""

    def __init__(self, url: str, *, prefix: str = "beffroi:", lease_ttl: float = 15.0) -> None:
        super().__init__()
        self._url = url
        self._prefix = prefix
        self._lease_ms = int(lease_ttl * 1000)
        self._client = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._save = self._client.register_script(_SAVE)
        self._acquire = self._client.register_script(_ACQUIRE)
        self._release = self._client.register_script(_RELEASE)
        self._publish_changes = self._client.register_script(changelog.REDIS_PUBLISH)
        self._read_changes = self._client.register_script(changelog.REDIS_READ)
        self._listener: asyncio.Task[None] | None = None
        self._resync_listeners: list[Callable[[], Any]] = []

    @property
    def shared(self) -> bool:
        return True

    @property
    def client(self) -> aioredis.Redis:
        """The connection pool, for other shared state (the rate limiter's buckets)."""
        return self._client

    @property
    def prefix(self) -> str:
        return self._prefix

    def _key(self, kind: str, source_id: str = "") -> str:
        return f"{self._prefix}{kind}:{source_id}" if source_id else f"{self._prefix}{kind}"

    def on_resync(self, listener: Callable[[], Any]) -> None:
        """Call ``listener`` whenever the connection to Redis comes back (events were missed)."""
        self._resync_listeners.append(listener)

    async def start(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(), name="redis-store-listener"
        )

    async def stop_listening(self) -> None:
        await cancel_and_wait(self._listener)

    async def close(self) -> None:
        await self.stop_listening()
        await self._client.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client.ping(), timeout=2))
        except (RedisError, OSError, TimeoutError):
            return False

    # -- snapshots ---------------------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot, payload: bytes | None = None) -> None:
        try:
            # Only plain JSON data travels as JSON: a dataclass or a datetime would come back
            # as a dict or a string, not what the connector's code expects.
            body, encoding = orjson.dumps(snapshot.data, option=_PLAIN_ONLY), "json"
        except TypeError:
            if payload is None:
                raise ValueError(
                    f"source {snapshot.source_id}: its data is not JSON and no payload was given"
                ) from None
            body, encoding = payload, "payload"
        compressed = len(body) > COMPRESS_ABOVE
        meta = {
            "source_type": snapshot.source_type,
            "content_hash": snapshot.content_hash,
            "fetched_at": snapshot.fetched_at.isoformat(),
            "record_count": snapshot.record_count,
            "issues": list(snapshot.issues),
            "stats": snapshot.stats,
            "encoding": encoding,
            "compressed": compressed,
            "format": STORE_FORMAT,
            "writer": __version__,
        }
        stored = await asyncio.to_thread(zlib.compress, body, 3) if compressed else body
        event = {"kind": "snapshot", "source": snapshot.source_id, "version": snapshot.version}
        written = await self._save(
            keys=[self._key("snap", snapshot.source_id), self._key("events")],
            args=[
                snapshot.version,
                orjson.dumps(meta, option=orjson.OPT_NON_STR_KEYS),
                stored,
                orjson.dumps(event),
            ],
        )
        if written:
            # This process has the object already: no need to read it back from Redis.
            await self._notify(ChangeEvent(snapshot.source_id, snapshot.version, snapshot))

    async def load_snapshot(self, source_id: str) -> Shipped | None:
        fields = await self._client.hmget(self._key("snap", source_id), "version", "meta", "body")
        version, meta_raw, body = fields
        if version is None or meta_raw is None or body is None:
            return None
        meta = orjson.loads(meta_raw)
        if meta["compressed"]:
            body = await asyncio.to_thread(zlib.decompress, body)
        return Shipped(
            source_id=source_id,
            source_type=meta["source_type"],
            version=int(version),
            content_hash=meta["content_hash"],
            fetched_at=datetime.fromisoformat(meta["fetched_at"]),
            record_count=meta["record_count"],
            encoding=meta["encoding"],
            body=body,
            issues=tuple(meta["issues"]),
            stats=meta["stats"],
            store_format=int(meta.get("format", 1)),  # writers before the field: format 1
            writer=meta.get("writer"),
        )

    # -- statuses ----------------------------------------------------------------------

    async def save_status(self, status: SourceStatus) -> None:
        state = orjson.dumps(status_to_state(status), option=orjson.OPT_NON_STR_KEYS)
        event = orjson.dumps({"kind": "status", "source": status.source_id})
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self._key("status", status.source_id), state)
            pipe.publish(self._key("events"), event)
            await pipe.execute()

    async def load_statuses(self) -> dict[str, dict[str, Any]]:
        states = {}
        async for key in self._client.scan_iter(match=self._key("status", "*")):
            raw = await self._client.get(key)
            if raw is not None:
                source_id = key.decode().removeprefix(f"{self._prefix}status:")
                states[source_id] = orjson.loads(raw)
        return states

    # -- leases ------------------------------------------------------------------------

    async def acquire(self, source_id: str, owner: str) -> bool:
        key = self._key("lease", source_id)
        return bool(await self._acquire(keys=[key], args=[owner, self._lease_ms]))

    async def release(self, source_id: str, owner: str) -> None:
        await self._release(keys=[self._key("lease", source_id)], args=[owner])

    # -- change logs -------------------------------------------------------------------

    async def publish_changes(
        self,
        collection: str,
        generation: dict[str, int],
        hashes: dict[str, str],
        now: float,
        *,
        retention_s: float = changelog.RETENTION_S,
        max_tombstones: int = changelog.MAX_TOMBSTONES,
    ) -> bool:
        args: list[Any] = [
            orjson.dumps(generation),
            now,
            retention_s,
            max_tombstones,
            changelog.new_epoch(),
        ]
        for rid in sorted(hashes):
            args += (rid, hashes[rid])
        keys = changelog.redis_keys(self._prefix, collection)
        return bool(await self._publish_changes(keys=keys, args=args))

    async def read_changes(self, collection: str, after: int) -> changelog.LogView:
        keys = changelog.redis_keys(self._prefix, collection)[:4]
        return changelog.view_of_redis(await self._read_changes(keys=keys, args=[after]))

    # -- change notifications ----------------------------------------------------------

    async def _listen(self) -> None:
        """Follow the events channel; after a lost connection, resync and follow again."""
        connected_before = False
        # One line when the connection is lost and one when it is back, however many
        # one-second retries the outage takes (it was a warning at every retry).
        lost = False
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._key("events"))
                for listener in self._resync_listeners if connected_before else ():
                    await _call(listener)
                if lost:  # said once subscribed and caught up: a first try may still fail
                    log.info("store: connection to Redis is back; caught up")
                    lost = False
                connected_before = True
                async for message in pubsub.listen():
                    await self._dispatch(message)
            except asyncio.CancelledError:
                await _quietly(pubsub.aclose())
                raise
            except (RedisError, OSError) as exc:
                if connected_before and not lost:
                    log.warning("store: lost the connection to Redis (%s); retrying", exc)
                lost = lost or connected_before
                await _quietly(pubsub.aclose())
                await asyncio.sleep(1.0)
                connected_before = True

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        try:
            event = orjson.loads(message["data"])
        except orjson.JSONDecodeError:
            return
        source_id = event.get("source")
        if not isinstance(source_id, str):
            return
        if event.get("kind") == "snapshot":
            await self._notify(ChangeEvent(source_id, int(event.get("version", 0))))
        elif event.get("kind") == "status":
            raw = await self._client.get(self._key("status", source_id))
            if raw is not None:
                state = orjson.loads(raw)
                for listener in self._status_listeners:
                    listener(source_id, state)


async def _call(listener: Callable[[], Any]) -> None:
    outcome = listener()
    if asyncio.iscoroutine(outcome):
        await outcome


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(RedisError, OSError):
        await awaitable

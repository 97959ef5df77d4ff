"""The Redis store against a real redis-server: snapshots, statuses, leases, rate limits."""

import asyncio
from datetime import UTC, datetime

import pytest
from support import eventually

from aggregator.api.ratelimit import MemoryBuckets, RedisBuckets
from aggregator.model import ChangeEvent, Snapshot
from aggregator.status import SourceStatus, status_to_state
from aggregator.store.redis_store import RedisStore


def snapshot(version: int, data: object, source_type: str = "json_records") -> Snapshot:
    return Snapshot(
        source_id="s",
        source_type=source_type,
        version=version,
        content_hash=f"h{version}",
        fetched_at=datetime(2026, 3, 29, 8, tzinfo=UTC),
        data=data,
        record_count=1,
        issues=("record 2: id missing",),
        stats={"rows": 2},
    )


@pytest.fixture
async def stores(redis_server):
    """Two stores on one Redis, as two processes would have."""
    a = RedisStore(redis_server.url, prefix="t:", lease_ttl=1.0)
    b = RedisStore(redis_server.url, prefix="t:", lease_ttl=1.0)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def test_snapshot_shared_as_json_and_announced(stores):
    """A snapshot saved by one process is announced to the other and loads back as JSON."""
    a, b = stores
    seen: list[ChangeEvent] = []
    b.subscribe(seen.append)
    await asyncio.sleep(0.2)  # let b's subscription settle
    records = [{"id": "s:1", "name": "Gare Lille-Flandres"}] * 500  # big enough to compress
    await a.save_snapshot(snapshot(1, records))
    await eventually(lambda: seen)
    assert seen[0].source_id == "s" and seen[0].version == 1 and seen[0].snapshot is None
    shipped = await b.load_snapshot("s")
    assert shipped.encoding == "json" and shipped.version == 1
    assert shipped.issues == ("record 2: id missing",) and shipped.stats == {"rows": 2}
    assert shipped.body.startswith(b'[{"id":"s:1"')


async def test_data_that_is_not_json_travels_as_its_payload(stores):
    """A compiled object is not serialised: the upstream payload goes instead, to parse again."""
    a, _ = stores
    await a.save_snapshot(snapshot(1, object(), "gtfs"), payload=b"PK\x03\x04zip bytes")
    shipped = await a.load_snapshot("s")
    assert shipped.encoding == "payload" and shipped.body == b"PK\x03\x04zip bytes"


async def test_an_older_version_never_replaces_a_newer_one(stores):
    """A slow poller saving version 1 after version 2 changes nothing."""
    a, b = stores
    await a.save_snapshot(snapshot(2, ["new"]))
    await b.save_snapshot(snapshot(1, ["old"]))
    assert (await a.load_snapshot("s")).body == b'["new"]'


async def test_statuses_are_shared(stores):
    """A status saved by a poller reaches the other process, whole."""
    a, b = stores
    received = {}
    b.subscribe_status(lambda source_id, state: received.update({source_id: state}))
    await asyncio.sleep(0.2)
    status = SourceStatus("s", "json_records", None, "every 1m", 60, 180, False)
    status.record_failure(at=datetime(2026, 3, 29, 8, tzinfo=UTC), duration_s=0.5, error="boom")
    await a.save_status(status)
    await eventually(lambda: "s" in received)
    assert received["s"] == status_to_state(status)
    assert (await b.load_statuses())["s"]["last_error"] == "boom"


async def test_leases_one_holder_renewal_expiry_release(stores):
    """One owner at a time; renewing keeps it; it expires after the TTL; release frees it."""
    a, b = stores
    assert await a.acquire("s", "poller-a")
    assert not await b.acquire("s", "poller-b")
    await asyncio.sleep(0.6)
    assert await a.acquire("s", "poller-a")  # renewed
    await asyncio.sleep(0.6)
    assert not await b.acquire("s", "poller-b")  # still held thanks to the renewal
    await asyncio.sleep(1.2)  # a stopped renewing: the lease lapses
    assert await b.acquire("s", "poller-b")
    await b.release("s", "poller-b")
    assert await a.acquire("s", "poller-a")


async def test_ping_says_when_redis_is_gone(redis_server):
    """ping is True while Redis runs and False once it is stopped."""
    store = RedisStore(redis_server.url)
    assert await store.ping()
    redis_server.stop()
    assert not await store.ping()
    await store.close()


@pytest.mark.parametrize("shared", [False, True])
async def test_token_bucket_allows_a_burst_then_refuses(redis_server, shared):
    """A client gets `burst` requests at once, then is refused; another client is not."""
    store = RedisStore(redis_server.url, prefix="rl:")
    buckets = (
        RedisBuckets(store.client, "rl:", rate=0.5, burst=3) if shared else MemoryBuckets(0.5, 3)
    )
    decisions = [await buckets.take("10.0.0.1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert (await buckets.take("10.0.0.2")).allowed
    await store.close()


async def test_dataclasses_and_datetimes_travel_as_payload_not_as_dicts(stores):
    """Data with dataclasses or datetimes is rebuilt from its payload, never from lossy JSON."""
    from dataclasses import dataclass

    @dataclass
    class Network:
        stations: list[str]

    a, _ = stores
    await a.save_snapshot(snapshot(1, Network(["s1"])), payload=b'{"raw": true}')
    assert (await a.load_snapshot("s")).encoding == "payload"
    await a.save_snapshot(snapshot(2, [{"at": datetime(2026, 1, 1, tzinfo=UTC)}]), payload=b"x")
    assert (await a.load_snapshot("s")).encoding == "payload"

"""The Redis store against a real redis-server: snapshots, statuses, leases, rate limits."""

import asyncio
from datetime import UTC, datetime

import pytest
import redis.asyncio
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
    await _until_subscribed(redis_server.url, "t:events", 2)
    yield a, b
    await a.close()
    await b.close()


async def test_snapshot_shared_as_json_and_announced(stores):
    """A snapshot saved by one process is announced to the other and loads back as JSON."""
    a, b = stores
    seen: list[ChangeEvent] = []
    b.subscribe(seen.append)  # b follows the channel already (see the fixture)
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
    status = SourceStatus("s", "json_records", None, "every 1m", 60, 180, False)
    status.record_failure(at=datetime(2026, 3, 29, 8, tzinfo=UTC), duration_s=0.5, error="boom")
    await a.save_status(status)
    await eventually(lambda: "s" in received)
    assert received["s"] == status_to_state(status)
    assert (await b.load_statuses())["s"]["last_error"] == "boom"


async def test_leases_one_holder_renewal_expiry_release(stores):
    """One owner at a time; renewing keeps it; it expires after the TTL; release frees it."""
    a, b = stores
    ttl = 1.0  # the stores' lease_ttl
    loop = asyncio.get_running_loop()
    # The renewal check needs b to ask more than a TTL after the lease was taken (so only the
    # renewal can explain a refusal) and less than a TTL after the renewal. A loaded machine
    # can oversleep the second bound: such a round proves nothing and is run again, on a new
    # source, rather than read as a failure.
    for attempt in range(10):
        source = f"s{attempt}"
        assert await a.acquire(source, "poller-a")
        taken = loop.time()
        assert not await b.acquire(source, "poller-b")
        await asyncio.sleep(0.6)
        renewing = loop.time()
        assert await a.acquire(source, "poller-a")  # renewed
        await asyncio.sleep(0.6)
        asking = loop.time()
        refused = not await b.acquire(source, "poller-b")
        if loop.time() - renewing < ttl:
            assert asking - taken > ttl
            assert refused  # still held thanks to the renewal
            break
    else:
        pytest.fail("no round ran within its timing bounds: the machine is too loaded")
    await asyncio.sleep(1.2)  # a stopped renewing: the lease lapses
    assert await b.acquire(source, "poller-b")
    await b.release(source, "poller-b")
    assert await a.acquire(source, "poller-a")


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
    # A token every 100 s: no pause of a loaded machine between the takes refills one.
    buckets = (
        RedisBuckets(store.client, "rl:", rate=0.01, burst=3) if shared else MemoryBuckets(0.01, 3)
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


async def _until_subscribed(url: str, channel: str, count: int) -> None:
    """Wait until ``count`` clients follow ``channel``: a message published before a
    store's subscription is active never reaches it (a fixed pause could be too short)."""
    client = redis.asyncio.from_url(url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60  # only stops a broken test from hanging
    try:
        while dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0) < count:
            assert loop.time() < deadline, f"{channel} never had {count} subscribers"
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()

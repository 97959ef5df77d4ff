"""Both subscription stores, SQLite and PostgreSQL: versioned schema applied once, data kept
across a reopen, and a change queued once per subscription however often it is recorded."""

from __future__ import annotations

import time

from aggregator.notify.storage import Change, Subscription, open_store


def subscription(sub_id: str, topics: dict) -> Subscription:
    now = time.time()
    return Subscription(sub_id, b"h" * 32, "webpush", "https://push.example/x", "p", "a", "fr",
                        topics, now, now)  # fmt: skip


async def test_schema_dedup_and_reopen(database: str) -> None:
    store = open_store(database)
    await store.open()
    try:
        await store.add(subscription("s1", {"lines": ["f:L1"], "stops": [], "agenda": False}))
        await store.add(subscription("s2", {"lines": ["f:L1"], "stops": ["f:S"], "agenda": True}))
        await store.add(subscription("s3", {"lines": ["f:L2"], "stops": [], "agenda": False}))
        change = Change("alert:f:a:1", ("line:f:L1", "stop:f:S"), "alert:f:a", "normal", {})
        assert await store.record_changes([change], time.time()) == 2  # s1, s2; s2 once
        assert await store.record_changes([change], time.time()) == 0
        assert await store.states() == {"pending": 2}
        due = await store.due(time.time(), 10)
        assert sorted(d.subscription.id for d in due) == ["s1", "s2"]
        await store.settle(sent=[("alert:f:a:1", "s1")], gone=["s2"])
        assert await store.states() == {"sent": 1}
        assert await store.get("s2") is None
    finally:
        await store.close()
    store = open_store(database)
    await store.open()  # the migrations are not applied twice
    try:
        assert await store.schema_version() == 1
        assert await store.count() == 2
        assert await store.record_changes([change], time.time()) == 0  # still deduplicated
        assert await store.expire(time.time() + 1) == 2
    finally:
        await store.close()

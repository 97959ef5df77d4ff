"""The change log behind sync tokens, on both stores: the memory one and a real Redis."""

from __future__ import annotations

import pytest

from aggregator.store.memory import MemoryStore
from aggregator.store.redis_store import RedisStore


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    server = request.getfixturevalue("redis_server")
    redis = RedisStore(server.url, prefix="log:")
    yield redis
    await redis.close()


async def test_changes_are_numbered_by_content(store):
    """A new or changed hash gets the next sequence number; the same content gets none; a
    record gone becomes a tombstone."""
    assert await store.publish_changes("c", {"s": 1}, {"a": "h1", "b": "h2"}, 1000.0)
    view = await store.read_changes("c", 0)
    assert [(seq, rid) for seq, rid, _ in view.changed] == [(1, "a"), (2, "b")]
    assert await store.publish_changes("c", {"s": 2}, {"a": "h1", "b": "h2"}, 1001.0)
    assert (await store.read_changes("c", 2)).changed == []
    await store.publish_changes("c", {"s": 3}, {"b": "h2'", "c": "h3"}, 1002.0)
    view = await store.read_changes("c", 2)
    assert view.changed == [(3, "b", "h2'"), (4, "c", "h3")]
    assert view.removed == [(5, "a")]
    assert (view.head, view.floor) == (5, 0)
    assert view.epoch == (await store.read_changes("c", 0)).epoch


async def test_an_older_generation_never_overwrites_a_newer_one(store):
    """A process still on an older snapshot cannot publish it over the newer one."""
    await store.publish_changes("c", {"s": 5}, {"a": "new"}, 1000.0)
    assert not await store.publish_changes("c", {"s": 4}, {"a": "old"}, 1001.0)
    assert (await store.read_changes("c", 0)).changed == [(1, "a", "new")]


async def test_tombstones_are_bounded_in_count_and_age(store):
    """Past the bound the oldest tombstones leave and raise the floor, below which a token
    cannot be answered any more."""
    await store.publish_changes("c", {}, {"a": "1", "b": "2", "c": "3"}, 1000.0)
    await store.publish_changes("c", {}, {"c": "3"}, 1001.0, max_tombstones=1)
    view = await store.read_changes("c", 0)
    assert view.removed == [(5, "b")] and view.floor == 4
    await store.publish_changes("c", {}, {"c": "3"}, 9000.0, retention_s=60.0)
    view = await store.read_changes("c", 0)
    assert view.removed == [] and view.floor == 5


class _Feed(dict):
    """A stand-in for one source's index: what a union reads of it is its content hashes
    (a dict subclass, so that two feeds are two objects a weak reference can follow)."""


async def test_a_process_missing_a_source_cannot_tombstone_its_records(store):
    """A list made of one index per source (news, places) names every configured source in
    its generation, an unloaded one as NOT_LOADED: a process still loading source b cannot
    publish the list without b over a log that has b's records."""
    from aggregator.api import sync

    a, b = _Feed({"a:1": "h1"}), _Feed({"b:1": "h2", "b:2": "h3"})

    class Owner:  # one per process: each keeps its own last union
        pass

    loaded, loading = Owner(), Owner()
    full, _ = sync.union(loaded, "news", ["a", "b"], {"a": (3, a), "b": (7, b)}, dict)
    await sync.publish(store, full)
    partial, union = sync.union(loading, "news", ["a", "b"], {"a": (3, a)}, dict)
    assert set(union.parts) == {"a"} and partial.generation == {"a": 3, "b": sync.NOT_LOADED}
    await sync.publish(store, partial)
    view = await store.read_changes("news", 0)
    assert view.removed == [] and {rid for _, rid, _ in view.changed} == {"a:1", "b:1", "b:2"}
    # A source dropped from the configuration is gone from the generation: its records go.
    dropped, _ = sync.union(loading, "news", ["a"], {"a": (3, a)}, dict)
    await sync.publish(store, dropped)
    assert sorted(rid for _, rid in (await store.read_changes("news", 0)).removed) == [
        "b:1",
        "b:2",
    ]

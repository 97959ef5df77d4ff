"""A stop waits for its background tasks, and must end even when a library swallows the
cancellation: a `serve --workers` stop hung for ever in CI on the Redis store's listener."""

import asyncio
import logging
import random

import redis.asyncio as aioredis

from aggregator.cancelling import cancel_and_wait
from aggregator.store.redis_store import RedisStore


async def test_a_task_that_swallows_one_cancellation_still_ends(caplog):
    heard = []

    async def deaf_once() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            heard.append("first")  # swallowed, as redis-py's listener does now and then
        await asyncio.Event().wait()  # only a second cancellation ends this

    task = asyncio.create_task(deaf_once(), name="deaf-once")
    await asyncio.sleep(0)
    with caplog.at_level(logging.INFO, logger="aggregator.cancelling"):
        await asyncio.wait_for(cancel_and_wait(task), timeout=60)
    assert task.cancelled() and heard == ["first"]
    [asked_again] = [r.getMessage() for r in caplog.records if r.name == "aggregator.cancelling"]
    assert asked_again.startswith("task deaf-once did not end 0.5 s after it was cancelled")
    assert "deaf_once (tests/test_cancelling.py:" in asked_again  # where it waits


async def test_a_failed_task_is_waited_for_and_its_error_retrieved():
    async def fails() -> None:
        raise ValueError("broken")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(task, None)
    assert isinstance(task.exception(), ValueError)


async def test_the_redis_store_closes_while_its_listener_reads(redis_server):
    """Closing the store while pub/sub messages flow: with one cancellation, 121 closes in
    300 never ended (the listener went on listening); each must end now."""
    publisher = aioredis.from_url(redis_server.url)
    flowing = True

    async def publish() -> None:
        while flowing:
            await publisher.publish("closing:events", b'{"source": "x", "kind": "other"}')
            await asyncio.sleep(random.random() * 0.002)

    traffic = asyncio.create_task(publish())
    try:
        for _ in range(60):
            store = RedisStore(redis_server.url, prefix="closing:")
            await store.start()
            await asyncio.sleep(random.random() * 0.05)
            await asyncio.wait_for(store.close(), timeout=10)
    finally:
        flowing = False
        await traffic
        await publisher.aclose()

"""A stop that takes too long says where it waits: each pending task and thread, by function
and line, never a value."""

import asyncio
import logging
import sys
import threading

import redis.asyncio
from support import eventually

from aggregator.stop_report import report_after
from aggregator.store.redis_store import RedisStore

SECRET = "s3cr3t-token-value"


async def _inner_wait(event: asyncio.Event, token: str) -> None:
    await event.wait()


async def a_stuck_source_stop(event: asyncio.Event) -> None:
    await _inner_wait(event, SECRET)


def a_stuck_thread(event: threading.Event, token: str) -> None:
    event.wait()


async def test_the_report_names_where_each_task_and_thread_waits(caplog):
    task_release = asyncio.Event()
    thread_release = threading.Event()
    task = asyncio.create_task(a_stuck_source_stop(task_release), name="source-stop")
    thread = threading.Thread(target=a_stuck_thread, args=(thread_release, SECRET), name="parser")
    thread.start()
    # Started is not yet waiting: on a loaded machine the thread may not have reached its
    # wait when the report is taken, which would then rightly not show it.
    await eventually(lambda: _waits_in_threading(thread))
    try:
        with caplog.at_level(logging.ERROR, logger="aggregator.stop_report"):
            report_after(0.01)
            await asyncio.sleep(0.2)
    finally:
        task_release.set()
        thread_release.set()
        await task
        thread.join()
    [record] = [r for r in caplog.records if r.name == "aggregator.stop_report"]
    text = record.getMessage()
    assert text.startswith("still stopping after 0 s; waiting for")
    task_line = next(line for line in text.splitlines() if "task source-stop:" in line)
    # The innermost frames, outermost first, with the file from the package on.
    assert "a_stuck_source_stop (tests/test_stop_report.py:" in task_line
    assert "_inner_wait (tests/test_stop_report.py:" in task_line
    assert task_line.index("a_stuck_source_stop") < task_line.index("_inner_wait")
    assert "wait (asyncio/locks.py:" in task_line
    thread_line = next(line for line in text.splitlines() if "thread parser:" in line)
    assert "a_stuck_thread (tests/test_stop_report.py:" in thread_line
    assert "wait (threading.py:" in thread_line
    assert SECRET not in text


def _waits_in_threading(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident)  # type: ignore[arg-type]
    while frame is not None:
        if frame.f_code.co_name == "wait" and frame.f_code.co_filename.endswith("threading.py"):
            return True
        frame = frame.f_back
    return False


async def test_a_stop_that_ends_in_time_reports_nothing(caplog):
    with caplog.at_level(logging.ERROR, logger="aggregator.stop_report"):
        report_after(0.05).cancel()
        await asyncio.sleep(0.1)
    assert not [r for r in caplog.records if r.name == "aggregator.stop_report"]


async def test_the_report_follows_a_wait_into_an_async_generator(caplog, redis_server):
    """The Redis store's listener waits inside redis-py's ``listen()``, an async generator
    that ``async for`` steps through: the report goes into it, and keeps the listener's own
    line in view however deep the library's stack is."""
    store = RedisStore(redis_server.url, prefix="report:")
    await store.start()
    try:
        await _until_subscribed(redis_server.url, "report:events")
        with caplog.at_level(logging.ERROR, logger="aggregator.stop_report"):
            report_after(0.01)
            await asyncio.sleep(0.2)
    finally:
        await store.close()
    [record] = [r for r in caplog.records if r.name == "aggregator.stop_report"]
    line = next(x for x in record.getMessage().splitlines() if "redis-store-listener" in x)
    assert line.startswith("  task redis-store-listener: _listen (aggregator/store/redis_store.py:")
    assert " > … > " in line
    assert "(redis/" in line  # inside the library's generator, not stopped at the async for


async def _until_subscribed(url: str, channel: str) -> None:
    client = redis.asyncio.from_url(url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60  # only stops a broken test from hanging
    try:
        while not dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0):
            assert loop.time() < deadline, f"nobody subscribed to {channel}"
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()

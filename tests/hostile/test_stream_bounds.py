"""Hostile clients of the live stream (/v1/stream): made-up ids, streams opened and closed by
the thousand, one client taking every slot. The real app on the demo's Caltrain data, real
HTTP connections from two loopback addresses.

The app is served as ``beffroi serve`` serves it (an AppRunner), not by aiohttp's TestServer:
TestServer cancels a handler when its client disconnects, production does not, and how a
stream notices that its client left is part of what is tested here.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse, ClientSession, TCPConnector, web
from support import eventually, runtime_from

from aggregator.api.app import create_app
from aggregator.api.stream import MAX_STOPS
from aggregator.api.stream_hub import HUB, StreamHub
from aggregator.serving import HTTP_LIMITS

DATA = Path(__file__).parents[2] / "config" / "demo-data"
CONFIG = """
server:
  stream_heartbeat: 200ms
  max_streams: 50
  max_streams_per_client: 3
defaults:
  allow_file_urls: true
clock:
  fixed: 2023-11-07T17:06:00-08:00
connectors:
  - id: caltrain
    type: gtfs
    url: file:caltrain-2023-11.gtfs.zip
  - id: caltrain-rt
    type: gtfs_rt
    feed: caltrain
    urls:
      - file:caltrain-2023-11-08T0105Z-trip-updates.pb
      - file:caltrain-2023-11-08T0105Z-service-alerts.pb
"""


@dataclass
class Served:
    base: str
    hub: StreamHub

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def served() -> AsyncIterator[tuple[Served, StreamHub]]:
    runtime = runtime_from(CONFIG, base_dir=DATA)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()
    app = create_app(runtime, poll=False)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **HTTP_LIMITS)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        server = Served(f"http://127.0.0.1:{port}", app[HUB])
        yield server, server.hub
    finally:
        await runner.cleanup()


async def first_line(response: ClientResponse) -> bytes:
    """The stream's first line after its ``retry:`` field (``id: ...`` of its first event):
    it really streams."""
    line = await asyncio.wait_for(response.content.readline(), timeout=60)
    if line.startswith(b"retry:"):
        await asyncio.wait_for(response.content.readline(), timeout=60)  # the blank line
        line = await asyncio.wait_for(response.content.readline(), timeout=60)
    return line


#: What may stay allocated after a round of thousands of requests: noise, not a leak (the
#: leaks guarded against kept megabytes).
ALLOWED_GROWTH = 128 * 1024


async def traced_growth(
    warm_up: Callable[[], Awaitable[None]], measured: Callable[[], Awaitable[None]]
) -> int:
    """Bytes still allocated after ``measured``, counted from the end of ``warm_up``.

    Both run traced: the libraries' bounded caches (yarl's URL caches, the timetable's
    memos) are full of traced entries by the end of the warm-up, so replacing them later
    nets zero instead of counting as growth.
    """
    await warm_up()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    await measured()
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


def streams_by_client(hub: StreamHub) -> dict[str, int]:
    return {client: len(streams) for client, streams in hub.per_client.items()}


def hub_is_empty(hub: StreamHub) -> bool:
    return not hub.topics and not hub.subscriptions and not hub.per_client


def caltrain_ids(hub: StreamHub) -> tuple[list[str], list[str]]:
    """Every stop and line id of the loaded Caltrain timetable."""
    snapshot = hub.runtime.live.snapshot("caltrain")
    assert snapshot is not None
    timetable = snapshot.data
    stops = [f"caltrain:{native}" for native in sorted(timetable.stop_index)]
    return stops, [f"caltrain:{native}" for native in sorted(timetable.route_index)]


async def test_made_up_ids_are_a_404_naming_them_before_any_stream(served):
    """Stops and lines the transit data does not have get a problem naming each of them,
    not a stream; nothing of them stays in the hub."""
    server, hub = served
    cases = [
        ("stops=caltrain:nowhere", ["stops"]),
        ("stops=nofeed:x1", ["stops"]),
        ("lines=caltrain:L404", ["lines"]),
        ("stops=caltrain:lawrence,caltrain:nope&lines=caltrain:L1,zz:9", ["stops", "lines"]),
        ("stops=caltrain:lawrence/departures%3Fx", ["stops"]),  # no path games either
    ]
    async with ClientSession() as session:
        for query, unknown in cases:
            async with session.get(server.url(f"/v1/stream?{query}")) as answer:
                assert answer.status == 404, query
                assert answer.headers["Content-Type"].startswith("application/problem+json")
                problem = await answer.json(content_type=None)
            assert problem["type"] == "/problems/not_found"
            assert [error["parameter"] for error in problem["errors"]] == unknown
            for error in problem["errors"]:
                # Each unknown id is named (ids have no spaces: the detail's last word).
                assert error["detail"].rsplit(" ", 1)[-1] in problem["detail"]
        english = {"Accept-Language": "en"}
        url = server.url("/v1/stream?stops=caltrain:nowhere")
        async with session.get(url, headers=english) as answer:
            problem = await answer.json(content_type=None)
        assert problem["detail"] == "unknown ids: 'caltrain:nowhere'"
        assert problem["errors"][0]["detail"] == "no stop 'caltrain:nowhere'"
        assert problem["errors"][0]["code"] == "no_stop"
    assert hub_is_empty(hub)


async def test_a_stream_follows_a_bounded_number_of_ids(served):
    """More stops than MAX_STOPS is a 400 naming the parameter, before any lookup."""
    server, _ = served
    too_many = ",".join(f"caltrain:s{n}" for n in range(MAX_STOPS + 1))
    async with (
        ClientSession() as session,
        session.get(server.url(f"/v1/stream?stops={too_many}")) as answer,
    ):
        assert answer.status == 400
        assert (await answer.json(content_type=None))["errors"][0]["parameter"] == "stops"


async def test_topics_leave_the_hub_with_their_last_stream(served):
    """A topic stays while one stream follows it and goes with the last; a client's count
    goes with its last stream."""
    server, hub = served
    url = server.url("/v1/stream?stops=caltrain:lawrence&lines=caltrain:L1")
    async with ClientSession() as session:
        first, second = await session.get(url), await session.get(url)
        await first_line(first)
        await first_line(second)
        by_name = {topic.name: topic for topic in hub.topics.values()}
        assert set(by_name) == {
            "board:caltrain:lawrence",
            "alerts:stop:caltrain:lawrence",
            "alerts:line:caltrain:L1",
        }
        assert streams_by_client(hub) == {"127.0.0.1": 2}
        first.close()
        await eventually(lambda: len(hub.subscriptions) == 1)
        assert by_name["board:caltrain:lawrence"].subscribers == 1
        assert by_name["board:caltrain:lawrence"].payload is not None
        second.close()
        await eventually(lambda: hub_is_empty(hub))


async def test_opening_and_closing_many_streams_leaves_nothing_behind(served):
    """Hundreds of streams over every Caltrain stop, opened and closed: the hub is empty
    after each round, and a later round allocates nothing that stays."""
    server, hub = served
    stops, lines = caltrain_ids(hub)
    assert len(stops) > 50 and lines

    async def one_round() -> None:
        async with ClientSession() as session:
            for n, stop in enumerate(stops):
                url = server.url(f"/v1/stream?stops={stop}&lines={lines[n % len(lines)]}")
                async with session.get(url) as response:
                    assert response.status == 200
                    await first_line(response)
        await eventually(lambda: hub_is_empty(hub), within=60)

    tracemalloc.start()
    try:
        grown = await traced_growth(one_round, one_round)
    finally:
        tracemalloc.stop()
    assert grown < ALLOWED_GROWTH, f"{grown} bytes stayed after {len(stops)} streams"


async def test_made_up_ids_by_the_thousand_take_no_memory(served):
    """1,200 streams asked on distinct made-up stop ids leave nothing behind: no topic, no
    cached content (the leak this guards against grew by megabytes)."""
    server, hub = served

    async def ask(first: int, count: int) -> None:
        async with ClientSession() as session:
            for n in range(first, first + count):
                url = server.url(f"/v1/stream?stops=caltrain:made-up-{n}&lines=caltrain:x{n}")
                async with session.get(url) as response:
                    await first_line(response)  # the problem, or (the leak) a stream's first line
        await eventually(lambda: not hub.subscriptions, within=60)

    tracemalloc.start()
    try:
        grown = await traced_growth(lambda: ask(0, 600), lambda: ask(600, 1200))
    finally:
        tracemalloc.stop()
    assert grown < ALLOWED_GROWTH, f"{grown} bytes stayed after 1,200 made-up ids"
    assert not hub.topics


async def test_one_client_at_its_cap_is_refused_while_another_still_streams(served):
    """With max_streams_per_client 3, a client's fourth stream is a 429 naming the cap; a
    client from another address still gets a stream, and the first gets one again once it
    closes one of its own."""
    server, hub = served
    url = server.url("/v1/stream?stops=caltrain:lawrence")
    greedy = ClientSession(connector=TCPConnector(local_addr=("127.0.0.1", 0)))
    other = ClientSession(connector=TCPConnector(local_addr=("127.0.0.2", 0)))
    async with greedy, other:
        held = [await greedy.get(url) for _ in range(3)]
        for response in held:
            assert response.status == 200
            await first_line(response)
        refused = await greedy.get(url)
        assert refused.status == 429
        problem = await refused.json(content_type=None)
        assert problem["type"] == "/problems/too_many_streams"
        assert problem["max_streams_per_client"] == 3
        assert "max_streams_per_client" in problem["detail"]
        async with other.get(url) as response:
            assert response.status == 200
            assert (await first_line(response)).startswith(b"id: ")
            assert streams_by_client(hub) == {"127.0.0.1": 3, "127.0.0.2": 1}
        held.pop().close()
        await eventually(lambda: streams_by_client(hub).get("127.0.0.1") == 2)
        async with greedy.get(url) as again:
            assert again.status == 200
        for response in held:
            response.close()
    await eventually(lambda: hub_is_empty(hub))


async def test_a_client_resuming_a_topic_nobody_kept_gets_its_content_again(served):
    """Dropping a topic forgets which version of it was sent: a client resuming with
    Last-Event-ID after everyone left gets the current board again, never less."""
    server, hub = served
    url = server.url("/v1/stream?stops=caltrain:lawrence")
    async with ClientSession() as session:
        async with session.get(url) as response:
            seen = (await first_line(response)).decode().split(": ", 1)[1].strip()
        await eventually(lambda: hub_is_empty(hub))
        async with session.get(url, headers={"Last-Event-ID": seen}) as resumed:
            assert await first_line(resumed) != b": heartbeat\n"
            assert (await resumed.content.readline()) == b"event: board\n"


async def test_a_client_closing_and_opening_streams_in_a_row_is_never_refused(served):
    """Streams closed count no more against their client's cap (3), even before the hub's
    periodic check has seen them go: 30 in a row, one open at a time, all answered."""
    server, hub = served
    url = server.url("/v1/stream?stops=caltrain:lawrence")
    statuses = []
    async with ClientSession() as session:
        for _ in range(30):
            async with session.get(url) as response:
                statuses.append(response.status)
                if response.status == 200:
                    await first_line(response)
    assert statuses == [200] * 30
    await eventually(lambda: hub_is_empty(hub))

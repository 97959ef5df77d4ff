"""What following redirects by hand (origin rules, peer-address check) costs a fetch.

The Fetcher used to let httpx follow redirects; it now follows them itself, hop by hop, to
keep configured headers on the configured origin and to refuse a redirect from a public
address into the internal network. This times ``Fetcher.fetch`` against a real aiohttp
upstream on 127.0.0.1 (its own thread and event loop) for a plain answer, a large one, a
same-origin and a cross-origin redirect and a conditional 304, and the body-URL rule on its
own. The client's CPU time per fetch (its own thread) is the steady figure on a shared
machine; wall times move with whatever else runs. Run it on this tree and on a clean export
of the previous commit to compare::

    .venv/bin/python bench/fetch_origins.py --fetches 400
    git archive <before> | tar -x -C /tmp/before; echo <before> > /tmp/before/COMMIT
    PYTHONPATH=/tmp/before .venv/bin/python bench/fetch_origins.py --fetches 400
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import timeit
from collections.abc import Awaitable, Callable

from aiohttp import web
from benchlib import header, median, percentile, table

from aggregator.fetch import Fetcher
from aggregator.fetch_result import FetchResult

SMALL = b"x" * 1024
LARGE = b"y" * 1_000_000


def _app(other_port: Callable[[], int]) -> web.Application:
    async def small(_request: web.Request) -> web.Response:
        return web.Response(body=SMALL, headers={"ETag": '"s"'})

    async def large(_request: web.Request) -> web.Response:
        return web.Response(body=LARGE)

    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/small")

    async def away(_request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{other_port()}/small")

    async def conditional(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"s"':
            return web.Response(status=304, headers={"ETag": '"s"'})
        return web.Response(body=SMALL, headers={"ETag": '"s"'})

    app = web.Application()
    for path, handler in (
        ("/small", small),
        ("/large", large),
        ("/moved", moved),
        ("/away", away),
        ("/conditional", conditional),
    ):
        app.router.add_get(path, handler)
    return app


class Upstreams:
    """Two aiohttp servers (two origins) on 127.0.0.1, served from their own thread."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Upstreams:
        self._thread.start()
        if not self._ready.wait(10):
            raise SystemExit("the upstreams did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runners = []
        for _ in range(2):
            runner = web.AppRunner(_app(lambda: self.ports[1]), access_log=None)
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.ports.append(runner.addresses[0][1])
            runners.append(runner)
        self._ready.set()
        self._loop.run_forever()
        for runner in runners:
            self._loop.run_until_complete(runner.cleanup())


async def _times(
    fetch: Callable[[], Awaitable[FetchResult]], count: int
) -> tuple[list[float], list[float]]:
    """Wall ms and client CPU ms (this thread only: the upstreams run in another) per fetch."""
    for _ in range(min(20, count)):  # warm the connection pool
        await fetch()
    wall, cpu = [], []
    for _ in range(count):
        started, started_cpu = time.perf_counter(), time.thread_time()
        await fetch()
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu


async def measure(port: int, count: int) -> list[list[str]]:
    base = f"http://127.0.0.1:{port}"
    limits = {"timeout": 10.0, "max_bytes": 2_000_000, "retries": 0}
    headers = {"X-Api-Key": "bench"}
    rows = []
    async with Fetcher() as fetcher:
        first = await fetcher.fetch(f"{base}/conditional", **limits)
        cases: list[tuple[str, Callable[[], Awaitable[FetchResult]]]] = [
            ("200, 1 KB", lambda: fetcher.fetch(f"{base}/small", headers=headers, **limits)),
            ("200, 1 MB", lambda: fetcher.fetch(f"{base}/large", headers=headers, **limits)),
            (
                "301 same origin → 200, 1 KB",
                lambda: fetcher.fetch(f"{base}/moved", headers=headers, **limits),
            ),
            (
                "302 other origin → 200, 1 KB",
                lambda: fetcher.fetch(f"{base}/away", headers=headers, **limits),
            ),
            (
                "304 (conditional)",
                lambda: fetcher.fetch(f"{base}/conditional", validators=first.validators, **limits),
            ),
        ]
        for label, fetch in cases:
            wall, cpu = await _times(fetch, count)
            rows.append(
                [label, f"{median(cpu):.3f}", f"{median(wall):.3f}", f"{percentile(wall, 90):.3f}"]
            )
    return rows


def rule_micro() -> str:
    """The body-URL rule per URL, in microseconds (absent before the rule existed)."""
    try:
        from aggregator.origins import UrlFromBody, origin_of
    except ImportError:
        return "aggregator.origins does not exist in this code: no body-URL rule to time."
    rule = UrlFromBody.of("https://api.example.org/gbfs.json", ["https://cdn.example.org"], "x")
    url = "https://cdn.example.org/gbfs/fr/station_status.json"
    number = 20_000
    per_check = min(timeit.repeat(lambda: rule.refusal(url), number=number, repeat=5))
    per_origin = min(timeit.repeat(lambda: origin_of(url), number=number, repeat=5))
    return (
        f"Body-URL rule: `UrlFromBody.refusal` {per_check / number * 1e6:.2f} µs per URL, "
        f"`origin_of` {per_origin / number * 1e6:.2f} µs (best of 5 × {number})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetches", type=int, default=400, help="timed fetches per case")
    args = parser.parse_args()
    with Upstreams() as upstreams:
        rows = asyncio.run(measure(upstreams.ports[0], args.fetches))
    print(header())
    print(f"{args.fetches} fetches per case, upstreams on 127.0.0.1 in a thread of this process.\n")
    print(
        table(
            ["case", "client CPU ms (median)", "wall ms (median)", "wall ms (p90)"],
            rows,
            [False, True, True, True],
        )
    )
    print()
    print(rule_micro())


if __name__ == "__main__":
    main()

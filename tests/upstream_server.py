"""A scriptable upstream HTTP server for tests: a real aiohttp server on 127.0.0.1.

Used through the ``upstream`` fixture (tests/conftest.py)::

    upstream.route("/feed.json", [Reply(status=500), Reply(body=b"[]", headers={"ETag": '"v1"'})])
    result = await fetcher.fetch(upstream.url("/feed.json"), timeout=1, max_bytes=1000)
    assert upstream.hits("/feed.json") == 2

Replies are served in order, the last one repeating. A path with no route answers 404.
Routes match on the path alone, so ``/feed.json?key=...`` is served by ``/feed.json``.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from local_server import LocalServer
from multidict import CIMultiDict, CIMultiDictProxy, MultiDictProxy


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``delay`` waits before the status line; ``hold`` waits until the test sets that event
    (a poll that stays under way for as long as the test needs, however slow the machine);
    ``trickle`` sends the body ``chunk_size`` bytes at a time with that pause between chunks;
    ``chunked`` drops Content-Length (chunked transfer encoding), as do trickled replies unless
    ``headers`` sets one. With ``conditional`` (the default) a request whose If-None-Match
    matches the reply's ETag, or whose If-Modified-Since is not older than its Last-Modified,
    gets a 304 instead.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0
    trickle: float = 0.0
    chunk_size: int = 1
    chunked: bool = False
    conditional: bool = True
    hold: asyncio.Event | None = None

    @classmethod
    def file(cls, path: Path, **kwargs: Any) -> Reply:
        """A reply whose body is the content of ``path`` (a GTFS zip, an .ics, a .pb...)."""
        return cls(body=Path(path).read_bytes(), **kwargs)

    def not_modified_for(self, request: web.Request) -> bool:
        """Whether ``request``'s validators match this reply, so it deserves a 304."""
        if not self.conditional or not 200 <= self.status < 300:
            return False
        headers = CIMultiDict(self.headers)
        if "If-None-Match" in request.headers:  # RFC 9110: it takes precedence over the date
            etag = headers.get("ETag")
            wanted = [tag.strip() for tag in request.headers["If-None-Match"].split(",")]
            return etag is not None and ("*" in wanted or _weak(etag) in map(_weak, wanted))
        since, modified = request.headers.get("If-Modified-Since"), headers.get("Last-Modified")
        if since is None or modified is None:
            return False
        try:
            return email.utils.parsedate_to_datetime(modified) <= (
                email.utils.parsedate_to_datetime(since)
            )
        except (TypeError, ValueError):
            return False


def _weak(tag: str) -> str:
    return tag.removeprefix("W/")


class ReceivedRequest(Mapping[str, str]):
    """A request as the upstream saw it: reads as its (case-insensitive) headers, plus details."""

    def __init__(self, request: web.Request, body: bytes) -> None:
        self.method = request.method
        self.path = request.path
        self.query: MultiDictProxy[str] = request.query
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(request.headers))
        self.body = body

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __len__(self) -> int:
        return len(self.headers)

    def __repr__(self) -> str:
        return f"<ReceivedRequest {self.method} {self.path} {dict(self.headers)!r}>"


class Upstream(LocalServer):
    """A real HTTP server on 127.0.0.1 whose answers each test scripts per path."""

    def __init__(self) -> None:
        super().__init__()
        self._routes: dict[str, list[Reply]] = {}
        self._received: defaultdict[str, list[ReceivedRequest]] = defaultdict(list)

    def route(self, path: str, replies: Reply | Sequence[Reply]) -> None:
        """Script ``path``: the replies are served in order, the last one repeating."""
        # A Sequence check, not isinstance(Reply): conftest may be imported under two names.
        replies = list(replies) if isinstance(replies, Sequence) else [replies]
        if not replies:
            raise ValueError("a route needs at least one reply")
        self._routes[path] = replies

    def hits(self, path: str) -> int:
        return len(self._received[path])

    def requests(self, path: str) -> list[ReceivedRequest]:
        return list(self._received[path])

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/{tail:.*}", self._handle)

    def _next_reply(self, path: str) -> Reply:
        replies = self._routes.get(path)
        if replies is None:
            return Reply(status=404, body=b"no route for this path in the test")
        return replies.pop(0) if len(replies) > 1 else replies[0]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._received[request.path].append(ReceivedRequest(request, await request.read()))
        reply = self._next_reply(request.path)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.hold is not None:
            await reply.hold.wait()
        if reply.not_modified_for(request):
            validators = {k: v for k, v in reply.headers.items() if k.lower() in _VALIDATORS}
            return web.Response(status=304, headers=validators)
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        if reply.content_type is not None:
            response.content_type = reply.content_type
        if not (reply.chunked or reply.trickle) and "Content-Length" not in response.headers:
            response.content_length = len(reply.body)
        try:
            await response.prepare(request)
            step = max(1, reply.chunk_size) if reply.trickle else max(1, len(reply.body))
            for start in range(0, len(reply.body), step):
                await response.write(reply.body[start : start + step])
                if reply.trickle:
                    await asyncio.sleep(reply.trickle)
            await response.write_eof()
        except ConnectionError:
            pass  # the client gave up (timeout, size cap): expected in those tests
        return response


_VALIDATORS = {"etag", "last-modified", "cache-control", "expires"}

"""``GET /v1/stream?stops=&lines=``: Server-Sent Events of departure boards and alerts.

A stream sends the boards of the stops it follows and the alerts on its stops and lines, then
a new event whenever that changes — when the data changes (a realtime poll, a timetable
update), not on a timer; an idle stream gets a heartbeat comment. Event ids let a client that
reconnects with ``Last-Event-ID`` skip what it already has. With the Redis store every API
process follows the same data, so a stream works on whichever process answers it.

Many phones follow the same stop: a board is computed once per data change and shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from aggregator.api.conventions import SECURITY_HEADERS
from aggregator.api.internal import Unavailable, internal_get
from aggregator.api.params import QueryParams
from aggregator.api.problems import ApiError, BadParameter
from aggregator.api.routing import ApiRouter, Param
from aggregator.api.schemas import csv
from aggregator.model import Snapshot
from aggregator.runtime import Runtime, runtime_of

log = logging.getLogger(__name__)

MAX_STOPS, MAX_LINES = 10, 20
BOARD_LIMIT = 8
#: Only these kinds of data change boards and alerts.
STREAMED_TYPES = frozenset({"gtfs", "gtfs_rt"})


@dataclass
class Topic:
    """The latest content of one topic (a stop's board, a line's alerts), shared by streams."""

    seq: int = 0
    digest: str = ""
    payload: Any = None


@dataclass
class StreamHub:
    """Every open stream of this process, woken when streamed data changes."""

    runtime: Runtime
    max_streams: int
    seq: int = 0
    generation: int = 0
    topics: dict[str, Topic] = field(default_factory=dict)
    wakers: set[asyncio.Event] = field(default_factory=set)
    closing: bool = False
    _cache: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.source_type in STREAMED_TYPES:
            self.generation += 1
            for waker in self.wakers:
                waker.set()

    def close(self) -> None:
        self.closing = True
        for waker in self.wakers:
            waker.set()

    async def content(self, request: web.Request, path: str) -> Any:
        """``path``'s data, computed once per data change whoever asks."""
        cached = self._cache.get(path)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        try:
            data = (await internal_get(request, path)).data
        except Unavailable as exc:
            data = {"unavailable": str(exc)}
        self._cache[path] = (self.generation, data)
        return data

    def publish(self, name: str, payload: Any) -> Topic:
        """The topic's current version: a new sequence number only when its content changed."""
        digest = hashlib.blake2b(orjson.dumps(payload), digest_size=12).hexdigest()
        topic = self.topics.setdefault(name, Topic())
        if topic.digest != digest:
            self.seq += 1
            topic.seq, topic.digest, topic.payload = self.seq, digest, payload
        return topic


HUB = web.AppKey("beffroi.stream_hub", StreamHub)


def _event(name: str, seq: int, payload: Any) -> bytes:
    data = orjson.dumps(payload)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, name.encode(), data)


async def stream(request: web.Request) -> web.StreamResponse:
    runtime = runtime_of(request)
    hub = request.app[HUB]
    params = QueryParams(request.query)
    stops = params.csv("stops", max_items=MAX_STOPS)
    lines = params.csv("lines", max_items=MAX_LINES)
    if not stops and not lines:
        raise BadParameter("stops", "follow at least one stop (stops=) or line (lines=)")
    for stop in stops:
        if ":" not in stop:
            raise BadParameter("stops", f"{stop!r} is not a stop id (e.g. 'ilevia:CHR001')")
    if len(hub.wakers) >= hub.max_streams:
        raise ApiError(
            503,
            "Too many streams",
            "this server follows as many live streams as it can; retry later",
            headers={"Retry-After": "30"},
        )
    last_seen = _last_event_id(request.headers.get("Last-Event-ID"), hub.seq)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # tell nginx not to buffer the stream
            **SECURITY_HEADERS,
            **_cors(request, runtime.config.server.cors_origins),
        }
    )
    await response.prepare(request)
    waker = asyncio.Event()
    hub.wakers.add(waker)
    sent: dict[str, str] = {}
    heartbeat = runtime.config.server.stream_heartbeat
    try:
        while not hub.closing:
            generation = hub.generation
            for name, path in _topics(stops, lines):
                payload = await hub.content(request, path)
                topic = hub.publish(name, payload)
                if sent.get(name) == topic.digest:
                    continue
                sent[name] = topic.digest
                if last_seen is not None and topic.seq <= last_seen:
                    continue  # the client had this version before it reconnected
                kind = "board" if name.startswith("board:") else "alerts"
                await response.write(_event(kind, topic.seq, {"topic": name, **_wrap(payload)}))
            last_seen = None
            waker.clear()
            if hub.generation != generation:
                continue  # the data changed while we were sending
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waker.wait(), timeout=heartbeat)
                continue
            await response.write(b": heartbeat\n\n")
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    finally:
        hub.wakers.discard(waker)
    return response


def _cors(request: web.Request, origins: list[str]) -> dict[str, str]:
    """The CORS middleware cannot add headers to a stream once sent: add them here."""
    origin = request.headers.get("Origin")
    if origin is None or not ("*" in origins or origin in origins):
        return {}
    return {"Access-Control-Allow-Origin": "*" if "*" in origins else origin}


def _topics(stops: list[str], lines: list[str]) -> list[tuple[str, str]]:
    topics = [(f"board:{s}", f"/v1/stops/{s}/departures?limit={BOARD_LIMIT}") for s in stops]
    topics += [(f"alerts:stop:{s}", f"/v1/alerts?stop={s}") for s in stops]
    topics += [(f"alerts:line:{line}", f"/v1/alerts?line={line}") for line in lines]
    return topics


def _wrap(payload: Any) -> dict[str, Any]:
    return payload if isinstance(payload, dict) else {"items": payload}


def _last_event_id(value: str | None, current: int) -> int | None:
    """The id a reconnecting client last got; None when unknown here (send everything)."""
    if value is None or not value.strip().isdigit():
        return None
    seen = int(value)
    return seen if seen <= current else None  # from another process or a restart


def install_stream(app: web.Application, router: ApiRouter, runtime: Runtime) -> None:
    hub = StreamHub(runtime, runtime.config.server.max_streams)
    app[HUB] = hub
    runtime.live.listen(hub.on_snapshot)

    async def end_streams(_app: web.Application) -> None:
        hub.close()  # let graceful shutdown finish instead of waiting on open streams

    app.on_shutdown.append(end_streams)


def register_stream(router: ApiRouter) -> None:
    router.get(
        "/v1/stream",
        stream,
        summary="Live departure boards and alerts (Server-Sent Events)",
        tags=["realtime"],
        params=[
            Param(
                "stops",
                f"Stop ids to follow, comma-separated (at most {MAX_STOPS}); "
                "stops or lines is required.",
                csv("[^,]*:[^,]*"),
            ),
            Param(
                "lines",
                f"Lines whose alerts to follow, comma-separated (at most {MAX_LINES}).",
                csv(),
            ),
        ],
        response={"type": "string", "description": "text/event-stream: board and alerts events"},
        media_type="text/event-stream",
        enveloped=False,
        errors=[400, 503],
    )

"""``GET /v1/stream?stops=&lines=``: Server-Sent Events of departure boards and alerts.

A stream sends the boards of the stops it follows and the alerts on its stops and lines, then
a new event whenever that changes — when the data changes (a realtime poll, a timetable
update), not on a timer; an idle stream gets a heartbeat comment. Event ids let a client that
reconnects with ``Last-Event-ID`` skip what it already has. With the Redis store every API
process follows the same data, so a stream works on whichever process answers it.

Many phones follow the same stop: a board is computed once per data change and shared by
the streams that follow it (:mod:`.stream_hub`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from aiohttp import web

from aggregator.api.conventions import SECURITY_HEADERS
from aggregator.api.i18n import negotiate_language
from aggregator.api.internal import Unavailable, internal_get
from aggregator.api.params import MAX_WINDOW_S, QueryParams, window_seconds
from aggregator.api.problems import ApiError, BadParameter
from aggregator.api.ratelimit import client_address
from aggregator.api.routing import ApiRouter, Param
from aggregator.api.schemas import choice, csv, integer, window_duration
from aggregator.api.stream_hub import HUB, StreamHub, Subscription, Topic
from aggregator.cancelling import cancel_and_wait
from aggregator.runtime import Runtime, runtime_of

log = logging.getLogger(__name__)

MAX_STOPS, MAX_LINES = 10, 20
#: A stream's board options: its default and largest ``limit`` (the REST board's largest),
#: ``group`` values, and the longest window.
BOARD_LIMIT, MAX_BOARD_LIMIT = 8, 100
GROUPS = ("none", "line_direction")
#: The ``retry:`` a stream starts with: how long a client waits before reconnecting (ms).
RETRY_MS = 3000
#: How often the hub looks for streams whose client has gone. aiohttp does not cancel a
#: handler when its client disconnects, and a waiting stream would otherwise only notice at
#: its next write (a heartbeat, 15 s by default), holding its slot and its topics until then.
DISCONNECT_CHECK_S = 1.0


def _event(name: str, seq: int, payload: Any) -> bytes:
    data = orjson.dumps(payload)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, name.encode(), data)


@dataclass(frozen=True)
class BoardOptions:
    """The options of the REST board (``/v1/stops/{id}/departures``) a stream accepts; the
    query they make, in one canonical spelling so equal options share one topic."""

    limit: int = BOARD_LIMIT
    group: str = "none"
    per_group: int = 2
    duration: str | None = None
    include_cancelled: bool = True
    language: str = "en"

    @classmethod
    def parse(cls, params: QueryParams, language: str) -> BoardOptions:
        duration = params.string("duration")
        if duration is not None:
            duration = str(window_seconds(duration))
        return cls(
            limit=params.integer("limit", BOARD_LIMIT, minimum=1, maximum=MAX_BOARD_LIMIT),
            group=params.choice("group", GROUPS, "none"),
            per_group=params.integer("per_group", 2, minimum=1, maximum=10),
            duration=duration,
            include_cancelled=params.boolean("include_cancelled", True),
            language=language,
        )

    def board_query(self) -> str:
        query: dict[str, str | int] = {"limit": self.limit, "lang": self.language}
        if self.group != "none":
            query |= {"group": self.group, "per_group": self.per_group}
        if self.duration is not None:
            query["duration"] = self.duration
        if not self.include_cancelled:
            query["include_cancelled"] = "false"
        return urlencode(query)


async def stream(request: web.Request) -> web.StreamResponse:
    runtime = runtime_of(request)
    hub = request.app[HUB]
    params = QueryParams(request.query)
    # Each id once: "a,a,a" follows one topic, not three.
    stops = list(dict.fromkeys(params.csv("stops", max_items=MAX_STOPS)))
    lines = list(dict.fromkeys(params.csv("lines", max_items=MAX_LINES)))
    if not stops and not lines:
        raise BadParameter("stops", "follow_something")
    for stop in stops:
        if ":" not in stop:
            raise BadParameter("stops", "not_a_namespaced_id", value=repr(stop))
    options = BoardOptions.parse(params, negotiate_language(request, runtime.languages))
    await _check_known(request, stops, lines)
    client = client_address(request, runtime.config.server.rate_limit)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # tell nginx not to buffer the stream
            **SECURITY_HEADERS,
            **_cors(request, runtime.config.server.cors_origins),
        }
    )
    subscription = hub.join(request, client, _topics(stops, lines, options))
    try:
        await response.prepare(request)
        last_seen = _last_event_id(request.headers.get("Last-Event-ID"), hub.seq)
        await _follow(hub, subscription, response, last_seen)
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    finally:
        hub.leave(subscription)
    return response


async def _follow(
    hub: StreamHub, subscription: Subscription, response: web.StreamResponse, last_seen: int | None
) -> None:
    """Send the stream's topics, then each change, until the client or the server leaves.

    A board is sent whole first, then as deltas from the version this client has; whole again
    when this client missed a version (or reconnected and its ``Last-Event-ID`` is older than
    the board). Each round sends in version order, so an event id a client got means it got
    every event of a lower id: ``Last-Event-ID`` says exactly which versions it holds.
    """
    request, waker = subscription.request, subscription.waker
    heartbeat = hub.runtime.config.server.stream_heartbeat
    await response.write(b"retry: %d\n\n" % RETRY_MS)
    #: By topic path: the version (seq) this client has.
    had: dict[str, int] = {}
    while not hub.closing and not subscription.gone:
        generation = hub.generation
        for topic in subscription.topics:
            await hub.refresh(request, topic)
        for topic in sorted(subscription.topics, key=lambda t: t.seq):
            previous = had.get(topic.path)
            if previous == topic.seq:
                continue
            had[topic.path] = topic.seq
            if previous is None and last_seen is not None and topic.seq <= last_seen:
                continue  # the client had this version before it reconnected
            await response.write(_topic_event(topic, previous))
        last_seen = None
        waker.clear()
        if hub.generation != generation:
            continue  # the data changed while we were sending
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waker.wait(), timeout=heartbeat)
            continue
        await response.write(b": heartbeat\n\n")


def _topic_event(topic: Topic, previous: int | None) -> bytes:
    """The event telling a client that has version ``previous`` of ``topic`` (None: none) its
    current version: a delta when the topic has one from ``previous``, else the whole."""
    fresh = topic.meta
    if topic.is_board and previous == topic.previous_seq and topic.delta is not None:
        delta = {"topic": topic.name, "base": previous, **topic.delta, "meta": fresh}
        return _event("board-delta", topic.seq, delta)
    kind = "board" if topic.is_board else "alerts"
    return _event(kind, topic.seq, {"topic": topic.name, **_wrap(topic.payload), "meta": fresh})


async def _check_known(request: web.Request, stops: list[str], lines: list[str]) -> None:
    """A 404 naming every stop and line that the current transit data does not have.

    Asked of the stop and line endpoints themselves (whichever source types serve them), so
    a stream follows only what exists, and made-up ids never become topics.
    """
    errors: list[dict[str, Any]] = []
    for parameter, code, ids, endpoint in (
        ("stops", "no_stop", stops, "/v1/stops/"),
        ("lines", "no_line", lines, "/v1/lines/"),
    ):
        for value in ids:
            try:
                await internal_get(request, endpoint + quote(value, safe=":"))
            except Unavailable:
                unknown = {"value": repr(value)}
                errors.append({"parameter": parameter, "code": code, "fields": unknown})
    if errors:
        raise ApiError(
            404,
            "Not found",
            "unknown_ids",
            kind="not-found",
            fields={"ids": ", ".join(e["fields"]["value"] for e in errors)},
            extra={"errors": errors},
        )


def _cors(request: web.Request, origins: list[str]) -> dict[str, str]:
    """The CORS middleware cannot add headers to a stream once sent: add them here."""
    origin = request.headers.get("Origin")
    if origin is None or not ("*" in origins or origin in origins):
        return {}
    return {"Access-Control-Allow-Origin": "*" if "*" in origins else origin}


def _topics(stops: list[str], lines: list[str], options: BoardOptions) -> list[tuple[str, str]]:
    """The (name, path) of each topic a stream follows; ids quoted into the paths, and the
    language in every path (a topic is shared: it must not follow one client's headers)."""
    board, lang = options.board_query(), urlencode({"lang": options.language})
    topics = [(f"board:{s}", f"/v1/stops/{quote(s, safe=':')}/departures?{board}") for s in stops]
    topics += [
        (f"alerts:stop:{s}", "/v1/alerts?" + urlencode({"stop": s}) + "&" + lang) for s in stops
    ]
    topics += [
        (f"alerts:line:{line}", "/v1/alerts?" + urlencode({"line": line}) + "&" + lang)
        for line in lines
    ]
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
    server = runtime.config.server
    hub = StreamHub(runtime, server.max_streams, server.max_streams_per_client)
    app[HUB] = hub
    runtime.live.listen(hub.on_snapshot)

    async def watch_disconnects(_app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(DISCONNECT_CHECK_S)
                hub.forget_disconnected()

        task = asyncio.create_task(loop(), name="stream-disconnects")
        yield
        await cancel_and_wait(task)

    async def end_streams(_app: web.Application) -> None:
        hub.close()  # let graceful shutdown finish instead of waiting on open streams

    app.cleanup_ctx.append(watch_disconnects)
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
            Param(
                "limit",
                f"Departures per board (1-{MAX_BOARD_LIMIT}, default {BOARD_LIMIT}).",
                integer(1, MAX_BOARD_LIMIT, default=BOARD_LIMIT),
            ),
            Param(
                "group",
                "none (one list by time) or line_direction (the next per line and direction).",
                choice(GROUPS, default="none"),
            ),
            Param(
                "per_group",
                "Departures per line and direction with group=line_direction (1-10, default 2).",
                integer(1, 10, default=2),
            ),
            Param(
                "duration",
                "The boards' window, between 1m and 24h (default 1h), as on the REST board.",
                window_duration(MAX_WINDOW_S),
            ),
            Param(
                "include_cancelled",
                "false hides departures the realtime feed cancelled (default true).",
                {"type": "boolean"},
            ),
        ],
        response={
            "type": "string",
            "description": "text/event-stream: a retry field, then board, board-delta and "
            "alerts events (see docs/API.md)",
        },
        media_type="text/event-stream",
        enveloped=False,
        errors=[400, 404, 429, 503],
    )

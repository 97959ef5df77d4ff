"""The hub of the open streams of one process: the topics they follow, and their content.

A board is computed once per data change and shared by every stream following it (many
phones follow the same stop); a topic lives only while a stream follows it.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from aggregator.api.internal import Unavailable, internal_get
from aggregator.api.problems import ApiError
from aggregator.api.stream_delta import board_delta, keyed
from aggregator.model import Snapshot
from aggregator.runtime import Runtime

__all__ = ["HUB", "STREAMED_TYPES", "StreamHub", "Subscription", "Topic"]

#: Only these kinds of data change boards and alerts.
STREAMED_TYPES = frozenset({"gtfs", "gtfs_rt"})


@dataclass(eq=False)
class Topic:
    """One topic (a stop's board with its options, a line's alerts): its latest content,
    shared by the streams that follow it, and kept only while one does."""

    name: str
    path: str
    subscribers: int = 0
    seq: int = 0
    digest: str = ""
    payload: Any = None
    #: The freshness of the sources ``payload`` was built from (``meta`` of the REST answer).
    meta: dict[str, Any] = field(default_factory=dict)
    #: The hub generation ``payload`` was computed at (-1: never).
    generation: int = -1
    #: The version before this one and the delta from it to this one, computed once for
    #: every stream that had that version (None: only a full board says the change).
    previous_seq: int = -1
    delta: dict[str, Any] | None = None

    @property
    def is_board(self) -> bool:
        return self.name.startswith("board:")


@dataclass(eq=False)
class Subscription:
    """One open stream: who opened it, what it follows, and how to wake it."""

    request: web.Request
    client: str
    topics: list[Topic]
    waker: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def gone(self) -> bool:
        return self.request.transport is None  # aiohttp drops it when the connection is lost


@dataclass
class StreamHub:
    """Every open stream of this process, woken when streamed data changes.

    Topics exist only while a stream follows them, and a topic's content lives in the topic:
    when the last stream of a topic ends, the topic and its content go, so the hub's memory
    follows the streams open now, never the ids asked for in the past.
    """

    runtime: Runtime
    max_streams: int
    max_streams_per_client: int
    seq: int = 0
    generation: int = 0
    topics: dict[str, Topic] = field(default_factory=dict)
    subscriptions: set[Subscription] = field(default_factory=set)
    #: Open streams by client; a client leaves the dict with its last stream.
    per_client: dict[str, set[Subscription]] = field(default_factory=dict)
    closing: bool = False

    def on_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.source_type in STREAMED_TYPES:
            self.generation += 1
            for subscription in self.subscriptions:
                subscription.waker.set()

    def close(self) -> None:
        self.closing = True
        for subscription in self.subscriptions:
            subscription.waker.set()

    def join(
        self, request: web.Request, client: str, wanted: list[tuple[str, str]]
    ) -> Subscription:
        """A new stream of ``client`` following ``wanted`` (name, path) topics, or a problem
        when the server or this client already has as many streams as allowed.

        Synchronous on purpose: the caps are checked and the stream counted in one step, so
        concurrent requests cannot all pass the check before any of them is counted. A cap
        reached is first checked for streams whose client has already gone, so that a client
        that closes a stream and opens another at once is not refused for the closed one.
        """
        if len(self.subscriptions) >= self.max_streams:
            self._forget_gone(self.subscriptions)
        if len(self.subscriptions) >= self.max_streams:
            raise ApiError(
                503,
                "Too many streams",
                "server_streams_full",
                headers={"Retry-After": "30"},
            )
        if len(self.per_client.get(client, ())) >= self.max_streams_per_client:
            self._forget_gone(self.per_client[client])
        if len(self.per_client.get(client, ())) >= self.max_streams_per_client:
            raise ApiError(
                429,
                "Too many streams",
                "client_streams_full",
                fields={"maximum": self.max_streams_per_client},
                kind="too-many-streams",
                extra={"max_streams_per_client": self.max_streams_per_client},
            )
        topics = []
        for name, path in wanted:
            # Keyed by path: two streams of one stop with different board options (limit,
            # group, language) follow two topics.
            topic = self.topics.get(path)
            if topic is None:
                topic = self.topics[path] = Topic(name, path)
            topic.subscribers += 1
            topics.append(topic)
        subscription = Subscription(request, client, topics)
        self.subscriptions.add(subscription)
        self.per_client.setdefault(client, set()).add(subscription)
        return subscription

    def leave(self, subscription: Subscription) -> None:
        """The stream ended: its topics and its client's count go when it was their last."""
        if subscription not in self.subscriptions:
            return
        self.subscriptions.discard(subscription)
        for topic in subscription.topics:
            topic.subscribers -= 1
            if topic.subscribers == 0:
                del self.topics[topic.path]
        mine = self.per_client[subscription.client]
        mine.discard(subscription)
        if not mine:
            del self.per_client[subscription.client]

    def forget_disconnected(self) -> None:
        """Let go of the streams whose client has gone, and wake them so that they end now."""
        self._forget_gone(self.subscriptions)

    def _forget_gone(self, subscriptions: set[Subscription]) -> None:
        for subscription in [s for s in subscriptions if s.gone]:
            self.leave(subscription)  # its handler's own leave() will find nothing left to do
            subscription.waker.set()

    async def refresh(self, request: web.Request, topic: Topic) -> Topic:
        """``topic`` at the current data, computed once per data change whoever asks; a new
        sequence number only when its content changed."""
        if topic.generation == self.generation:
            return topic
        generation = self.generation
        sources: list[str] = []
        try:
            result = await internal_get(request, topic.path)
            payload, sources = result.data, list(result.sources)
        except Unavailable as exc:
            payload = {"unavailable": str(exc)}
        if topic.is_board:
            payload = keyed(payload)
        digest = hashlib.blake2b(orjson.dumps(payload), digest_size=12).hexdigest()
        if topic.digest != digest:
            self.seq += 1
            if topic.is_board and topic.payload is not None:
                topic.previous_seq, topic.delta = topic.seq, board_delta(topic.payload, payload)
            topic.seq, topic.digest, topic.payload = self.seq, digest, payload
            topic.meta = _freshness(self.runtime, sources)
        topic.generation = generation
        return topic


HUB = web.AppKey("beffroi.stream_hub", StreamHub)


def _freshness(runtime: Runtime, sources: list[str]) -> dict[str, Any]:
    """``meta`` as the REST answer has it: when built, and each source's state and age."""
    now = datetime.now(UTC)
    fresh = {s: f for s in sources if (f := runtime.freshness(s, now)) is not None}
    return {"generated_at": now.isoformat(timespec="seconds"), "sources": fresh}

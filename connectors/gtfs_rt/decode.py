"""Decode GTFS-realtime protobuf bytes into a ``FeedMessage`` and read its header.

One URL may carry trip updates, vehicle positions and alerts mixed in one message (Lille's
Ilévia feed does), so nothing here assumes a single entity type.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as pb

FeedMessage = pb.FeedMessage
Incrementality = Literal["full_dataset", "differential"]

#: POSIX seconds above this are taken as milliseconds (year 5138 in seconds): some producers
#: sent ms and Google disabled their feed (SoundTransit/soundtransit-rds#48).
_MS_THRESHOLD = 100_000_000_000


class FeedDecodeError(ValueError):
    """The body is not a GTFS-realtime FeedMessage (corrupt, truncated, HTML error page...)."""


@dataclass(frozen=True, slots=True)
class FeedHeader:
    """What a FeedMessage says about itself."""

    version: str
    incrementality: Incrementality
    #: POSIX seconds, or None when the producer left it out (or sent 0).
    timestamp: int | None
    feed_version: str | None


def posix(value: int) -> int | None:
    """A producer timestamp as POSIX seconds; 0 means absent, milliseconds are scaled down."""
    if value <= 0:
        return None
    return value // 1000 if value > _MS_THRESHOLD else value


def decode_feed(data: bytes) -> pb.FeedMessage:
    """Parse protobuf bytes; raises :class:`FeedDecodeError` with a readable reason."""
    if not data:
        raise FeedDecodeError("empty body")
    if data[:1] in (b"<", b"{"):
        # protobuf would sometimes "parse" text as a garbage message; say what it really is.
        kind = "HTML/XML" if data[:1] == b"<" else "JSON"
        raise FeedDecodeError(f"body looks like {kind}, not a protobuf FeedMessage")
    message = pb.FeedMessage()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise FeedDecodeError(f"not a GTFS-realtime FeedMessage: {exc}") from exc
    if not message.HasField("header") or not message.header.gtfs_realtime_version:
        # The header and its version are required; random bytes that happen to parse lack them.
        raise FeedDecodeError("not a GTFS-realtime FeedMessage: header/version missing")
    return message


def read_header(message: pb.FeedMessage) -> FeedHeader:
    """The header fields, normalised (timestamp in seconds or None)."""
    h = message.header
    differential = h.incrementality == pb.FeedHeader.DIFFERENTIAL
    return FeedHeader(
        version=h.gtfs_realtime_version,
        incrementality="differential" if differential else "full_dataset",
        timestamp=posix(h.timestamp) if h.HasField("timestamp") else None,
        feed_version=h.feed_version or None if h.HasField("feed_version") else None,
    )


def entity_kinds(message: pb.FeedMessage) -> Counter[str]:
    """How many entities of each kind the message holds (``trip_update``, ``vehicle``...)."""
    kinds: Counter[str] = Counter()
    for entity in message.entity:
        if entity.is_deleted:
            kinds["deleted"] += 1
        for kind in ("trip_update", "vehicle", "alert"):
            if entity.HasField(kind):
                kinds[kind] += 1
    return kinds

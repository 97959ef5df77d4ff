"""Decode GTFS-realtime protobuf bytes into a ``FeedMessage`` and read its header.

One URL may carry trip updates, vehicle positions and alerts mixed in one message (Lille's
Ilévia feed does), so nothing here assumes a single entity type.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as pb

FeedMessage = pb.FeedMessage
Incrementality = Literal["full_dataset", "differential"]
#: How a source's bodies are written: protobuf (the spec), protobuf's JSON mapping, or either.
BodyFormat = Literal["auto", "protobuf", "json"]

#: POSIX seconds above this are taken as milliseconds (year 5138 in seconds): some producers
#: sent ms and Google disabled their feed (SoundTransit/soundtransit-rds#48).
_MS_THRESHOLD = 100_000_000_000
#: Bodies above this are parsed a slice at a time (see :func:`_slice_ends`).
SLICE_BYTES = 256 * 1024


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
        cuts = _slice_ends(data) if len(data) > SLICE_BYTES else None
        if cuts is None:
            message.ParseFromString(data)
        else:
            view, start = memoryview(data), 0
            for end in cuts:
                # Merging the slices one by one is, by protobuf's own definition, parsing
                # their concatenation; between two slices a worker thread lets the GIL go.
                message.MergeFromString(view[start:end])
                start = end
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise FeedDecodeError(f"not a GTFS-realtime FeedMessage: {exc}") from exc
    if not message.HasField("header") or not message.header.gtfs_realtime_version:
        # The header and its version are required; random bytes that happen to parse lack them.
        raise FeedDecodeError("not a GTFS-realtime FeedMessage: header/version missing")
    return message


def decode_body(
    data: bytes, body_format: BodyFormat = "auto", *, max_bytes: int = 64 * 1024 * 1024
) -> tuple[pb.FeedMessage, bytes]:
    """A fetched body → (FeedMessage, its protobuf bytes); raises :class:`FeedDecodeError`.

    Gzip bodies (some producers and archives serve ``.pb.gz`` without Content-Encoding) are
    inflated up to ``max_bytes``. ``json``, or ``auto`` on a body that reads as a JSON object,
    is the protobuf JSON mapping (enum names as strings) read by protobuf's own parser; the
    message is then serialised so the rest of the apply reads it from bytes like any other.
    """
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, max_bytes)
    if body_format == "json" or (body_format == "auto" and data.lstrip()[:1] == b"{"):
        message = pb.FeedMessage()
        try:
            json_format.Parse(data, message, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
            raise FeedDecodeError(f"not a GTFS-realtime FeedMessage in JSON: {exc}") from None
        if not message.HasField("header") or not message.header.gtfs_realtime_version:
            raise FeedDecodeError("not a GTFS-realtime FeedMessage: header/version missing")
        return message, message.SerializeToString()
    return decode_feed(data), data


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise FeedDecodeError(f"the gzip body cannot be inflated: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise FeedDecodeError(f"the gzip body inflates past the {max_bytes:,}-byte cap")
    if not inflater.eof:
        raise FeedDecodeError("the gzip body is truncated")
    return out


def _slice_ends(data: bytes) -> list[int] | None:
    """Where to cut ``data`` into slices of whole top-level fields, about
    :data:`SLICE_BYTES` each; None when the bytes are not plain protobuf fields (then one
    ``ParseFromString`` says what is wrong).

    Why: the apply runs in a worker thread while the event loop answers boards, and one
    ``ParseFromString`` holds the GIL from start to end: 15-50 ms for a 4 MB feed here, a
    pause every request would see. Only the tags and lengths of the top-level fields
    (entities, a few thousand) are read, never their content.
    """
    ends: list[int] = []
    pos, size, mark = 0, len(data), SLICE_BYTES
    try:
        while pos < size:
            tag, pos = _varint(data, pos)
            wire_type = tag & 7
            if wire_type == 2:
                length, pos = _varint(data, pos)
                pos += length
            elif wire_type == 0:
                pos = _varint(data, pos)[1]
            elif wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
            else:
                return None  # groups, or not a field at all
            if pos >= mark:
                ends.append(min(pos, size))
                mark = pos + SLICE_BYTES
    except IndexError:
        return None  # a varint runs off the end
    if pos > size:
        return None  # the last field is truncated
    if not ends or ends[-1] != size:
        ends.append(size)
    return ends


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (IndexError if it does not end)."""
    byte = data[pos]
    if byte < 0x80:  # tags, and lengths under 128: most of them
        return byte, pos + 1
    value, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + 1
        shift += 7


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

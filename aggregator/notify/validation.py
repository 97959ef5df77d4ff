"""What a subscription request may contain, checked field by field: every refusal is a 400
problem naming the field (``target.keys.p256dh``, ``topics.lines[3]``) and why.

Every field has a byte budget; topic ids must name a line or stop the live data knows; a push
endpoint must be https and resolve only to public addresses (else we would be a way into the
operator's network), unless the operator allows private ones for a local push service.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from aggregator.api.messages import MESSAGE_LANGUAGES
from aggregator.api.problems import BadParameter
from aggregator.notify.topics import EXTRA_TOPIC_FIELDS, follows_extra
from aggregator.origins import AddressClassifier

MAX_ENDPOINT_BYTES = 1024
MAX_ID_BYTES = 200
MAX_CATEGORY_BYTES = 100
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
TARGET_TYPES = ("webpush", "fcm")
MAX_FCM_TOKEN_BYTES = 1024
_FCM_TOKEN = re.compile(r"[A-Za-z0-9_:.-]+")
TOPIC_KINDS = ("lines", "stops")
#: The most characters of a client's value a problem quotes back.
_SHOWN_CHARS = 60


@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    endpoint: str
    p256dh: str
    auth: str


def shown(value: Any) -> str:
    """A value the client sent, as a problem quotes it (as the query parameters' problems
    do), cut to a bounded length: a body may hold a long one."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadParameter(field, "not_an_object")
    return value


def _known_keys(value: Mapping[str, Any], field: str, known: Sequence[str]) -> None:
    for key in value:
        if key not in known:
            where = f"{field}.{key}" if field else str(key)[:MAX_ID_BYTES]
            raise BadParameter(where, "unknown_body_field", accepted=", ".join(known))


def _string(value: Any, field: str, max_bytes: int) -> str:
    if not isinstance(value, str) or not value:
        raise BadParameter(field, "not_a_string")
    if len(value.encode()) > max_bytes:
        raise BadParameter(field, "too_many_bytes", maximum=max_bytes)
    return value


def b64url_bytes(value: Any, field: str, size: int) -> bytes:
    """``value`` decoded from base64url (padding optional); exactly ``size`` bytes."""
    text = _string(value, field, 4 * size)
    if not _B64URL.fullmatch(text):
        raise BadParameter(field, "not_base64url")
    try:
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise BadParameter(field, "base64url_truncated") from None
    if len(raw) != size:
        raise BadParameter(field, "wrong_byte_count", expected=size, actual=len(raw))
    return raw


def check_keys(keys: Any, field: str) -> tuple[str, str]:
    keys = _object(keys, field)
    _known_keys(keys, field, ("p256dh", "auth"))
    p256dh = b64url_bytes(keys.get("p256dh"), f"{field}.p256dh", 65)
    try:  # an uncompressed point (0x04 || x || y) that lies on P-256
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise BadParameter(f"{field}.p256dh", "not_a_p256_point") from None
    b64url_bytes(keys.get("auth"), f"{field}.auth", 16)
    return str(keys["p256dh"]).rstrip("="), str(keys["auth"]).rstrip("=")


async def check_endpoint(value: Any, field: str, is_public: AddressClassifier | None) -> str:
    """An https URL whose host resolves only to public addresses (``is_public`` None: any
    address and plain http are accepted, for a local push service in tests)."""
    endpoint = _string(value, field, MAX_ENDPOINT_BYTES)
    try:
        url = httpx.URL(endpoint)
    except (httpx.InvalidURL, ValueError):
        raise BadParameter(field, "not_a_url") from None
    allowed = ("https",) if is_public is not None else ("https", "http")
    if url.scheme not in allowed or not url.host:
        raise BadParameter(field, "not_https")
    if url.userinfo:
        raise BadParameter(field, "url_with_credentials")
    if is_public is None:
        return endpoint
    port = url.port or 443
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            url.host, port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        raise BadParameter(field, "host_unresolved", host=repr(url.host)) from None
    for *_, address in found:
        if not is_public(str(address[0]), port):
            raise BadParameter(field, "host_not_public")
    return endpoint


async def check_target(
    value: Any, is_public: AddressClassifier | None, *, fcm: bool = False
) -> Target:
    target = _object(value, "target")
    kind = target.get("type", "webpush")
    if kind not in TARGET_TYPES:
        raise BadParameter(
            "target.type", "not_one_of", value=shown(kind), choices=", ".join(TARGET_TYPES)
        )
    if kind == "fcm":
        if not fcm:
            raise BadParameter("target.type", "fcm_not_configured")
        _known_keys(target, "target", ("type", "token"))
        token = _string(target.get("token"), "target.token", MAX_FCM_TOKEN_BYTES)
        if not _FCM_TOKEN.fullmatch(token):
            raise BadParameter("target.token", "not_an_fcm_token")
        return Target(kind, token, "", "")
    _known_keys(target, "target", ("type", "endpoint", "keys"))
    endpoint = await check_endpoint(target.get("endpoint"), "target.endpoint", is_public)
    p256dh, auth = check_keys(target.get("keys"), "target.keys")
    return Target(kind, endpoint, p256dh, auth)


def check_lang(value: Any) -> str:
    if value not in MESSAGE_LANGUAGES:
        raise BadParameter(
            "lang", "not_one_of", value=shown(value), choices=", ".join(MESSAGE_LANGUAGES)
        )
    return str(value)


def check_topics(value: Any, max_topics: int, exists: Any, extra: Any = None) -> dict[str, Any]:
    """Topics as stored: ``{lines, stops, agenda, categories}``; ``exists(kind, id)`` says
    whether a line or stop id is one the live data knows. ``extra(topics, budget)`` checks
    the news and waste topics (:mod:`aggregator.notify.topics`) within the topics left."""
    topics = _object(value, "topics")
    _known_keys(topics, "topics", ("lines", "stops", "agenda", "categories", *EXTRA_TOPIC_FIELDS))
    out: dict[str, Any] = {"lines": [], "stops": [], "agenda": False, "categories": []}
    total = 0
    for key, kind in (("lines", "line"), ("stops", "stop"), ("categories", "category")):
        items = topics.get(key, [])
        if not isinstance(items, list):
            raise BadParameter(f"topics.{key}", "not_a_string_array")
        total += len(items)
        if total > max_topics:
            raise BadParameter(f"topics.{key}", "too_many_topics", maximum=max_topics)
        seen: list[str] = []
        for index, item in enumerate(items):
            field = f"topics.{key}[{index}]"
            budget = MAX_CATEGORY_BYTES if kind == "category" else MAX_ID_BYTES
            text = _string(item, field, budget)
            if kind == "line" and not exists(kind, text):
                raise BadParameter(field, "not_a_loaded_line", value=repr(text))
            if kind == "stop" and not exists(kind, text):
                raise BadParameter(field, "not_a_loaded_stop", value=repr(text))
            if text not in seen:
                seen.append(text)
        out[key] = seen
    agenda = topics.get("agenda", False)
    if not isinstance(agenda, bool):
        raise BadParameter("topics.agenda", "not_a_boolean", value=shown(agenda))
    out["agenda"] = agenda
    if out["categories"] and not agenda:
        raise BadParameter("topics.categories", "categories_need_agenda")
    # News and waste topics (aggregator/notify/topics.py), within what is left of the budget.
    news = topics.get("news")
    if isinstance(news, list) and total + len(news) > max_topics:
        raise BadParameter("topics.news", "too_many_topics", maximum=max_topics)
    if extra is not None:
        out.update(extra(topics, max_topics - total))
    if not (out["lines"] or out["stops"] or agenda or follows_extra(out)):
        raise BadParameter("topics", "follow_a_topic")
    return out

"""``/v1/subscriptions``: follow lines, stops and the agenda by Web Push, with no account.

Creating a subscription answers its id and a secret; reading, changing and deleting it need
``Authorization: Bearer <secret>``. A wrong secret is answered exactly as an unknown id (404),
so the API tells nobody which ids exist. Only a hash of the secret is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from aggregator.api import schemas as s
from aggregator.api.i18n import negotiate_language
from aggregator.api.messages import MESSAGE_LANGUAGES
from aggregator.api.problems import ApiError, BadParameter, NotFound
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, path_param
from aggregator.notify.storage import Subscription
from aggregator.notify.topics import (
    MAX_NEWS_CATEGORY_CHARS,
    MAX_NEWS_SOURCES,
    MAX_SOURCE_ID_CHARS,
    check_extra_topics,
    waste_topic_keys,
)
from aggregator.notify.validation import (
    MAX_CATEGORY_BYTES,
    MAX_ENDPOINT_BYTES,
    MAX_FCM_TOKEN_BYTES,
    MAX_ID_BYTES,
    TARGET_TYPES,
    _known_keys,
    check_lang,
    check_target,
    check_topics,
)
from aggregator.origins import is_public_address
from aggregator.runtime import Runtime, runtime_of

#: The largest request body a subscription takes (50 topics of 200 bytes fit with room).
MAX_BODY_BYTES = 32 * 1024
#: Compared against when the id is unknown, so both refusals cost the same.
_NO_SECRET = hashlib.sha256(b"no such subscription").digest()


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _notifier(runtime: Runtime) -> Any:
    notifier = runtime.notifier
    if notifier is None:
        # As the admin API when it has no token: the route exists, this server refuses it.
        raise ApiError(403, "Forbidden", "notifications_disabled")
    return notifier


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadParameter("body", "body_too_large", maximum=MAX_BODY_BYTES)
    # Whole (a single read() may return part of it); aiohttp refuses past client_max_size.
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise BadParameter("body", "body_too_large", maximum=MAX_BODY_BYTES)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadParameter("body", "body_not_json") from None
    if not isinstance(body, dict):
        raise BadParameter("body", "not_an_object")
    return body


def _exists(runtime: Runtime) -> Any:
    def exists(kind: str, value: str) -> bool:
        feed, sep, native = value.partition(":")
        snapshot = runtime.live.snapshot(feed) if sep and native else None
        if snapshot is None:
            return False
        connector_type = runtime.connector_types.get(snapshot.source_type)
        return connector_type is not None and connector_type.has_topic(snapshot, kind, native)

    return exists


def _extra_topics(runtime: Runtime) -> Any:
    """The check of the news and waste topics against the live data (topics.py)."""

    def check(topics: Any, budget: int) -> dict[str, Any]:
        return check_extra_topics(topics, runtime, budget)

    return check


def _view(sub: Subscription, idle_expiry: float) -> dict[str, Any]:
    return {
        "id": sub.id,
        "target": {"type": sub.kind, "endpoint": sub.endpoint},
        "topics": sub.topics,
        "lang": sub.lang,
        "created_at": _instant(sub.created_at),
        "expires_at": _instant(sub.used_at + idle_expiry),
    }


def _instant(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _asked_language(request: web.Request, runtime: Runtime) -> str:
    """The language of a subscription whose body names none: the one the request asks for
    (``?lang=``, ``Accept-Language``) among those notifications are written in, else the
    deployment's default when it is one of them."""
    supported = [tag for tag in runtime.languages if tag in MESSAGE_LANGUAGES]
    supported += [tag for tag in MESSAGE_LANGUAGES if tag not in supported]
    return negotiate_language(request, supported)


async def create_subscription(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    notifier = _notifier(runtime)
    config = runtime.config.notifications
    body = await _body(request)
    _known_keys(body, "", ("target", "topics", "lang"))
    classifier = None if config.allow_private_push_endpoints else is_public_address
    target = await check_target(body.get("target"), classifier, fcm=config.fcm is not None)
    topics = check_topics(
        body.get("topics"), config.max_topics, _exists(runtime), _extra_topics(runtime)
    )
    lang = check_lang(body["lang"]) if "lang" in body else _asked_language(request, runtime)
    secret = secrets.token_urlsafe(32)
    now = time.time()
    sub = Subscription(
        id=secrets.token_urlsafe(16),
        secret_hash=secret_hash(secret),
        kind=target.kind,
        endpoint=target.endpoint,
        p256dh=target.p256dh,
        auth=target.auth,
        lang=lang,
        topics=topics,
        created_at=now,
        used_at=now,
    )
    await notifier.store.add(sub)
    if waste_topic_keys(topics):
        notifier.topics_changed()  # a waste reminder due this evening reaches it too
    data = {**_view(sub, config.idle_expiry), "secret": secret}
    return ApiResult(data, status=201, cacheable=False)


async def _authorised(request: web.Request) -> tuple[Runtime, Any, Subscription]:
    runtime = runtime_of(request)
    notifier = _notifier(runtime)
    sub_id = request.match_info["subscription_id"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    sub = await notifier.store.get(sub_id) if len(sub_id) <= MAX_ID_BYTES else None
    expected = sub.secret_hash if sub is not None else _NO_SECRET
    matches = hmac.compare_digest(secret_hash(given), expected)
    if sub is None or scheme.lower() != "bearer" or not matches:
        # The same answer for an unknown id and a wrong secret: no oracle of ids.
        raise NotFound("no_subscription")
    return runtime, notifier, sub


async def get_subscription(request: web.Request) -> ApiResult:
    runtime, notifier, sub = await _authorised(request)
    now = time.time()
    await notifier.store.touch(sub.id, now)
    sub = dataclasses.replace(sub, used_at=now)
    return ApiResult(_view(sub, runtime.config.notifications.idle_expiry), cacheable=False)


async def update_subscription(request: web.Request) -> ApiResult:
    runtime, notifier, sub = await _authorised(request)
    config = runtime.config.notifications
    body = await _body(request)
    _known_keys(body, "", ("topics", "lang"))
    topics = (
        check_topics(body["topics"], config.max_topics, _exists(runtime), _extra_topics(runtime))
        if "topics" in body
        else sub.topics
    )
    lang = check_lang(body["lang"]) if "lang" in body else sub.lang
    now = time.time()
    await notifier.store.update(sub.id, lang=lang, topics=topics, used_at=now)
    if waste_topic_keys(topics) != waste_topic_keys(sub.topics):
        notifier.topics_changed()  # followed zones changed: this evening's reminder too
    updated = await notifier.store.get(sub.id)
    assert updated is not None
    return ApiResult(_view(updated, config.idle_expiry), cacheable=False)


async def delete_subscription(request: web.Request) -> web.Response:
    _, notifier, sub = await _authorised(request)
    await notifier.store.delete(sub.id)
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


_ID = {"type": "string", "maxLength": MAX_ID_BYTES}
_TOPICS = s.obj(
    {
        "lines": s.array_of({**_ID, "description": "a line id, 'feed:native_id'"}),
        "stops": s.array_of({**_ID, "description": "a stop id, 'feed:native_id'"}),
        "agenda": {"type": "boolean", "description": "the local authority's agenda"},
        "categories": s.array_of(
            {"type": "string", "maxLength": MAX_CATEGORY_BYTES},
            description="only these agenda categories (keys of /v1/categories)",
        ),
        # News and waste topics (aggregator/notify/topics.py).
        "news": s.array_of(
            {"type": "string", "minLength": 1, "maxLength": MAX_NEWS_CATEGORY_CHARS},
            description="news categories (as in /v1/news items' categories; case and accents "
            "ignored, answered folded): a new item in one of them is pushed",
        ),
        "news_sources": s.array_of(
            {"type": "string", "minLength": 1, "maxLength": MAX_SOURCE_ID_CHARS},
            maxItems=MAX_NEWS_SOURCES,
            description="only news of these news sources; alone, every new item of them",
        ),
        "waste": s.nullable(
            s.obj(
                {
                    "lat": s.LATITUDE,
                    "lon": s.LONGITUDE,
                    "zones": s.array_of(
                        {"type": "string", "description": "source:zone id"},
                        readOnly=True,
                        description="the collection zones covering the point, looked up when "
                        "the subscription was made or changed (answered, not sent)",
                    ),
                },
                ["lat", "lon"],
                title="WastePoint",
                description="remind the evening before each collection at this point (the "
                "point must lie in a collection zone, see /v1/waste/collections)",
            )
        ),
    },
    title="SubscriptionTopics",
)
_KEYS = s.obj(
    {
        "p256dh": {"type": "string", "description": "base64url P-256 point, 65 bytes"},
        "auth": {"type": "string", "description": "base64url, 16 bytes"},
    },
    ["p256dh", "auth"],
    title="WebPushKeys",
)
_LANG = s.enum(
    ["en", "fr"],
    "the language notifications are written in; when a new subscription names none, the one "
    "the request asks for (?lang=, Accept-Language), else the deployment's default language",
)


def register_subscription_routes(router: ApiRouter) -> None:
    topics = router.add_schema("SubscriptionTopics", _TOPICS)
    target_in = router.add_schema(
        "PushTarget",
        s.obj(
            {
                "type": s.enum(TARGET_TYPES),
                "endpoint": {"type": "string", "maxLength": MAX_ENDPOINT_BYTES},
                "keys": router.add_schema("WebPushKeys", _KEYS),
                "token": {"type": "string", "maxLength": MAX_FCM_TOKEN_BYTES},
            },
            title="PushTarget",
            description="webpush (the default type): what PushSubscription.toJSON() gives in a "
            "browser (endpoint and keys); fcm: an FCM registration token (token), when the "
            "server has FCM configured",
        ),
    )
    view_properties = {
        "id": {"type": "string"},
        "target": s.obj(
            {"type": s.enum(TARGET_TYPES), "endpoint": {"type": "string"}},
            ["type", "endpoint"],
            title="PushTargetView",
        ),
        "topics": topics,
        "lang": _LANG,
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {
            "type": "string",
            "format": "date-time",
            "description": "when it is deleted unless read or changed before",
        },
    }
    view = router.add_schema(
        "Subscription", s.obj(view_properties, list(view_properties), title="Subscription")
    )
    created = router.add_schema(
        "NewSubscription",
        s.extend(
            {"properties": view_properties, "required": list(view_properties)},
            {"secret": {"type": "string", "description": "shown once; keep it"}},
            ["secret"],
            title="NewSubscription",
        ),
    )
    # What the four operations share; the three on one subscription also share its path,
    # its secret and their documentation of it.
    common: dict[str, Any] = {"tags": ["notifications"], "errors": [400, 403, 404]}
    by_id: dict[str, Any] = {
        **common,
        "description": "Needs Authorization: Bearer <secret>; a wrong secret is a 404.",
        "security": "subscriptionSecret",
        "params": [path_param("subscription_id", "The id answered at creation.")],
    }
    path = "/v1/subscriptions/{subscription_id}"
    router.post(
        "/v1/subscriptions",
        create_subscription,
        summary="Follow lines, stops, the agenda, news or bin days by push (answers an id "
        "and a secret)",
        body=s.obj(
            {"target": target_in, "topics": topics, "lang": _LANG},
            ["target", "topics"],
            title="SubscriptionRequest",
        ),
        response=created,
        success=201,
        **common,
    )
    router.get(
        path,
        get_subscription,
        summary="A subscription (reading it keeps it from expiring)",
        response=view,
        **by_id,
    )
    router.add(
        "PATCH",
        path,
        update_subscription,
        summary="Change a subscription's topics or language",
        body=s.obj({"topics": topics, "lang": _LANG}, title="SubscriptionChange"),
        response=view,
        **by_id,
    )
    router.add(
        "DELETE",
        path,
        delete_subscription,
        summary="Stop notifications: the subscription and what was queued for it are deleted",
        success=204,
        **by_id,
    )

"""Web Push delivery (RFC 8030), payloads encrypted per RFC 8291 (aes128gcm) and signed with
VAPID (RFC 8292), all done by pywebpush / py-vapid / http-ece.

pywebpush 2 sends through aiohttp (``webpush_async``): one shared session whose connector caps
the connections, so a slow push service holds sockets, never threads or the event loop. The
VAPID signature is made once per push service origin and reused until near its expiry (an
ECDSA signature per message would be most of the CPU of a large fan-out).
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async

from aggregator.fetch import retry_after_seconds
from aggregator.notify.storage import Subscription

log = logging.getLogger(__name__)

Verdict = Literal["sent", "gone", "retry", "failed"]


@dataclass(frozen=True, slots=True)
class PushOutcome:
    verdict: Verdict
    status: int | None = None
    #: Seconds the push service asked us to wait (Retry-After), when it did.
    retry_after: float | None = None


def new_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair: (private key, base64url raw scalar, for the config;
    application server key, base64url uncompressed point, for the browsers)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64(private), _b64(public)


def application_server_key(private_key: str) -> str:
    """The public half of a configured VAPID private key, as browsers take it."""
    vapid = Vapid02.from_raw(private_key.encode())
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64(public)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


#: VAPID tokens live this long (RFC 8292 allows up to 24 h); renewed an hour before the end.
VAPID_LIFETIME_S = 12 * 3600
VAPID_RENEW_S = 3600


class WebPushSender:
    """Sends one encrypted payload to one subscription; at most ``concurrency`` connections."""

    def __init__(
        self, private_key: str, subject: str, *, ttl: int, timeout: float, concurrency: int
    ) -> None:
        self._vapid = Vapid02.from_raw(private_key.encode())
        self._subject = subject
        self._ttl = ttl
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._signed: dict[str, tuple[float, dict[str, str]]] = {}

    def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._signed.get(audience)
        if cached is None or cached[0] - now < VAPID_RENEW_S:
            expires = int(now) + VAPID_LIFETIME_S
            claims = {"sub": self._subject, "aud": audience, "exp": expires}
            cached = (expires, dict(self._vapid.sign(claims)))
            if len(self._signed) > 10_000:  # audiences are push services: a handful
                self._signed.clear()
            self._signed[audience] = cached
        return cached[1]

    async def send(
        self, sub: Subscription, payload: bytes, *, topic: str, urgency: str
    ) -> PushOutcome:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._concurrency)
            self._session = aiohttp.ClientSession(connector=connector)
        info: dict[str, Any] = {
            "endpoint": sub.endpoint,
            "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
        }
        headers = {**self._vapid_headers(sub.endpoint), "Urgency": urgency, "Topic": topic}
        try:
            response = await webpush_async(
                info,
                data=payload,  # type: ignore[arg-type]  # bytes are encrypted as they are
                ttl=self._ttl,
                headers=headers,  # type: ignore[arg-type]
                timeout=self._timeout,  # type: ignore[arg-type]
                aiohttp_session=self._session,
            )
        except WebPushException as exc:
            answer = exc.response
            if answer is None:
                return PushOutcome("failed")
            return judge(answer.status, answer.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError):
            return PushOutcome("retry")  # no answer at all: refused, reset, timed out
        return judge(response.status, response.headers.get("Retry-After"))  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def judge(status: int, retry_after: str | None) -> PushOutcome:
    """What a push service's answer means for the subscription and the notification."""
    if 200 <= status < 300:
        return PushOutcome("sent", status)
    if status in (404, 410):  # the subscription expired or was revoked (RFC 8030 §7.3)
        return PushOutcome("gone", status)
    if status == 429 or status >= 500:
        return PushOutcome("retry", status, retry_after_seconds(retry_after))
    return PushOutcome("failed", status)

"""A local Web Push service, for the notification tests: a real aiohttp server on 127.0.0.1
that does what a browser vendor's push service and the browser do with a push message.

It is independent of the sender's code: it checks the VAPID token's ES256 signature and
claims with py-vapid's JWT decoder (RFC 8292), and decrypts the aes128gcm body (RFC 8188 /
RFC 8291) with http-ece and the private key of the fake browser's subscription, which it
creates itself. ``/status/<code>`` endpoints answer that status instead (410: subscription
gone; 429/503 with a Retry-After). The real push services are not reachable from the tests.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from local_server import LocalServer
from py_vapid.jwt import decode as decode_jwt


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Browser:
    """A fake browser's push subscription: its own P-256 key pair and auth secret."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def target(self, endpoint: str, **keys: str) -> dict[str, Any]:
        """The subscription's ``target``, as PushSubscription.toJSON() gives it; ``keys``
        replace its keys (to send bad ones)."""
        return {
            "type": "webpush",
            "endpoint": endpoint,
            "keys": {"p256dh": self.p256dh, "auth": b64(self.auth), **keys},
        }


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    claims: dict[str, Any]
    message: dict[str, Any]


class PushService(LocalServer):
    def __init__(self, vapid_public_key: str) -> None:
        super().__init__()
        self.vapid_public_key = vapid_public_key
        self.browsers: dict[str, Browser] = {}
        self.received: list[Received] = []
        self.refused: list[tuple[str, int]] = []
        #: path → statuses to answer before accepting (a 429 then a 201, say).
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}

    def subscribe(self, name: str) -> tuple[str, Browser]:
        browser = Browser()
        self.browsers[f"/push/{name}"] = browser
        return self.url(f"/push/{name}"), browser

    def target(self, name: str) -> dict[str, Any]:
        endpoint, browser = self.subscribe(name)
        return browser.target(endpoint)

    def messages(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/push/{name}"]

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/push/{name}", self._push)

    async def _push(self, request: web.Request) -> web.Response:
        body = await request.read()
        script = self.script.get(request.path)
        if script:
            status, headers = script.pop(0)
            self.refused.append((request.path, status))
            return web.Response(status=status, headers=headers)
        browser = self.browsers.get(request.path)
        if browser is None:
            self.refused.append((request.path, 410))
            return web.Response(status=410, text="no such subscription")
        # RFC 8292: Authorization: vapid t=<JWT>, k=<application server key>.
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        fields = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if scheme.lower() != "vapid" or fields.get("k") != self.vapid_public_key:
            return web.Response(status=401, text="missing or unknown VAPID key")
        claims = decode_jwt(fields["t"], fields["k"])  # raises on a bad signature
        origin = self.base_url
        if claims.get("aud") != origin or int(claims.get("exp", 0)) <= time.time():
            return web.Response(status=403, text=f"bad VAPID claims {claims}")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return web.Response(status=415, text="not aes128gcm")
        plain = http_ece.decrypt(
            body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
        )
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.received.append(Received(request.path, headers, claims, json.loads(plain)))
        return web.Response(status=201, headers={"Location": f"{origin}/message/1"})

"""Firebase Cloud Messaging delivery through the HTTP v1 API, for app registrations (Android,
iOS) that are not Web Push subscriptions.

The OAuth access token comes from the service account by google-auth (a JWT assertion signed
with the account's key, exchanged at its token URI); it is cached until shortly before it
expires. google-auth's transport is blocking ``requests``: the refresh runs on a worker thread,
once an hour. The sends go through one aiohttp session, at most ``concurrency`` at a time.
Both base URLs are configurable, which the tests use to talk to local fakes of Google's token
and send endpoints (the real ones are unreachable from them).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC
from typing import Any

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import service_account

from aggregator.config.notifications import FcmConfig
from aggregator.notify.storage import Subscription
from aggregator.notify.webpush import PushOutcome, judge

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
#: Refresh the access token this long before it expires.
TOKEN_MARGIN_S = 300


class FcmSender:
    def __init__(self, config: FcmConfig, *, ttl: int, timeout: float, concurrency: int) -> None:
        info = json.loads(config.service_account)
        if config.token_url:
            info["token_uri"] = config.token_url
        self._credentials = service_account.Credentials.from_service_account_info(
            info, scopes=[SCOPE]
        )
        project = config.project_id or info.get("project_id")
        self._url = f"{config.base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        self._ttl = ttl
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._token_lock = asyncio.Lock()

    async def _token(self, *, renew: bool = False) -> str:
        async with self._token_lock:
            credentials = self._credentials
            expiry = 0.0
            if credentials.expiry is not None:  # google-auth keeps it as naive UTC
                expiry = credentials.expiry.replace(tzinfo=UTC).timestamp()
            if renew or not credentials.token or expiry - time.time() < TOKEN_MARGIN_S:
                request = google.auth.transport.requests.Request()
                await asyncio.to_thread(credentials.refresh, request)
            return str(credentials.token)

    def message(
        self, sub: Subscription, payload: dict[str, Any], topic: str, urgency: str
    ) -> dict[str, Any]:
        high = urgency == "high"
        return {
            "message": {
                "token": sub.endpoint,
                "notification": {"title": payload.get("title"), "body": payload.get("body")},
                # FCM data values are strings.
                "data": {k: "" if v is None else str(v) for k, v in payload.items()},
                "android": {
                    "ttl": f"{self._ttl}s",
                    "priority": "high" if high else "normal",
                    "collapse_key": topic,
                },
                "apns": {
                    "headers": {
                        "apns-collapse-id": topic[:64],
                        "apns-priority": "10" if high else "5",
                        "apns-expiration": str(int(time.time()) + self._ttl),
                    }
                },
            }
        }

    async def send(
        self, sub: Subscription, payload: dict[str, Any], *, topic: str, urgency: str
    ) -> PushOutcome:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._concurrency)
            self._session = aiohttp.ClientSession(connector=connector)
        body = self.message(sub, payload, topic, urgency)
        try:
            for attempt in range(2):
                token = await self._token(renew=attempt > 0)
                async with self._session.post(
                    self._url,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self._timeout,
                ) as response:
                    text = await response.text()
                    if response.status == 401 and attempt == 0:
                        continue  # the token was revoked or expired early: once more
                    if response.status == 400 and "UNREGISTERED" in text:
                        return PushOutcome("gone", 400)
                    return judge(response.status, response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError):
            return PushOutcome("retry")
        except google.auth.exceptions.GoogleAuthError:
            return PushOutcome("retry")
        return PushOutcome("failed", 401)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

"""Local fakes of Google's OAuth token endpoint and the FCM HTTP v1 send endpoint, for the
notification tests (the real ones are unreachable from the tests).

The token endpoint checks the service account's JWT assertion with google-auth's own JWT
decoder and the account's public key, as Google does; the send endpoint wants a token it
issued and answers 404 UNREGISTERED for tokens starting with ``gone``, as FCM does for an
uninstalled app.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt
from local_server import LocalServer

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class FakeGoogle(LocalServer):
    def __init__(self, project: str = "demo-city") -> None:
        super().__init__()
        self.project = project
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.issued: list[str] = []
        self.messages: list[dict[str, Any]] = []

    def service_account(self) -> str:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.project,
                "private_key_id": "test-key-1",
                "private_key": pem,
                "client_email": f"beffroi@{self.project}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": self.url("/token"),
            }
        )

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/token", self._token)
        router.add_post("/v1/projects/{project}/messages:send", self._send)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        public = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        try:
            claims = jwt.decode(
                str(form["assertion"]),
                certs=public,
                # What Google's endpoint expects, whatever URL the assertion is posted to.
                audience=[GOOGLE_TOKEN_AUDIENCE, self.url("/token")],
            )
        except ValueError as exc:
            return web.json_response({"error": "invalid_grant", "detail": str(exc)}, status=400)
        if "firebase.messaging" not in claims.get("scope", ""):
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = f"ya29.{secrets.token_urlsafe(16)}"
        self.issued.append(token)
        return web.json_response(
            {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
        )

    async def _send(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.issued:
            return web.json_response(
                {"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status=401
            )
        if request.match_info["project"] != self.project:
            return web.json_response({"error": {"code": 403}}, status=403)
        body = await request.json()
        if body["message"]["token"].startswith("gone"):
            return web.json_response(
                {
                    "error": {
                        "code": 404,
                        "status": "NOT_FOUND",
                        "details": [{"errorCode": "UNREGISTERED"}],
                    }
                },
                status=404,
            )
        self.messages.append(body["message"])
        name = f"projects/{self.project}/messages/{len(self.messages)}"
        return web.json_response({"name": name})

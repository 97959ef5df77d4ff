"""Errors as RFC 9457 ``application/problem+json``, the one error shape of the API."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TYPE_BASE = "https://beffroi.invalid/problems/"  # stable identifiers, not fetchable pages


class ApiError(Exception):
    """An error answered to the client as a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str = "about:blank",
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.extra = extra or {}
        self.headers = headers or {}

    def to_problem(self, instance: str) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": self.kind if self.kind == "about:blank" else _TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        problem.update(self.extra)
        return problem


class BadParameter(ApiError):
    """A query or path parameter is invalid; names the parameter and why."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(
            400,
            "Invalid parameter",
            f"{param}: {reason}",
            kind="invalid-parameter",
            extra={"errors": [{"parameter": param, "detail": reason}]},
        )
        self.param = param


class NotFound(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(404, "Not found", detail, kind="not-found")


def problem_response(error: ApiError, instance: str) -> web.Response:
    response = web.Response(
        body=orjson.dumps(error.to_problem(instance)),
        status=error.status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=error.headers,
    )
    response.headers["Cache-Control"] = "no-store"
    return response

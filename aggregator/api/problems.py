"""Errors as RFC 9457 ``application/problem+json``, the one error shape of the API."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from aggregator.api.messages import PROBLEM_DETAILS, PROBLEM_TITLES, message, text_language

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TYPE_BASE = "https://beffroi.invalid/problems/"  # stable identifiers, not fetchable pages
#: The ``code`` of a problem without a ``kind``, by status.
_STATUS_CODES = {
    400: "invalid_parameter",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    503: "not_ready",
    500: "internal_error",
}
#: The language of a ``detail`` no catalogue entry writes (it names data, ids, parameters).
DETAIL_SOURCE_LANGUAGE = "en"


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
        detail_code: str | None = None,
        detail_fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.extra = extra or {}
        self.headers = headers or {}
        #: A :data:`PROBLEM_DETAILS` entry writing ``detail`` in every message language.
        self.detail_code = detail_code
        self.detail_fields = detail_fields or {}

    @property
    def code(self) -> str:
        """The stable code a client branches on (the ``type`` without its base)."""
        if self.kind != "about:blank":
            return self.kind.replace("-", "_")
        return _STATUS_CODES.get(self.status, "error")

    def to_problem(self, instance: str, language: str = "en") -> dict[str, Any]:
        """The problem document; ``title`` and, where the catalogue writes it, ``detail`` in
        ``language``; ``detail_language`` says which language ``detail`` is in."""
        code = self.code
        title = message(PROBLEM_TITLES, code, language) if code in PROBLEM_TITLES else self.title
        if self.detail_code is not None:
            detail = message(PROBLEM_DETAILS, self.detail_code, language, **self.detail_fields)
            detail_language = text_language(language)
        else:
            detail, detail_language = self.detail, DETAIL_SOURCE_LANGUAGE
        problem: dict[str, Any] = {
            "type": self.kind if self.kind == "about:blank" else _TYPE_BASE + self.kind,
            "code": code,
            "title": title,
            "status": self.status,
            "detail": detail,
            "detail_language": detail_language,
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


def problem_response(error: ApiError, instance: str, language: str = "en") -> web.Response:
    """``error`` as problem+json; ``language``: the answer's negotiated language."""
    response = web.Response(
        body=orjson.dumps(error.to_problem(instance, language)),
        status=error.status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=error.headers,
    )
    response.headers["Cache-Control"] = "no-store"
    # Each text's language is in the document (title: the negotiated one, detail_language);
    # the answer depends on the asked language, so caches must key on it.
    response.headers.add("Vary", "Accept-Language")
    return response

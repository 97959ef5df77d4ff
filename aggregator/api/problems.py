"""Errors as RFC 9457 ``application/problem+json``, the one error shape of the API."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from aggregator.api.messages import PROBLEM_TITLES, message, text_language
from aggregator.api.problem_texts import REASONS

PROBLEM_CONTENT_TYPE = "application/problem+json"
#: Where each problem ``type`` is described, on this server itself: a URI reference the client
#: resolves against the request's URL (RFC 9457 §3.1.1), so it points to the server that
#: answered, whatever name or proxy it was reached through.
TYPE_PATH = "/problems/"
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
#: The language of a ``detail`` no catalogue entry writes (a text from outside the catalogue).
DETAIL_SOURCE_LANGUAGE = "en"


def _text(reason: str, language: str, fields: dict[str, str]) -> tuple[str, str, str | None]:
    """(text, its language, its code) of ``reason``: a :data:`REASONS` code, written in
    ``language``; any other string is a text of its own, in English, without a code."""
    if reason in REASONS:
        return message(REASONS, reason, language, **fields), text_language(language), reason
    return reason, DETAIL_SOURCE_LANGUAGE, None


class ApiError(Exception):
    """An error answered to the client as a problem document.

    ``detail`` is a code of :data:`REASONS` (written with ``fields`` in the answer's
    language); ``title`` is the English title, used only when the code has no catalogue title.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str = "about:blank",
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        self.fields = {k: str(v) for k, v in (fields or {}).items()}
        self.reason = detail
        super().__init__(_text(detail, "en", self.fields)[0])
        self.status = status
        self.title = title
        self.kind = kind
        self.extra = extra or {}
        self.headers = headers or {}

    @property
    def detail(self) -> str:
        """The detail in English (for logs and composed answers)."""
        return str(self)

    @property
    def code(self) -> str:
        """The stable code a client branches on (the ``type`` without its base)."""
        if self.kind != "about:blank":
            return self.kind.replace("-", "_")
        return _STATUS_CODES.get(self.status, "error")

    def to_problem(self, instance: str, language: str = "en") -> dict[str, Any]:
        """The problem document; ``title`` and ``detail`` in ``language``; ``detail_code``
        the detail's stable code, ``detail_language`` the language it is written in."""
        code = self.code
        title = message(PROBLEM_TITLES, code, language) if code in PROBLEM_TITLES else self.title
        detail, detail_language, detail_code = _text(self.reason, language, self.fields)
        problem: dict[str, Any] = {
            "type": problem_type(code),
            "code": code,
            "title": title,
            "status": self.status,
            "detail": detail,
            "detail_code": detail_code,
            "detail_language": detail_language,
            "instance": instance,
        }
        problem.update(self.extra)
        errors = problem.get("errors")
        if isinstance(errors, list):
            problem["errors"] = [_localized_error(e, language) for e in errors]
        return problem


def problem_type(code: str) -> str:
    """The ``type`` of problems of ``code``: the page this server serves about them (codes
    without a page point to the generic one)."""
    return TYPE_PATH + (code if code in PROBLEM_TITLES else "error")


def _localized_error(error: Any, language: str) -> Any:
    """One ``errors[]`` entry with its ``detail`` in ``language`` (entries naming a reason
    ``code`` carry their ``fields`` until then)."""
    if not (isinstance(error, dict) and "code" in error):
        return error
    fields = error.get("fields") or {}
    detail, detail_language, code = _text(error["code"], language, fields)
    out = {k: v for k, v in error.items() if k != "fields"}
    return out | {"code": code, "detail": detail, "detail_language": detail_language}


class BadParameter(ApiError):
    """A query or path parameter is invalid; names the parameter and why (``reason``: a code
    of :data:`REASONS`, with the ``fields`` its text names)."""

    def __init__(self, param: str, reason: str, **fields: Any) -> None:
        texts = {k: str(v) for k, v in fields.items()}
        super().__init__(
            400,
            "Invalid parameter",
            f"{param}: {_text(reason, 'en', texts)[0]}",
            kind="invalid-parameter",
            extra={"errors": [{"parameter": param, "code": reason, "fields": texts}]},
        )
        self.param = param
        self.parameter_reason = reason
        self.parameter_fields = texts

    def to_problem(self, instance: str, language: str = "en") -> dict[str, Any]:
        # The detail is "parameter: reason", the reason in ``language``.
        reason, reason_language, code = _text(
            self.parameter_reason, language, self.parameter_fields
        )
        problem = super().to_problem(instance, language)
        problem |= {
            "detail": f"{self.param}: {reason}",
            "detail_code": code,
            "detail_language": reason_language,
        }
        return problem


class NotFound(ApiError):
    """What the request names does not exist; ``reason``: a code of :data:`REASONS`."""

    def __init__(self, reason: str, **fields: Any) -> None:
        super().__init__(404, "Not found", reason, kind="not-found", fields=fields)


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

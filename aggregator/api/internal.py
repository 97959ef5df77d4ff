"""Calling this server's own endpoints in-process, for answers composed of others (the home
screen, live streams): the same handlers, parameters and errors, without a network hop or
the conventions middleware (the composing answer gets those once)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aggregator.api.problems import ApiError
from aggregator.api.results import ApiResult


class Unavailable(Exception):
    """The endpoint does not exist on this server, or it answered an error.

    ``code`` says which for people (:data:`aggregator.api.messages.UNAVAILABLE`); the
    message, in English, is for the log.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


async def internal_get(request: web.Request, path_qs: str, **headers: str) -> ApiResult:
    """``GET path_qs`` answered by this app's handler, as the handler's ApiResult."""
    clone = request.clone(method="GET", rel_url=path_qs, headers={**request.headers, **headers})
    match_info = await request.app.router.resolve(clone)
    if match_info.http_exception is not None:
        raise Unavailable(f"{path_qs.split('?')[0]} is not served here", "not_served")
    # What aiohttp's Application._handle does before calling a handler.
    match_info.add_app(request.app)
    match_info.freeze()
    clone._match_info = match_info  # type: ignore[attr-defined]
    try:
        result: Any = await match_info.handler(clone)
    except ApiError as exc:
        raise Unavailable(exc.detail, "failed") from None
    if not isinstance(result, ApiResult):
        raise Unavailable(f"{path_qs.split('?')[0]} does not answer JSON data", "failed")
    return result

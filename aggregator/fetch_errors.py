"""What a fetch raises when it produces no usable answer, and the plain words it says.

Every message is safe to show an operator: the :class:`~aggregator.fetch.Fetcher` passes each
URL and each piece of upstream text through the :class:`~aggregator.redact.Redactor` first.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http import HTTPStatus

import httpx

__all__ = [
    "BodyTooLarge", "FetchError", "LocalFileError", "RefusedURL", "UpstreamHTTPError",
    "UpstreamTimeout", "UpstreamUnreachable", "describe_request_error", "status_phrase",
]  # fmt: skip


class FetchError(Exception):
    """A fetch that produced no usable answer; ``str()`` is safe to show an operator."""

    def __init__(
        self, message: str, *, url: str, retry_after: float | None = None, attempts: int = 1
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        return f"{self.message} ({self.url})"


class UpstreamHTTPError(FetchError):
    def __init__(self, message: str, *, url: str, status: int) -> None:
        super().__init__(message, url=url)
        self.status = status


class UpstreamTimeout(FetchError): ...


class UpstreamUnreachable(FetchError): ...


class BodyTooLarge(FetchError): ...


class LocalFileError(FetchError): ...


class RefusedURL(FetchError):
    """Not fetched, or not read: a body URL off the allowed origins, or a forbidden redirect."""


def status_phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    # httpx wraps httpcore wraps anyio's "All connection attempts failed" wraps the OSError
    # that says what actually happened; walk the chain (and exception groups) to find it.
    yield exc
    for inner in (exc.__cause__, exc.__context__, *getattr(exc, "exceptions", ())):
        if inner is not None:
            yield from _causes(inner)


def describe_request_error(exc: httpx.RequestError, host: str) -> str:
    causes = list(_causes(exc))
    if any(isinstance(c, socket.gaierror) for c in causes):
        return f"could not resolve host {host}"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect to {host}"
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return "connection lost before the answer was complete"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode the body ({exc})"
    return str(exc) or type(exc).__name__

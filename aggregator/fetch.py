"""The one way connectors read an upstream feed: conditional GET, a deadline, a size cap, retries.

Every connector goes through a shared :class:`Fetcher` (one ``httpx.AsyncClient``, one connection
pool) so limits and politeness are the same for all sources. Failures raise::

    FetchError                  url (redacted), message, retry_after, attempts
     ├── UpstreamHTTPError      the upstream answered with an error status (also: status)
     ├── UpstreamTimeout        no complete answer (headers *and* body) within the deadline
     ├── UpstreamUnreachable    connection refused, host unknown, connection lost
     ├── BodyTooLarge           the body went over the configured cap
     ├── LocalFileError         a ``file:`` URL that is refused, missing or unreadable
     └── RefusedURL             a URL from a body, or a redirect, that the origin rules forbid

Redirects are followed here, hop by hop, rather than by httpx: configured headers (API keys)
go only to the configured origin, a redirect to anything but http(s) is refused, and so is one
that leads from a public address to an internal one (see :mod:`aggregator.origins`).

Messages are plain words for a status page and never carry a secret: every URL and every piece
of upstream text goes through the :class:`~aggregator.redact.Redactor` first.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import http.cookiejar
import mimetypes
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from aggregator.config.types import format_duration
from aggregator.origins import (
    AddressClassifier,
    UrlFromBody,
    is_public_address,
    literal_address,
    origin_of,
)
from aggregator.redact import Redactor

__all__ = [
    "MAX_RETRY_WAIT", "BodyTooLarge", "FetchError", "FetchResult", "Fetcher", "LocalFileError",
    "RefusedURL", "UpstreamHTTPError", "UpstreamTimeout", "UpstreamUnreachable", "Validators",
    "human_bytes", "retry_after_seconds",
]  # fmt: skip

MAX_RETRY_WAIT = 30.0  # longer Retry-After waits are left to the scheduler, not slept in a poll
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})  # for a GET, all mean "GET there"
#: A redirect's body is read (and dropped) up to this size so its connection can be reused.
MAX_REDIRECT_BODY = 64 * 1024
DEFAULT_USER_AGENT = "Beffroi (+https://github.com/beffroi)"


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


@dataclass(frozen=True)
class Validators:
    """What the previous successful fetch returned, to make the next one conditional."""

    etag: str | None = None
    last_modified: str | None = None
    #: The origin that answered them: they are sent back there only (None: the first hop's).
    origin: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class FetchResult:
    url: str
    not_modified: bool
    body: bytes
    content_type: str | None
    validators: Validators
    status: int
    attempts: int
    elapsed: float
    content_hash: str
    #: The answer came through a public address: URLs from its body may not lead inside.
    passed_public: bool = False


def human_bytes(n: float) -> str:
    """Sizes as the config writes them: ``50000000`` → ``"50 MB"``, ``1048576`` → ``"1 MiB"``."""
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        # Binary units only for exact binary multiples that are not round decimal ones.
        if n >= 1024**power and n % 1024**power == 0 and n % 1000**power:
            return f"{n / 1024**power:.0f} {unit}"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            break
        n /= 1000
    return f"{n:.0f} {unit}" if float(n).is_integer() else f"{n:.1f} {unit}"


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT, even when written sloppily
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _after(attempts: int) -> str:
    return f" after {attempts} attempts" if attempts > 1 else ""


def _too_large(max_bytes: int, url: str) -> BodyTooLarge:
    return BodyTooLarge(f"body exceeds the {human_bytes(max_bytes)} cap", url=url)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    # httpx wraps httpcore wraps anyio's "All connection attempts failed" wraps the OSError
    # that says what actually happened; walk the chain (and exception groups) to find it.
    yield exc
    for inner in (exc.__cause__, exc.__context__, *getattr(exc, "exceptions", ())):
        if inner is not None:
            yield from _causes(inner)


def _describe(exc: httpx.RequestError, host: str) -> str:
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


def _result(
    url: str,
    status: int,
    body: bytes,
    content_type: str | None,
    validators: Validators,
    attempts: int,
    started: float,
    passed_public: bool = False,
) -> FetchResult:
    return FetchResult(
        url=url,
        not_modified=status == 304,
        body=body,
        content_type=content_type,
        validators=validators,
        status=status,
        attempts=attempts,
        elapsed=time.monotonic() - started,
        content_hash=hashlib.sha256(body).hexdigest() if status != 304 else "",
        passed_public=passed_public,
    )


@dataclass(frozen=True)
class _Answer:
    """The last hop of one attempt: its status, headers, body, origin, and if it was asked
    conditionally (a 304 only means "not modified" when we sent validators to that hop)."""

    status: int
    headers: httpx.Headers
    body: bytes
    origin: str | None
    conditional: bool
    passed_public: bool


@dataclass(frozen=True)
class _Hops:
    """What each hop of a redirect chain is sent, decided by the hop's origin."""

    headers: Mapping[str, str]
    headers_origin: str | None  # configured headers go to this origin only
    validators: dict[str, str]
    validators_origin: str | None  # the origin that gave the validators

    def for_origin(self, origin: str | None) -> tuple[dict[str, str], bool]:
        sent = dict(self.headers) if origin is not None and origin == self.headers_origin else {}
        conditional = bool(self.validators) and origin == self.validators_origin
        if conditional:
            sent.update(self.validators)
        return sent, conditional


def _peer(response: httpx.Response) -> tuple[str, int] | None:
    """The address the response actually came from (None when the transport does not say)."""
    stream = response.extensions.get("network_stream")
    address = stream.get_extra_info("server_addr") if stream is not None else None
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


class _RefuseEveryCookie(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


_NO_COOKIES = http.cookiejar.CookieJar(policy=_RefuseEveryCookie())


class Fetcher:
    """Owns the shared HTTP client; ``fetch`` is safe to call concurrently from every source.

    ``is_public`` classifies the address each hop connected to (default: the real thing,
    :func:`~aggregator.origins.is_public_address`); tests pass one that calls a given
    127.0.0.1 port "public" to play an internet upstream redirecting inside.
    """

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        max_connections: int = 20,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        is_public: AddressClassifier = is_public_address,
    ) -> None:
        self._sleep = sleep
        self._is_public = is_public
        self._client = httpx.AsyncClient(
            headers={"User-Agent": user_agent},
            # Followed in `_attempt`, hop by hop: httpx would carry custom headers (API keys)
            # to any origin, and cannot refuse a redirect by the address it connected to.
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            # No httpx timeout: its per-read timer lets a trickling server go on forever, so
            # each attempt runs under one asyncio deadline instead (see `fetch`).
            timeout=None,
            transport=transport,
            # Feeds need no cookies, and a jar keyed by what upstreams send would grow without
            # a budget (one hostile Set-Cookie per answer): refuse them all.
            cookies=_NO_COOKIES,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def fetch(
        self,
        url: str,
        *,
        timeout: float,  # noqa: ASYNC109 - a per-attempt deadline; a caller's would span retries
        max_bytes: int,
        headers: Mapping[str, str] = {},
        validators: Validators | None = None,
        retries: int = 2,
        base_dir: Path | None = None,
        allow_file: bool = False,
        redactor: Redactor | None = None,
        from_body: UrlFromBody | None = None,
    ) -> FetchResult:
        """Fetch ``url`` (http, https or file); raise a :class:`FetchError` when that fails.

        ``headers`` are the source's configured ones: they are sent only to the configured
        origin, which is ``url``'s own, or for a URL read from a body (``from_body``) the
        origin of the configured URL that body came from; a body URL the origin rules refuse
        raises :class:`RefusedURL` before any I/O.
        """
        redactor = redactor or Redactor()
        shown = redactor.redact_url(url)
        validators = validators or Validators()
        if from_body is not None:
            problem = from_body.refusal(url)
            if problem is not None:
                raise RefusedURL(redactor.redact(problem), url=shown)
        scheme = urlsplit(url).scheme.lower()
        if scheme == "file":
            if not allow_file:
                raise LocalFileError(
                    "file: URLs are disabled; the config must set "
                    "`defaults.allow_file_urls: true` to read local files",
                    url=shown,
                )
            return await asyncio.to_thread(
                _read_file, url, shown, max_bytes, validators, base_dir, redactor
            )
        if scheme not in ("http", "https"):
            raise FetchError(f"unsupported URL scheme {scheme!r}", url=shown)

        conditional: dict[str, str] = {}
        if validators.etag:
            conditional["If-None-Match"] = validators.etag
        if validators.last_modified:
            conditional["If-Modified-Since"] = validators.last_modified
        try:
            parsed = httpx.URL(url)  # once: every hop's origin is read from parsed URLs
        except httpx.InvalidURL:
            raise FetchError("invalid URL", url=shown) from None
        own_origin = origin_of(parsed)
        hops = _Hops(
            headers=headers,
            headers_origin=from_body.configured_origin if from_body else own_origin,
            validators=conditional,
            validators_origin=validators.origin or own_origin,
        )
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            retry_after: float | None = None
            try:
                async with asyncio.timeout(timeout):
                    answer = await self._attempt(
                        parsed, shown, hops, max_bytes, redactor, from_body
                    )
            except (TimeoutError, httpx.TimeoutException):
                failure: FetchError = UpstreamTimeout(
                    f"no complete answer within {timeout:g}s", url=shown
                )
            except httpx.InvalidURL:
                raise FetchError("invalid URL", url=shown) from None
            except httpx.RequestError as exc:
                what = redactor.redact(_describe(exc, urlsplit(url).hostname or ""))
                if not isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
                    # Not chained (`from None`): the httpx exception's text or request can carry
                    # the unredacted URL into a logged traceback.
                    raise FetchError(what, url=shown) from None
                failure = UpstreamUnreachable(what, url=shown)
            else:
                status = answer.status
                public = answer.passed_public
                if status == 304 and answer.conditional:
                    return _result(shown, status, b"", None, validators, attempts, started, public)
                if 200 <= status < 300:
                    new = Validators(
                        answer.headers.get("ETag"),
                        answer.headers.get("Last-Modified"),
                        origin=answer.origin,
                    )
                    content_type = answer.headers.get("Content-Type")
                    return _result(
                        shown, status, answer.body, content_type, new, attempts, started, public
                    )
                failure = UpstreamHTTPError(
                    f"upstream answered {_phrase(status)}", url=shown, status=status
                )
                if status != 429 and status < 500:
                    raise failure
                retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
                if retry_after is not None and retry_after > MAX_RETRY_WAIT:
                    failure.message += f" and asked to retry in {format_duration(retry_after)}"
                    failure.retry_after = retry_after
                    raise failure
            if attempts > retries:
                failure.message += _after(attempts)
                failure.attempts = attempts
                failure.retry_after = retry_after
                raise failure
            if retry_after is None:  # exponential backoff with full jitter
                retry_after = random.uniform(
                    0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempts - 1))
                )
            await self._sleep(retry_after)

    async def _attempt(
        self,
        target: httpx.URL,
        shown: str,
        hops: _Hops,
        max_bytes: int,
        redactor: Redactor,
        from_body: UrlFromBody | None,
    ) -> _Answer:
        """One GET, following up to MAX_REDIRECTS redirects under the origin rules."""
        # Has the chain been through a public address yet? A URL read from a body continues
        # the chain of the fetch that brought the body (DNS may have changed its mind since).
        passed_public = from_body is not None and from_body.from_public
        for hop in range(MAX_REDIRECTS + 1):
            origin = origin_of(target)
            how = f"{from_body.found_in} leads" if from_body and not hop else "redirected"
            literal = literal_address(target) if passed_public else None
            if literal is not None and not self._is_public(*literal):
                # Written out as an internal IP: refused without even connecting.
                raise _internal_address(how, origin, shown, redactor)
            sent, conditional = hops.for_origin(origin)
            async with self._client.stream("GET", target, headers=sent) as response:
                # Judged on the address really connected to (a DNS name can point inside),
                # before a byte of the body is read.
                peer = _peer(response)
                public = peer is not None and self._is_public(*peer)
                if passed_public and not public:
                    raise _internal_address(how, origin, shown, redactor)
                passed_public = passed_public or public
                status = response.status_code
                location = response.headers.get("Location")
                if status in REDIRECT_STATUSES and location:
                    target = _redirect_target(target, location, shown, redactor)
                    await _drain(response)
                    continue
                if not 200 <= status < 300:
                    return _Answer(
                        status, response.headers, b"", origin, conditional, passed_public
                    )
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _too_large(max_bytes, shown)
                chunks, size = [], 0
                # aiter_bytes yields decoded bytes, so a small gzip bomb hits the cap as well.
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(max_bytes, shown)
                    chunks.append(chunk)
                body = b"".join(chunks)
                return _Answer(status, response.headers, body, origin, conditional, passed_public)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects", url=shown)


async def _drain(response: httpx.Response) -> None:
    """Read a small redirect body to its end, so the connection goes back to the pool; a big
    one is left unread (the connection is then closed, which is all it costs)."""
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > MAX_REDIRECT_BODY:
            return


def _redirect_target(
    current: httpx.URL, location: str, shown: str, redactor: Redactor
) -> httpx.URL:
    try:
        target = current.join(location.strip())
    except httpx.InvalidURL:
        raise RefusedURL("redirected to an invalid URL", url=shown) from None
    if target.scheme not in ("http", "https"):
        scheme = redactor.redact(target.scheme or "?")
        raise RefusedURL(f"redirected to a {scheme}: URL, which is never followed", url=shown)
    return target


def _internal_address(how: str, origin: str | None, shown: str, redactor: Redactor) -> RefusedURL:
    where = redactor.redact_url(origin or "an unusable URL")
    return RefusedURL(
        f"{how} from a public address to {where}, an internal address; not followed",
        url=shown,
    )


def _read_file(
    url: str,
    shown: str,
    max_bytes: int,
    validators: Validators,
    base_dir: Path | None,
    redactor: Redactor,
) -> FetchResult:
    started = time.monotonic()
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise LocalFileError("file: URLs cannot name another host", url=shown)
    path = Path(unquote(parts.path))
    if not path.is_absolute():
        if base_dir is None:
            raise LocalFileError("a relative file: URL needs a base directory", url=shown)
        path = base_dir / path
    try:
        with path.open("rb") as handle:
            # The stamp comes from the open handle, so a file replaced mid-read is re-read
            # on the next poll rather than missed.
            info = os.fstat(handle.fileno())
            stamp = f"{info.st_mtime_ns}:{info.st_size}"
            if validators.last_modified == stamp:
                return _result(shown, 304, b"", None, validators, 1, started)
            if info.st_size > max_bytes:
                raise _too_large(max_bytes, shown)
            body = handle.read(max_bytes + 1)  # the file may have grown since fstat
    except FileNotFoundError:
        raise LocalFileError(f"no such file: {redactor.redact(str(path))}", url=shown) from None
    except IsADirectoryError:
        raise LocalFileError(f"not a file: {redactor.redact(str(path))}", url=shown) from None
    except OSError as exc:
        reason = redactor.redact(exc.strerror or type(exc).__name__)
        raise LocalFileError(
            f"cannot read {redactor.redact(str(path))}: {reason}", url=shown
        ) from None
    if len(body) > max_bytes:
        raise _too_large(max_bytes, shown)
    content_type = mimetypes.guess_type(path.name)[0]
    return _result(shown, 200, body, content_type, Validators(last_modified=stamp), 1, started)

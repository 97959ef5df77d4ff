"""The one way connectors read an upstream feed: conditional GET, a deadline, a size cap, retries.

Every connector goes through a shared :class:`Fetcher` (one ``httpx.AsyncClient``, one connection
pool) so limits and politeness are the same for all sources. Failures raise
(:mod:`aggregator.fetch_errors`)::

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

This module holds the client and its retry loop; the parts live apart: the per-hop rules in
:mod:`aggregator.fetch_redirects`, the size caps in :mod:`aggregator.fetch_body` (also ``file:``
URLs), the answer and its validators in :mod:`aggregator.fetch_result`.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from aggregator.config.types import format_duration
from aggregator.fetch_body import drain_redirect, read_capped, read_file_url
from aggregator.fetch_errors import (
    FetchError,
    LocalFileError,
    RefusedURL,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
    describe_request_error,
    status_phrase,
)
from aggregator.fetch_redirects import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    HopHeaders,
    internal_address_refused,
    peer_address,
    redirect_target,
)
from aggregator.fetch_result import FetchResult, Validators, conditional_headers, fetch_result
from aggregator.origins import (
    AddressClassifier,
    UrlFromBody,
    is_public_address,
    literal_address,
    origin_of,
)
from aggregator.redact import Redactor

__all__ = ["MAX_RETRY_WAIT", "Fetcher", "retry_after_seconds"]


MAX_RETRY_WAIT = 30.0  # longer Retry-After waits are left to the scheduler, not slept in a poll
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
DEFAULT_USER_AGENT = "Beffroi (+https://github.com/beffroi)"


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


def _after(attempts: int) -> str:
    return f" after {attempts} attempts" if attempts > 1 else ""


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
                read_file_url, url, shown, max_bytes, validators, base_dir, redactor
            )
        if scheme not in ("http", "https"):
            raise FetchError(f"unsupported URL scheme {scheme!r}", url=shown)

        try:
            parsed = httpx.URL(url)  # once: every hop's origin is read from parsed URLs
        except httpx.InvalidURL:
            raise FetchError("invalid URL", url=shown) from None
        own_origin = origin_of(parsed)
        hops = HopHeaders(
            headers=headers,
            headers_origin=from_body.configured_origin if from_body else own_origin,
            validators=conditional_headers(validators),
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
                what = redactor.redact(describe_request_error(exc, urlsplit(url).hostname or ""))
                if not isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
                    # Not chained (`from None`): the httpx exception's text or request can carry
                    # the unredacted URL into a logged traceback.
                    raise FetchError(what, url=shown) from None
                failure = UpstreamUnreachable(what, url=shown)
            else:
                status = answer.status
                public = answer.passed_public
                if status == 304 and answer.conditional:
                    return fetch_result(
                        shown, status, b"", None, validators, attempts, started, public
                    )
                if 200 <= status < 300:
                    new = Validators(
                        answer.headers.get("ETag"),
                        answer.headers.get("Last-Modified"),
                        origin=answer.origin,
                    )
                    content_type = answer.headers.get("Content-Type")
                    return fetch_result(
                        shown, status, answer.body, content_type, new, attempts, started, public
                    )
                failure = UpstreamHTTPError(
                    f"upstream answered {status_phrase(status)}", url=shown, status=status
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
        hops: HopHeaders,
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
                raise internal_address_refused(how, origin, shown, redactor)
            sent, conditional = hops.for_origin(origin)
            async with self._client.stream("GET", target, headers=sent) as response:
                # Judged on the address really connected to (a DNS name can point inside),
                # before a byte of the body is read.
                peer = peer_address(response)
                public = peer is not None and self._is_public(*peer)
                if passed_public and not public:
                    raise internal_address_refused(how, origin, shown, redactor)
                passed_public = passed_public or public
                status = response.status_code
                location = response.headers.get("Location")
                if status in REDIRECT_STATUSES and location:
                    target = redirect_target(target, location, shown, redactor)
                    await drain_redirect(response)
                    continue
                if not 200 <= status < 300:
                    return _Answer(
                        status, response.headers, b"", origin, conditional, passed_public
                    )
                body = await read_capped(response, max_bytes, shown)
                return _Answer(status, response.headers, body, origin, conditional, passed_public)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects", url=shown)

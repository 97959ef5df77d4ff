"""The conventions every endpoint gets for free, in one middleware.

It applies, from the outside in:

* latency per route template, for ``/metrics``;
* security headers: nosniff, no framing, no referrer leakage;
* CORS: exact origins from the config, preflight answered, ``ETag`` exposed;
* every error as RFC 9457 problem+json, never a traceback;
* rendering: a handler's :class:`ApiResult` becomes orjson bytes in a ``{data, meta}``
  envelope, with a weak ETag (304 on ``If-None-Match``), ``Cache-Control`` from the
  sources' refresh intervals, gzip above 1 KB, and ``Content-Language``/``Vary``.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from aiohttp import web

from aggregator.api.problems import ApiError, BadParameter, problem_response
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter
from aggregator.metrics import Metrics

log = logging.getLogger(__name__)

GZIP_MIN_BYTES = 1024
#: A phone gains nothing by refetching faster than this, whatever the source's cadence.
MAX_AGE_CAP_S = 300
CORS_EXPOSED = "ETag, Content-Language, Retry-After, RateLimit, RateLimit-Policy"
CORS_ALLOWED_REQUEST_HEADERS = {"accept", "accept-language", "authorization", "if-none-match"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

Middleware = Callable[..., Any]


class SourceInfo(Protocol):
    """What rendering needs to know about the sources behind a response."""

    def freshness(self, source_id: str, now: datetime) -> dict[str, Any] | None: ...

    def refresh_interval(self, source_id: str) -> float | None: ...


def conventions_middleware(
    metrics: Metrics,
    origins: Sequence[str],
    router: ApiRouter,
    sources: SourceInfo,
    limiter: Limiter | None = None,
) -> Middleware:
    """Every convention in one middleware (aiohttp pays a wrapper per middleware per request).

    In order: latency observed for /metrics; CORS (preflights answered here); the optional
    rate limit; unknown query parameters refused; the handler; its ApiResult rendered; any
    error turned into problem+json; security and CORS headers on whatever goes out.
    """
    # The histogram's child per label set, looked up once (``labels()`` takes a lock).
    children: dict[tuple[str, str, str], Any] = {}
    allow_any = "*" in origins
    allowed = frozenset(origins)

    async def answer(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        limit_headers: dict[str, str] = {}
        try:
            if limiter is not None:
                limit_headers = await limiter.check(request)
            check_query_names(request, router)
            result = await handler(request)
            response = (
                _render(request, result, sources) if isinstance(result, ApiResult) else result
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _problem_for(request, exc)
        except ApiError as exc:
            response = problem_response(exc, request.path)
        except Exception:
            response = _internal_error(request)
        if limit_headers and not response.prepared:
            response.headers.update(limit_headers)
        return response

    @web.middleware
    async def conventions(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            origin = request.headers.get("Origin")
            permitted = origin is not None and (allow_any or origin in allowed)
            wanted_method = request.headers.get("Access-Control-Request-Method")
            if request.method == "OPTIONS" and origin is not None and wanted_method is not None:
                try:
                    response = _preflight(request, permitted, wanted_method)
                except ApiError as exc:
                    response = problem_response(exc, request.path)
            else:
                response = await answer(request, handler)
            if not response.prepared:  # a stream's headers are already sent
                headers = response.headers
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if permitted:
                    headers["Access-Control-Allow-Origin"] = "*" if allow_any else origin or ""
                    headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
                if not allow_any:
                    headers.add("Vary", "Origin")
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            template = resource.canonical if resource is not None else "(unmatched)"
            key = (template, request.method, f"{status // 100}xx")
            child = children.get(key)
            if child is None:
                child = children[key] = metrics.request_latency.labels(*key)
            child.observe(time.perf_counter() - started)

    return conventions


class Limiter(Protocol):
    """The rate limiter seen from the conventions: headers to add, or a 429 raised."""

    async def check(self, request: web.Request) -> dict[str, str]: ...


def _preflight(request: web.Request, permitted: bool, method: str) -> web.StreamResponse:
    if (
        request.match_info.http_exception is not None
        and request.match_info.http_exception.status == 404
    ):
        raise ApiError(404, "Not found", f"no endpoint at {request.path}")
    if not permitted:
        raise ApiError(403, "Forbidden", "this origin is not allowed to call the API")
    if method not in ("GET", "HEAD"):
        raise ApiError(
            405, "Method not allowed", f"{method} is not supported; the API is read-only"
        )
    requested = request.headers.get("Access-Control-Request-Headers", "")
    headers = [h.strip() for h in requested.split(",") if h.strip()]
    refused = [h for h in headers if h.lower() not in CORS_ALLOWED_REQUEST_HEADERS]
    if refused:
        raise ApiError(403, "Forbidden", f"request header not allowed: {', '.join(refused)}")
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
    if headers:
        response.headers["Access-Control-Allow-Headers"] = ", ".join(headers)
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def _problem_for(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    """aiohttp's own errors (no route, wrong method...) as problem documents."""
    if isinstance(exc, web.HTTPNotFound):
        error = ApiError(404, "Not found", f"no endpoint at {request.path}")
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        error = ApiError(
            405,
            "Method not allowed",
            f"{request.method} is not supported here; allowed: {allowed}",
            headers={"Allow": allowed},
        )
    else:
        error = ApiError(exc.status, exc.reason, exc.text or exc.reason)
    return problem_response(error, request.path)


def _internal_error(request: web.Request) -> web.StreamResponse:
    incident = uuid.uuid4().hex[:12]
    log.exception("unhandled error on %s %s (incident %s)", request.method, request.path, incident)
    error = ApiError(
        500, "Internal error", f"the server failed to answer; incident {incident} is in its log"
    )
    return problem_response(error, request.path)


def check_query_names(request: web.Request, router: ApiRouter) -> None:
    """Reject query parameters the route does not declare, suggesting the close one."""
    resource = request.match_info.route.resource
    if resource is None:
        return
    route = router.lookup(request.method, resource.canonical)
    if route is None:
        return
    known = route.query_names
    for name in request.query:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else (f"; accepted: {', '.join(sorted(known))}" if known else "; none are accepted")
            )
            raise BadParameter(name, f"unknown parameter{hint}")


def _render(request: web.Request, result: ApiResult, sources: SourceInfo) -> web.StreamResponse:
    now = datetime.now(UTC)
    data_bytes = _dumps(result.data)
    freshness = {}
    for source_id in result.sources:
        fresh = sources.freshness(source_id, now)
        if fresh is not None:
            freshness[source_id] = fresh
    meta: dict[str, Any] = {
        "generated_at": now.isoformat(timespec="milliseconds"),
        "sources": freshness,
        **result.meta,
    }
    if result.language:
        meta["language"] = result.language
    if result.paginated:
        meta["next_cursor"] = result.next_cursor

    headers: dict[str, str] = {"Content-Type": result.media_type}
    vary = ["Accept-Encoding"]
    if result.language:
        headers["Content-Language"] = result.language
        vary.append("Accept-Language")
    headers["Vary"] = ", ".join(vary)
    headers["Cache-Control"] = _cache_control(result, sources)

    if result.cacheable and result.status == 200:
        # Weak: ``meta`` (generation time, ages) differs between two equal answers.
        digest = hashlib.blake2b(data_bytes, digest_size=12)
        digest.update((result.language or "").encode())
        digest.update((result.next_cursor or "").encode())
        etag = digest.hexdigest()
        headers["ETag"] = f'W/"{etag}"'
        if _etag_matches(request.headers.get("If-None-Match"), etag):
            del headers["Content-Type"]
            return web.Response(status=304, headers=headers)

    if result.enveloped:
        body = b'{"data":' + data_bytes + b',"meta":' + orjson.dumps(meta) + b"}"
    else:
        # A bare object (e.g. GeoJSON) carries meta as one more member.
        if not (isinstance(result.data, dict) and result.data):
            raise TypeError("an answer without envelope must be a non-empty JSON object")
        body = data_bytes[:-1] + b',"meta":' + orjson.dumps(meta) + b"}"
    if len(body) > GZIP_MIN_BYTES and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = gzip.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, status=result.status, headers=headers)


def _dumps(data: Any) -> bytes:
    """``orjson.dumps(data, option=OPT_NON_STR_KEYS)``, the same bytes, about twice as fast
    on the usual answer (all keys strings): the option is only paid for when needed."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


def _cache_control(result: ApiResult, sources: SourceInfo) -> str:
    if not result.cacheable or result.status != 200:
        return "no-store"
    max_age = result.max_age
    if max_age is None:
        intervals = [sources.refresh_interval(s) for s in result.sources]
        known = [i for i in intervals if i is not None]
        if not known:
            return "no-cache"
        max_age = int(min(min(known), MAX_AGE_CAP_S))
    return f"public, max-age={max(max_age, 0)}"


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        # Weak comparison (RFC 9110 §8.8.3.2): the W/ prefix does not matter.
        value = candidate.strip().removeprefix("W/").strip('"')
        if value == etag:
            return True
    return False

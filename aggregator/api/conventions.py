"""The conventions every endpoint gets for free, in one middleware.

It applies, from the outside in:

* latency per route template, for ``/metrics``;
* security headers: nosniff, no framing, no referrer leakage;
* CORS: exact origins from the config, preflight answered, ``ETag`` exposed;
* every error as RFC 9457 problem+json, never a traceback;
* rendering (:mod:`aggregator.api.rendering`): a handler's :class:`ApiResult` becomes
  orjson bytes in a ``{data, meta}`` envelope, with a weak ETag (304 on ``If-None-Match``),
  ``Cache-Control`` from the sources' refresh intervals, gzip above 1 KB, and
  ``Content-Language``/``Vary``;
* the optional micro-cache of rendered answers (:mod:`aggregator.api.response_cache`).
"""

from __future__ import annotations

import difflib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from aggregator.api.fields import item_fields, select_fields
from aggregator.api.i18n import language_from_header, negotiate_language
from aggregator.api.params import MAX_PARAM_LENGTH
from aggregator.api.problems import ApiError, BadParameter, problem_response
from aggregator.api.rendering import Rendered, SourceInfo, render
from aggregator.api.response_cache import ResponseCache
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Route
from aggregator.metrics import Metrics
from aggregator.runtime import runtime_of

log = logging.getLogger(__name__)

CORS_EXPOSED = "ETag, Content-Language, Retry-After, RateLimit, RateLimit-Policy"
CORS_ALLOWED_REQUEST_HEADERS = {
    "accept",
    "accept-language",
    "authorization",
    "content-type",
    "if-none-match",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

Middleware = Callable[..., Any]


def conventions_middleware(
    metrics: Metrics,
    origins: Sequence[str],
    router: ApiRouter,
    sources: SourceInfo,
    limiter: Limiter | None = None,
    cache: ResponseCache | None = None,
) -> Middleware:
    """Every convention in one middleware (aiohttp pays a wrapper per middleware per request).

    In order: latency observed for /metrics; CORS (preflights answered here); the optional
    rate limit; the optional response cache; unknown query parameters refused; the handler;
    its ApiResult rendered; any error turned into problem+json; security and CORS headers on
    whatever goes out.
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
            outcome = await cached_or_computed(request, handler)
            response = (
                outcome.respond(request.headers.get("If-None-Match"))
                if isinstance(outcome, Rendered)
                else outcome
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _problem_for(request, exc)
        except ApiError as exc:
            response = problem_response(exc, request.path, problem_language(request))
        except Exception:
            response = _internal_error(request)
        if limit_headers and not response.prepared:
            response.headers.update(limit_headers)
        return response

    async def cached_or_computed(
        request: web.Request, handler: Callable[..., Any]
    ) -> Rendered | web.StreamResponse:
        route = declared_route(request, router)
        key = None
        if cache is not None and route is not None and route.public_json:
            key = cache.key_of(request)
        if cache is None or key is None:
            return await compute(request, route, handler)
        rendered = cache.get(key)
        if rendered is None:
            rendered = await cache.wait_for(key)
        if rendered is not None:
            return rendered
        generation = cache.begin(key)
        outcome: Rendered | web.StreamResponse | None = None
        try:
            outcome = await compute(request, route, handler)
        finally:
            cache.end(key, generation, outcome if isinstance(outcome, Rendered) else None)
        return outcome

    def cached(request: web.Request) -> web.Response | None:
        """A cached answer straight away: the hot path of a busy stop's board.

        Only keys of public JSON routes are ever stored, so a hit needs no route lookup. With
        a rate limit, every request must be counted first: the usual path does that.
        """
        if cache is None or limiter is not None:
            return None
        key = cache.key_of(request)
        rendered = cache.get(key) if key is not None else None
        if rendered is None:
            return None
        return rendered.respond(request.headers.get("If-None-Match"))

    async def compute(
        request: web.Request, route: Route | None, handler: Callable[..., Any]
    ) -> Rendered | web.StreamResponse:
        if route is not None:
            check_query_names(request, route)
            if "lang" in request.query:
                # Accepted everywhere, checked everywhere: the same 400 on every route.
                negotiate_language(request, runtime_of(request).languages)
            if len(request.query.get("_", "")) > MAX_PARAM_LENGTH:
                # Ignored, yet bounded like every parameter (and as the document says).
                raise BadParameter("_", "too_long", maximum=MAX_PARAM_LENGTH)
        result = await handler(request)
        if not isinstance(result, ApiResult):
            return result
        if route is not None and "fields" in request.query and "fields" in route.query_names:
            result = select_fields(result, request.query, item_fields(router, route))
        return render(request, result, sources)

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
                    response = problem_response(exc, request.path, problem_language(request))
            else:
                hit = cached(request)
                response = hit if hit is not None else await answer(request, handler)
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
        raise _no_endpoint(request)
    if not permitted:
        raise ApiError(403, "Forbidden", "origin_not_allowed")
    # GET everywhere; other methods where a route declares them (subscriptions): aiohttp
    # matched no OPTIONS route, and its 405 lists the methods the path has.
    allowed = {"GET", "HEAD"}
    refusal = request.match_info.http_exception
    if isinstance(refusal, web.HTTPMethodNotAllowed):
        allowed.update(m for m in refusal.allowed_methods if m != "OPTIONS")
    if method not in allowed:
        raise ApiError(405, "Method not allowed", "read_only", fields={"method": method})
    requested = request.headers.get("Access-Control-Request-Headers", "")
    headers = [h.strip() for h in requested.split(",") if h.strip()]
    refused = [h for h in headers if h.lower() not in CORS_ALLOWED_REQUEST_HEADERS]
    if refused:
        raise ApiError(
            403, "Forbidden", "header_not_allowed", fields={"headers": ", ".join(refused)}
        )
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = ", ".join([*sorted(allowed), "OPTIONS"])
    if headers:
        response.headers["Access-Control-Allow-Headers"] = ", ".join(headers)
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def _problem_for(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    """aiohttp's own errors (no route, wrong method...) as problem documents."""
    if isinstance(exc, web.HTTPNotFound):
        error = _no_endpoint(request)
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        error = ApiError(
            405,
            "Method not allowed",
            "method_not_allowed",
            headers={"Allow": allowed},
            fields={"method": request.method, "allowed": allowed},
        )
    else:
        error = ApiError(exc.status, exc.reason, "http_error", fields={"status": exc.status})
    return problem_response(error, request.path, problem_language(request))


def _no_endpoint(request: web.Request) -> ApiError:
    return ApiError(
        404,
        "Not found",
        "no_endpoint",
        fields={"path": request.path},
    )


def problem_language(request: web.Request) -> str:
    """The language of a problem: the negotiated one; when ``?lang=`` is the very problem,
    the one ``Accept-Language`` negotiates."""
    languages = runtime_of(request).languages
    try:
        return negotiate_language(request, languages)
    except BadParameter:
        return language_from_header(request.headers.get("Accept-Language", ""), languages)


def _internal_error(request: web.Request) -> web.StreamResponse:
    incident = uuid.uuid4().hex[:12]
    log.exception("unhandled error on %s %s (incident %s)", request.method, request.path, incident)
    error = ApiError(
        500,
        "Internal error",
        "internal_error",
        fields={"incident": incident},
    )
    return problem_response(error, request.path, problem_language(request))


def declared_route(request: web.Request, router: ApiRouter) -> Route | None:
    """The declaration of the route a request matched, None for unmatched paths."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return router.lookup(request.method, resource.canonical)


def check_query_names(request: web.Request, route: Route) -> None:
    """Reject query parameters the route does not declare, suggesting the close one."""
    known = route.query_names
    for name in request.query:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            if close:
                raise BadParameter(name, "unknown_parameter", suggestion=repr(close[0]))
            if known:
                raise BadParameter(
                    name, "unknown_parameter_accepted", accepted=", ".join(sorted(known))
                )
            raise BadParameter(name, "unknown_parameter_none")

"""The aiohttp application: routes of the core and of every connector type, conventions,
and the runtime's start and stop tied to the application's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from aggregator.api.admin_routes import register_admin_routes
from aggregator.api.admin_throttle import ADMIN_FAILURES_KEY, AdminFailures
from aggregator.api.catalog import register_catalog
from aggregator.api.conventions import conventions_middleware
from aggregator.api.core_routes import OPENAPI_KEY, register_core_routes
from aggregator.api.features import register_features
from aggregator.api.home import register_home
from aggregator.api.openapi import OpenApiDocument
from aggregator.api.operator import operator_guard
from aggregator.api.problem_routes import register_problem_routes
from aggregator.api.ratelimit import Buckets, MemoryBuckets, RateLimiter, RedisBuckets
from aggregator.api.response_cache import ResponseCache
from aggregator.api.routing import ApiRouter
from aggregator.api.status_page import register_status_page
from aggregator.api.stream import install_stream, register_stream
from aggregator.notify.routes import register_subscription_routes
from aggregator.runtime import RUNTIME, Runtime

ROUTER_KEY = web.AppKey("beffroi.router", ApiRouter)
#: The response micro-cache, when it is on (for what it holds: tests, diagnostics).
RESPONSE_CACHE_KEY = web.AppKey("beffroi.response_cache", ResponseCache)
log = logging.getLogger(__name__)


def reload_on_hangup(runtime: Runtime) -> None:
    """SIGHUP reloads the configuration file; an invalid one is logged and ignored."""
    path = runtime.config.source_path
    if path is None or not hasattr(signal, "SIGHUP"):
        return
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        from aggregator.config import ConfigError
        from aggregator.reload import reload_file

        try:
            await reload_file(runtime, path)
        except ConfigError as exc:
            log.error("SIGHUP: the new configuration is invalid; keeping the running one\n%s", exc)
        except OSError as exc:
            log.error("SIGHUP: cannot read %s (%s); keeping the running one", path, exc)

    def on_hangup() -> None:
        task = loop.create_task(reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    # Not the main thread (tests), or no signals on this platform: no reload on SIGHUP.
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_hangup)


def _buckets(runtime: Runtime) -> Buckets:
    limits = runtime.config.server.rate_limit
    store = runtime.store
    if store.shared:
        from aggregator.store.redis_store import RedisStore

        assert isinstance(store, RedisStore)
        return RedisBuckets(store.client, store.prefix, limits.rate, limits.burst)
    return MemoryBuckets(limits.rate, limits.burst)


def build_router(runtime: Runtime) -> ApiRouter:
    router = ApiRouter()
    register_core_routes(router)
    register_catalog(router)
    register_status_page(router)
    register_admin_routes(router)
    register_home(router)
    register_stream(router)
    register_problem_routes(router)
    register_subscription_routes(router)
    for connector_type in runtime.connector_types.values():
        connector_type.register_routes(router)
    # After the connectors: its schemas refer to theirs.
    register_features(router, runtime.connector_types.values())
    return router


def create_app(runtime: Runtime, *, poll: bool = True) -> web.Application:
    """The application serving ``runtime``; polling starts with the app unless ``poll`` is False."""
    router = build_router(runtime)
    limits = runtime.config.server.rate_limit
    limiter = RateLimiter(limits, _buckets(runtime)) if limits.enabled else None
    ttl = runtime.config.server.response_cache_ttl
    cache = None
    if ttl is not None:
        # Each outcome's counter looked up once (``labels()`` takes a lock).
        counters = {o: runtime.metrics.response_cache.labels(o) for o in ("hit", "miss", "pass")}
        cache = ResponseCache(
            ttl,
            runtime.answer_generation,
            languages=runtime.languages,
            max_bytes=runtime.config.server.response_cache_bytes,
            count=lambda outcome: counters[outcome].inc(),
        )
    conventions = conventions_middleware(
        runtime.metrics, runtime.config.server.cors_origins, router, runtime, limiter, cache
    )
    middlewares = [conventions]
    operator_port = runtime.config.server.operator_port
    if operator_port is not None:
        middlewares.append(operator_guard(operator_port))
    app = web.Application(
        middlewares=middlewares,
        # Nothing we serve accepts a body; refuse big ones early.
        client_max_size=64 * 1024,
    )
    app[RUNTIME] = runtime
    app[ROUTER_KEY] = router
    document = OpenApiDocument(router)
    # Built now: a parameter schema that cannot be written fails the start, not a request.
    document.body(runtime)
    app[OPENAPI_KEY] = document
    app[ADMIN_FAILURES_KEY] = AdminFailures()
    if cache is not None:
        app[RESPONSE_CACHE_KEY] = cache
    router.install(app)
    install_stream(app, router, runtime)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await runtime.start(poll=poll)
        reload_on_hangup(runtime)
        yield
        await runtime.stop()

    app.cleanup_ctx.append(lifecycle)
    return app

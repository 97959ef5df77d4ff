"""The aiohttp application: routes of the core and of every connector type, conventions,
and the runtime's start and stop tied to the application's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from aggregator.api.conventions import (
    cors_middleware,
    observe_middleware,
    problems,
    render_middleware,
    security_headers,
)
from aggregator.api.core_routes import OPENAPI_KEY, openapi_bytes, register_core_routes
from aggregator.api.ratelimit import Buckets, MemoryBuckets, RedisBuckets, rate_limit_middleware
from aggregator.api.routing import ApiRouter
from aggregator.api.status_page import register_status_page
from aggregator.runtime import RUNTIME, Runtime

ROUTER_KEY = web.AppKey("beffroi.router", ApiRouter)


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
    register_status_page(router)
    for connector_type in runtime.connector_types.values():
        connector_type.register_routes(router)
    return router


def create_app(runtime: Runtime, *, poll: bool = True) -> web.Application:
    """The application serving ``runtime``; polling starts with the app unless ``poll`` is False."""
    router = build_router(runtime)
    middlewares = [
        observe_middleware(runtime.metrics),
        security_headers,
        cors_middleware(runtime.config.server.cors_origins),
    ]
    limits = runtime.config.server.rate_limit
    if limits.enabled:
        middlewares.append(rate_limit_middleware(limits, _buckets(runtime)))
    middlewares += [problems, render_middleware(router, runtime)]
    app = web.Application(
        middlewares=middlewares,
        # Nothing we serve accepts a body; refuse big ones early.
        client_max_size=64 * 1024,
    )
    app[RUNTIME] = runtime
    app[ROUTER_KEY] = router
    app[OPENAPI_KEY] = openapi_bytes(router)
    router.install(app)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await runtime.start(poll=poll)
        yield
        await runtime.stop()

    app.cleanup_ctx.append(lifecycle)
    return app

"""Operator routes kept off the public port when ``server.operator_port`` is set.

The status page, the sources' statuses, the metrics and the admin API tell an operator what
runs where (sources' URLs, states, error classes, request rates); a resident's app needs none
of them. With an operator port, the process also listens there (on ``server.operator_host``,
loopback by default), those routes answer only on it, and the public port answers 404 for
them as for any unknown path — so a proxy in front need not know the list. Health checks stay
on both: load balancers probe the public port. None of these answers is kept by the response
cache (they are not cacheable JSON), so none can be carried from one port to the other; the
test of this module checks that too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

#: Route templates served only on the operator port when there is one.
OPERATOR_ROUTES = frozenset({"/", "/v1/sources", "/v1/sources/{source_id}", "/metrics"})
ADMIN_PREFIX = "/v1/admin/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_operator_route(template: str) -> bool:
    return template in OPERATOR_ROUTES or template.startswith(ADMIN_PREFIX)


Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def operator_guard(operator_port: int) -> Middleware:
    """A middleware answering 404 for operator routes reached on another port."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None and is_operator_route(resource.canonical):
            sockname = request.transport.get_extra_info("sockname") if request.transport else None
            if not sockname or sockname[1] != operator_port:
                raise web.HTTPNotFound()  # answered as any unknown path is
        return await handler(request)

    return guard

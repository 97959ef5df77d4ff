"""Dropping connections that do not send their request headers in time (slowloris).

aiohttp bounds how long a connection may sit idle between requests (``keepalive_timeout``)
but not how long a request's headers may take to arrive: a client that sends one header byte
now and then holds its connection, and a file descriptor, forever. Thousands of them exhaust
the process's descriptors, after which ``accept()`` fails for everyone.

So each connection here gets a deadline, ``server.header_timeout``, to deliver a complete set
of request headers: from when it connects, and on a kept-alive connection from the first byte
of each following request (the idle wait before that byte is ``keepalive_timeout``'s). The
deadline is cancelled as soon as the headers are parsed; request bodies and long responses
(live streams) are not timed by it. A connection still waiting for its headers at the deadline
is closed without an answer, like aiohttp closes an idle kept-alive one.

aiohttp has no setting for this, nor a public hook for the protocol class its server builds:
:class:`HeaderTimeoutRunner` overrides ``AppRunner._make_server`` to serve with
:class:`HeaderTimeoutServer`, whose connections are :class:`HeaderTimeoutHandler`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class HeaderTimeoutHandler(web.RequestHandler):
    """aiohttp's connection protocol, plus a deadline for each request's headers."""

    __slots__ = ("_header_deadline", "_header_timeout")

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        # aiohttp counts a request as soon as its headers are parsed (its body may follow).
        requests_before = self._request_count
        super().data_received(data)
        if self._request_count != requests_before:
            self._disarm()
        elif self._header_deadline is None and self._waiting_for_a_request():
            # The first bytes of the next request on a kept-alive connection.
            self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_a_request(self) -> bool:
        """Whether the connection is between requests: no request is queued or being handled.

        (aiohttp's own idle test, as in ``_process_keepalive``.)
        """
        return self._waiter is not None and not self._waiter.done()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self._loop.call_later(self._header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if self._waiting_for_a_request():
            # Debug only: a slowloris attack would otherwise write one line per connection.
            log.debug("no request headers within %gs: closing the connection", self._header_timeout)
            self.force_close()


class HeaderTimeoutServer(web.Server):
    """aiohttp's low-level server, making :class:`HeaderTimeoutHandler` connections."""

    def __init__(self, handler: Any, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.header_timeout = header_timeout

    def __call__(self) -> web.RequestHandler:
        return HeaderTimeoutHandler(
            self, loop=self._loop, header_timeout=self.header_timeout, **self._kwargs
        )


class HeaderTimeoutRunner(web.AppRunner):
    """An ``AppRunner`` whose connections must send their headers within ``header_timeout``."""

    __slots__ = ("_header_timeout",)

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        # The app's own server (after its startup hooks), rebuilt with the same settings.
        server = await super()._make_server()
        return HeaderTimeoutServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            header_timeout=self._header_timeout,
            **server._kwargs,
        )

"""Serving until SIGTERM/SIGINT, then stopping without failing a single request.

Closing a listening socket makes the kernel reset the connections still waiting in its
accept queue: clients that had connected, and sent their request, would get "connection
reset" during a graceful stop. So before closing, the queue is drained — every waiting
connection is accepted and handed to the server — and only then is the socket closed; the
requests under way then finish (up to the shutdown timeout) before the process exits.

Each connection has ``header_timeout`` to send its request headers (see
:mod:`aggregator.header_timeout`), and the process may hold as many descriptors as its hard
limit allows: at the usual soft limit of 1,024, a thousand idle connections were enough to make
``accept()`` fail for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import socket
import sys

from aiohttp import web

from aggregator.header_timeout import HeaderTimeoutRunner
from aggregator.stop_report import REPORT_AFTER_S, report_after

log = logging.getLogger(__name__)

#: aiohttp refuses longer request lines itself, in plain text, before any middleware: let
#: a URL with several long parameters reach the API, which answers why in problem+json.
HTTP_LIMITS = {"max_line_size": 32768}
#: How long a stop waits at most for connections just accepted to send their first request.
FIRST_REQUEST_GRACE_S = 2.0
#: How long a thread may keep the GIL while another waits for it (CPython's default: 5 ms).
#: Feeds are applied in worker threads while the event loop answers requests; whenever the
#: loop lets the GIL go (numpy does, inside a board), getting it back can cost a whole
#: interval, several times per board. At 1 ms the worst board during a big realtime apply
#: took about half as long in bench/gtfs_rt_apply.py; switching more often costs nothing
#: measurable when one thread works alone, the usual case.
SWITCH_INTERVAL_S = 0.001


def tune_interpreter() -> None:
    """Interpreter settings of a serving process (see :data:`SWITCH_INTERVAL_S`)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def raise_open_files_limit() -> None:
    """Raise the soft limit on open descriptors (one per connection) to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        log.info("open files limit: %d (soft and hard)", soft)
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        # e.g. an unlimited hard limit the kernel caps lower (macOS): keep the soft one.
        log.warning("open files limit: %d (hard %d), could not raise it: %s", soft, hard, exc)
        return
    log.info("open files limit: raised from %d (soft) to %d (hard)", soft, hard)


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_timeout: float,
    header_timeout: float,
    keepalive_timeout: float,
    reuse_port: bool = False,
    operator: tuple[str, int] | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` (and on ``operator``'s address too, for the operator
    routes: see aggregator.api.operator) until SIGTERM or SIGINT."""
    tune_interpreter()
    raise_open_files_limit()
    await _check_address_free(host, port, reuse_port)
    if operator is not None:
        await _check_address_free(*operator, reuse_port)
    runner = HeaderTimeoutRunner(
        app,
        header_timeout=header_timeout,
        keepalive_timeout=keepalive_timeout,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        **HTTP_LIMITS,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    log.info("serving on http://%s:%d", host, port)
    operator_site = None
    if operator is not None:
        operator_site = web.TCPSite(runner, *operator, reuse_port=reuse_port or None)
        await operator_site.start()
        log.info("operator routes on http://%s:%d only", *operator)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        log.info("stopping: finishing the requests under way")
        report_after(shutdown_timeout + REPORT_AFTER_S)
        if operator_site is not None:
            await operator_site.stop()
        await _drain_and_close(runner, site, min(header_timeout, FIRST_REQUEST_GRACE_S))
    finally:
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _check_address_free(host: str, port: int, reuse_port: bool) -> None:
    """Raise OSError now if the address cannot be listened on (e.g. the port is taken).

    The application's start-up starts the pollers; finding the port taken only after that
    meant a traceback from every poll cancelled on the way out. Binding the same way
    ``TCPSite`` will (same host resolution, same options) and letting go at once leaves a
    microsecond race, which only brings back the old noisy failure.
    """
    loop = asyncio.get_running_loop()
    probe = await loop.create_server(
        asyncio.Protocol, host, port, reuse_port=reuse_port or None, start_serving=False
    )
    probe.close()
    await probe.wait_closed()


async def _drain_and_close(runner: web.AppRunner, site: web.TCPSite, grace_s: float) -> None:
    server = site._server  # the asyncio.Server: aiohttp has no public handle on it
    if server is None or runner.server is None:
        return
    waiting: list[socket.socket] = []
    listeners: list[socket.socket] = [s.dup() for s in server.sockets]
    try:
        for listener in listeners:
            listener.setblocking(False)
            while True:
                try:
                    connection, _address = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                waiting.append(connection)
        # No await since the last accept: the window for a new connection is microseconds.
        server.close()
    finally:
        for listener in listeners:
            listener.close()
    loop = asyncio.get_running_loop()
    for connection in waiting:
        with contextlib.suppress(OSError):
            await loop.connect_accepted_socket(runner.server, sock=connection)
    if waiting:
        log.info("took %d connection(s) waiting to be accepted before closing", len(waiting))
    await _until_first_requests_read(runner.server, grace_s)


async def _until_first_requests_read(server: web.Server, grace_s: float) -> None:
    """Wait until every open connection has sent its first request, up to ``grace_s``.

    aiohttp's shutdown finishes the requests under way but closes the connections it sees as
    idle, and a connection accepted a moment ago whose request has not been read yet looks
    idle: its client got "server disconnected" for a request it had sent. A fixed pause
    (50 ms) was enough on a quiet machine and not under load, so the test of a stop under
    load failed now and then. Waiting for each first request makes the outcome depend on
    the client, not on timing; a client that sends nothing is waited for no longer than the
    grace (its headers would time out anyway).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while loop.time() < deadline:
        # ``_request_count``: aiohttp counts the requests a connection has read, and has no
        # public way to ask; a connection whose transport went is not waited for.
        if not any(
            handler._request_count == 0
            and handler.transport is not None
            and not handler.transport.is_closing()
            for handler in server.connections
        ):
            return
        await asyncio.sleep(0.005)

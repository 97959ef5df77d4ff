"""Slowloris: clients that hold connections by never finishing their request headers.

A real ``beffroi serve`` process, raw sockets on 127.0.0.1. Before the defence a half-sent
request was held for aiohttp's keep-alive timeout (an hour), and at the usual soft limit of
1,024 descriptors ``accept()`` failed for everyone.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hostile.serve_support import (
    WAIT_S,
    raise_own_open_files_limit,
    running_server,
    write_config,
)

#: A request line and a header, the blank line that would end the headers never sent.
HALF_SENT = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
FULL = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@contextmanager
def half_sent_requests(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections, each having sent part of a request's headers."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = connected(port)
            sock.sendall(HALF_SENT)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def connected(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)


def closed_by_the_server(sockets: list[socket.socket], within: float = WAIT_S) -> int:
    """How many of ``sockets`` the server closes (EOF or reset) within ``within`` seconds."""
    closed = 0
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + within
        while closed < len(sockets) and time.monotonic() < deadline:
            for key, _events in selector.select(timeout=0.5):
                try:
                    data = key.fileobj.recv(4096)  # type: ignore[union-attr]
                except ConnectionError:
                    data = b""
                assert data == b"", f"the server answered a half-sent request: {data[:80]!r}"
                selector.unregister(key.fileobj)
                closed += 1
    return closed


def response_to(sock: socket.socket) -> bytes:
    """The bytes of one small response on ``sock`` (headers and body)."""
    sock.settimeout(WAIT_S)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection instead of answering"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_half_sent_requests_are_closed_after_the_header_timeout(tmp_path: Path) -> None:
    """300 connections that never finish their headers are all closed by the server, while
    /healthz keeps answering."""
    raise_own_open_files_limit(1000)
    config = tmp_path / "beffroi.yaml"
    write_config(config, "a", server="header_timeout: 1s")
    with running_server(config) as server, half_sent_requests(server.port, 300) as sockets:
        assert server.get("/healthz").status_code == 200
        assert closed_by_the_server(sockets) == len(sockets)
        assert server.get("/healthz").status_code == 200


def test_a_slow_next_request_on_a_kept_alive_connection_is_closed(tmp_path: Path) -> None:
    """An idle kept-alive connection is left open past the header timeout (keep-alive has its
    own), but once a next request starts, its headers get the header timeout too."""
    config = tmp_path / "beffroi.yaml"
    write_config(config, "a", server="header_timeout: 1s")
    with running_server(config) as server, connected(server.port) as sock:
        sock.sendall(FULL)
        assert response_to(sock).startswith(b"HTTP/1.1 200")
        time.sleep(2.5)  # idle for more than header_timeout: still open
        sock.sendall(FULL)
        assert response_to(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(HALF_SENT)  # then a next request that never ends
        assert closed_by_the_server([sock]) == 1


def test_headers_sent_in_pieces_within_the_timeout_are_answered(tmp_path: Path) -> None:
    """A client that sends its headers in several packets, in time, is served normally."""
    config = tmp_path / "beffroi.yaml"
    write_config(config, "a", server="header_timeout: 30s")  # ample on a loaded machine
    with running_server(config) as server, connected(server.port) as sock:
        for piece in (FULL[:10], FULL[10:30], FULL[30:]):
            sock.sendall(piece)
            time.sleep(0.2)
        assert response_to(sock).startswith(b"HTTP/1.1 200")


def test_more_connections_than_the_soft_descriptor_limit_are_accepted(tmp_path: Path) -> None:
    """Started with a soft limit of 256 open files, the server raises it to the hard limit
    (and logs both): it holds 400 half-sent requests and still accepts /healthz."""
    raise_own_open_files_limit(1000)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 1000:
        pytest.skip(f"needs a finite hard limit on open files of at least 1000, not {hard}")
    config = tmp_path / "beffroi.yaml"
    write_config(config, "a")  # the default header timeout: the connections stay open
    with running_server(config, open_files=256) as server:
        assert f"open files limit: raised from 256 (soft) to {hard} (hard)" in server.log()
        with half_sent_requests(server.port, 400):
            assert server.get("/healthz").status_code == 200
        log = server.log()
    # asyncio's words when accept() fails for want of descriptors.
    assert "socket.accept() out of system resource" not in log, log
    assert "Too many open files" not in log, log

"""Malformed HTTP requests cost the log one short line each, then one summary line: a flood of
garbage cannot fill the disk with aiohttp's tracebacks, nor write the client's bytes into it."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from pathlib import Path

import httpx
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from aggregator.badrequests import LINES_PER_WINDOW, MalformedRequestLog
from aggregator.logs import LOG_FORMAT, RedactingFormatter

from .logging_support import LoggedServer

MARKER = "EVIL-MARKER"
GARBAGE = [
    f"GET /{MARKER}\x00\x1b[31m HTTP/1.1\r\n\r\n".encode(),  # control bytes in the path
    f"GET / HTTP/1.1\r\nHost: x\r\n{MARKER} Bad Header\r\n\r\n".encode(),
    f"GET /{MARKER} HTTP/9.9\r\n\r\n".encode(),
    f"GET / HTTP/1.1\r\nContent-Length: {MARKER}\r\n\r\n".encode(),
]
REQUESTS = 200
LINE = re.compile(r"malformed HTTP request from 127\.0\.0\.1: .+")
SUMMARY = re.compile(r"(\d+) more malformed HTTP requests in the last \d+ s, from 127\.0\.0\.1")


async def send_garbage(port: int, payload: bytes) -> bytes:
    """One connection: send ``payload``, read what comes back until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), timeout=60)
    finally:
        writer.close()


async def test_a_flood_of_garbage_requests_costs_a_few_short_lines(tmp_path: Path):
    """200 malformed requests: each still gets its 400, the first few get one short line each
    (client address, what was wrong), the rest one summary line; no traceback, no client
    bytes, and the server still answers."""
    config = tmp_path / "beffroi.yaml"
    config.write_text("connectors: []\n")
    server = LoggedServer(config, tmp_path / "server.log", level="INFO")
    try:
        await server.wait_for(lambda sources: sources == {})
        before = len(server.log.read_bytes())
        answers = []
        for index in range(REQUESTS):
            answers.append(await send_garbage(server.port, GARBAGE[index % len(GARBAGE)]))
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.get(server.base + "/healthz")).status_code == 200
        assert await server.stop() == 0
    finally:
        server.kill()
    assert all(re.match(rb"HTTP/1\.[01] 400 ", answer) for answer in answers)
    output = server.output()
    added = output.encode()[before:].decode()
    lines = [line for line in added.splitlines() if "malformed HTTP request" in line]
    one_by_one = [line for line in lines if LINE.search(line)]
    summarised = sum(int(match[1]) for match in SUMMARY.finditer(added))
    assert len(one_by_one) == LINES_PER_WINDOW
    assert len(one_by_one) + summarised == REQUESTS
    assert all(len(line) < 200 for line in lines)
    assert len(added.encode()) < 200 * (LINES_PER_WINDOW + 5)  # was ~700 bytes per request
    assert "Traceback" not in output
    assert "Error handling request" not in output
    assert MARKER not in output
    assert "\x1b" not in output


def test_windows_roll_over_and_other_errors_keep_their_traceback():
    """After the first lines of a window the rest are counted; the next window starts with a
    summary of the last one; an error that is not a malformed request is left alone."""
    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    server_log = logging.getLogger("tests.hostile.aiohttp-server")
    summary_log = logging.getLogger("aggregator.badrequests")
    for logger in (server_log, summary_log):
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    server_log.propagate = summary_log.propagate = False
    flood = MalformedRequestLog(lines_per_window=2, window_s=60, clock=lambda: now[0])
    server_log.addFilter(flood)
    try:
        for address in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1"):
            error = BadHttpMessage("Invalid header token:\n\n  b'xx'\n   ^")
            server_log.error("Error handling request from %s", address, exc_info=error)
        assert "more malformed" not in stream.getvalue()
        now[0] = 61.0
        too_long = LineTooLong(bytearray(b"aaaa"), 8190)
        server_log.error("Error handling request from %s", "10.0.0.3", exc_info=too_long)
        try:
            raise RuntimeError("a handler bug")
        except RuntimeError:
            server_log.exception("Unhandled exception")
    finally:
        server_log.removeFilter(flood)
        for logger in (server_log, summary_log):
            logger.removeHandler(handler)
        summary_log.propagate = True
    text = stream.getvalue()
    lines = text.splitlines()
    assert lines[0].endswith(
        "INFO tests.hostile.aiohttp-server: malformed HTTP request from 10.0.0.1: "
        "Invalid header token (BadHttpMessage)"
    )
    assert (
        "3 more malformed HTTP requests in the last 60 s, from 10.0.0.1 (2), 10.0.0.2 (1)"
        in (lines[2])
    )
    assert lines[3].endswith(
        "malformed HTTP request from 10.0.0.3: Got more than 8190 bytes when reading (LineTooLong)"
    )
    assert "RuntimeError: a handler bug" in text and "Traceback" in text
    assert "aaaa" not in text

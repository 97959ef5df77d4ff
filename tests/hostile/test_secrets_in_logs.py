"""No secret reaches the log: not through httpx's request lines, httpcore's or redis's DEBUG
records, tracebacks, ``extra`` fields, nor after a SIGHUP reload brings new secrets.

The end-to-end test runs the real server at DEBUG against a real upstream and a real
redis-server that requires a password, with secrets in a URL query, a URL's userinfo, a
configured header, the Redis URL and (after a reload) a URL path, and searches the process's
whole output for every secret in every spelling a URL or a header could give it.
"""

from __future__ import annotations

import base64
import io
import logging
import signal
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from redis_server import RedisServer, free_port
from upstream_server import Reply

from aggregator.logs import LOG_FORMAT, RedactingFormatter, remember_secrets

from .logging_support import LoggedServer

QUERY_KEY = "qK3y-7f9a2b1c"
USER_PASSWORD = "Pa55:w@rd/x9"
HEADER_KEY = "hdr-S3cret-Value-42"
REDIS_PASSWORD = "r3dis/Pw+z 7"
RELOAD_KEY = "pathSecret-0d4e1f"  # only the reloaded configuration uses it
ROWS = b'[{"code": "P1", "nom": "Gare"}, {"code": "P2", "nom": "Euralille"}]'
ENV = {
    "T_QUERY_KEY": QUERY_KEY,
    "T_USER_PASS": quote(USER_PASSWORD, safe=""),
    "T_HEADER_KEY": HEADER_KEY,
    "T_REDIS_PASS": quote(REDIS_PASSWORD, safe=""),
    "T_RELOAD_KEY": RELOAD_KEY,
}


def spellings(secret: str) -> set[str]:
    """Every way a secret could be written out: raw, percent-encoded (both hex cases, either
    space form, with or without ``/`` kept), and inside a Basic authorization header."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    forms |= {form.lower() for form in forms if "%" in form}
    forms.add(base64.b64encode(f"feeder:{secret}".encode()).decode())
    return forms


def source(source_id: str, url: str, extra: str = "") -> str:
    return f"""
  - id: {source_id}
    type: json_records
    url: "{url}"
    refresh: 1s
    retries: 0
    id_field: code
    fields:
      name: nom{extra}
"""


@pytest.fixture
def locked_redis(tmp_path):
    """A real redis-server that requires the password REDIS_PASSWORD."""
    try:
        server = RedisServer(tmp_path, password=REDIS_PASSWORD)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    server.start()
    yield server
    server.stop()


async def test_no_secret_reaches_a_debug_log(tmp_path: Path, upstream, locked_redis):
    """A DEBUG run polling with secrets in a query, userinfo, a header and the Redis URL, then
    reloaded (SIGHUP) with a new secret in a URL path: the secrets appear nowhere in the
    output, while the output does show the requests, with the secrets masked."""
    upstream.route("/a.json", Reply(body=ROWS))
    upstream.route("/b.json", [Reply(status=500), Reply(body=ROWS)])
    upstream.route(f"/{RELOAD_KEY}/d.json", Reply(body=ROWS))
    host = f"127.0.0.1:{upstream.port}"
    closed = free_port()
    store = f"""server:
  cursor_secret: secrets-test-cursor-secret
store:
  backend: redis
  url: "redis://:${{T_REDIS_PASS}}@127.0.0.1:{locked_redis.port}/0"
  key_prefix: "secrets-test:"
connectors:"""
    sources = (
        source("a", f"http://{host}/a.json?apikey=${{T_QUERY_KEY}}&page=1", "\n    headers:\n"
               "      X-Api-Key: ${T_HEADER_KEY}")
        + source("b", f"http://feeder:${{T_USER_PASS}}@{host}/b.json")
        + source("c", f"http://127.0.0.1:{closed}/c.json?apikey=${{T_QUERY_KEY}}")
    )  # fmt: skip
    config = tmp_path / "beffroi.yaml"
    config.write_text(store + sources)
    server = LoggedServer(config, tmp_path / "server.log", env=ENV)
    try:
        await server.wait_for(
            lambda s: (
                s["a"]["record_count"] == 2
                and s["b"]["record_count"] == 2
                and s["c"]["consecutive_failures"] > 0
            )
        )
        config.write_text(store + sources + source("d", f"http://{host}/${{T_RELOAD_KEY}}/d.json"))
        server.process.send_signal(signal.SIGHUP)
        await server.wait_for(lambda s: "d" in s and s["d"]["record_count"] == 2)
        assert await server.stop() == 0
    finally:
        server.kill()
    output = server.output()

    assert upstream.requests("/a.json")[0]["X-Api-Key"] == HEADER_KEY  # the secrets were used
    assert upstream.requests("/b.json")[0]["Authorization"].startswith("Basic ")
    # The log did record the requests (httpx at INFO, httpcore at DEBUG), masked.
    assert f"HTTP Request: GET http://{host}/a.json?apikey=***&page=1" in output
    assert "/***/d.json" in output
    assert "source b is failing: upstream answered 500" in output
    assert "connect_tcp.started" in output  # httpcore's DEBUG records went through
    assert "configuration reloaded: added ['d']" in output
    for secret in (QUERY_KEY, USER_PASSWORD, HEADER_KEY, REDIS_PASSWORD, RELOAD_KEY):
        for form in spellings(secret):
            assert form not in output, f"{form!r} (a spelling of a secret) is in the log"


def test_tracebacks_and_extra_fields_are_redacted():
    """The formatter masks the whole record: message, arguments, an ``extra`` field the format
    shows, and the traceback of an exception whose text carries a secret URL."""
    remember_secrets(["known-s3cret-value"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(LOG_FORMAT + " [%(upstream)s]"))
    logger = logging.getLogger("tests.hostile.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("GET https://bob:hunter2pw@h.example/x?token=tok-987654 failed")
        except ValueError:
            logger.exception(
                "poll of %s failed",
                "known-s3cret-value",
                extra={"upstream": "key=known-s3cret-value"},
            )
        logger.warning(
            "sent headers {'Authorization': 'Bearer eyJhbGciOi.x.y'}", extra={"upstream": "-"}
        )
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text and "ValueError" in text
    for secret in ("known-s3cret-value", "hunter2pw", "tok-987654", "eyJhbGciOi"):
        assert secret not in text
    assert "https://bob:***@h.example/x?token=***" in text
    assert "'Authorization': 'Bearer ***'" in text


async def test_workers_children_redact_their_logs_too(tmp_path: Path, upstream, locked_redis):
    """``serve --workers 2`` at DEBUG: the supervising parent and every child process (two API
    processes, one poller) write through the redactor."""
    upstream.route("/a.json", Reply(body=ROWS))
    config = tmp_path / "beffroi.yaml"
    config.write_text(
        f"""server:
  cursor_secret: workers-test-cursor-secret
store:
  backend: redis
  url: "redis://:${{T_REDIS_PASS}}@127.0.0.1:{locked_redis.port}/0"
  key_prefix: "workers-test:"
connectors:"""
        + source("a", f"http://127.0.0.1:{upstream.port}/a.json?apikey=${{T_QUERY_KEY}}")
    )
    server = LoggedServer(config, tmp_path / "server.log", env=ENV, extra=("--workers", "2"))
    try:
        # The poller serves its health endpoints on the same port: wait for all three.
        await server.wait_for_log(" started (role ", count=3)
        await server.wait_for(lambda s: s["a"]["record_count"] == 2)
        # Started is not yet stoppable: the SIGTERM handler comes a step later.
        await server.wait_until_children_catch_sigterm(3)
        assert await server.stop() == 0
    finally:
        server.kill()
    output = server.output()
    assert "supervising 3 processes: api, api, poller" in output
    assert output.count(" started (role ") == 3
    assert f"GET http://127.0.0.1:{upstream.port}/a.json?apikey=*** " in output
    for secret in (QUERY_KEY, REDIS_PASSWORD):
        for form in spellings(secret):
            assert form not in output, f"{form!r} (a spelling of a secret) is in the log"

"""Tests for aggregator.fetch, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from upstream_server import Reply

from aggregator.fetch import MAX_RETRY_WAIT, retry_after_seconds
from aggregator.fetch_body import human_bytes
from aggregator.fetch_errors import (
    BodyTooLarge,
    FetchError,
    LocalFileError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from aggregator.fetch_result import Validators
from aggregator.redact import Redactor

KB = 1000
#: Roomy: the fetches given these must succeed or fail for another reason than time.
LIMITS = {"timeout": 30.0, "max_bytes": 64 * KB}


async def test_success_returns_body_hash_type_and_validators(upstream, fetcher):
    """A 200 gives the body, its sha256, the content type and the response's validators."""
    body = b'[{"id": 1}]'
    headers = {"ETag": '"v1"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}
    upstream.route("/feed.json", Reply(body=body, headers=headers, content_type="application/json"))
    result = await fetcher.fetch(upstream.url("/feed.json"), **LIMITS)
    assert (result.status, result.body, result.attempts) == (200, body, 1)
    assert not result.not_modified
    assert result.content_hash == hashlib.sha256(body).hexdigest()
    assert result.content_type == "application/json"
    assert result.validators == Validators('"v1"', "Wed, 21 Oct 2015 07:28:00 GMT")
    assert result.url == upstream.url("/feed.json")


async def test_user_agent_and_caller_headers_are_sent(upstream, fetcher):
    """The Fetcher's user agent and the caller's extra headers reach the upstream."""
    upstream.route("/feed.json", Reply(body=b"{}"))
    await fetcher.fetch(upstream.url("/feed.json"), headers={"Accept": "text/csv"}, **LIMITS)
    received = upstream.requests("/feed.json")[0]
    assert received["User-Agent"] == "Beffroi-tests/0"
    assert received["accept"] == "text/csv"


async def test_etag_round_trip_gives_not_modified(upstream, fetcher):
    """The second fetch sends If-None-Match, gets a 304: empty body, validators kept."""
    upstream.route("/feed.json", Reply(body=b"[1, 2]", headers={"ETag": '"v1"'}))
    first = await fetcher.fetch(upstream.url("/feed.json"), **LIMITS)
    second = await fetcher.fetch(upstream.url("/feed.json"), validators=first.validators, **LIMITS)
    assert upstream.requests("/feed.json")[1]["If-None-Match"] == '"v1"'
    assert second.not_modified and second.status == 304
    assert (second.body, second.content_hash) == (b"", "")
    assert second.validators == first.validators == Validators(etag='"v1"')


async def test_changed_etag_gives_new_body(upstream, fetcher):
    """When the upstream's ETag changed, the stale If-None-Match gets the new body."""
    upstream.route("/feed.json", Reply(body=b"[3]", headers={"ETag": '"v2"'}))
    result = await fetcher.fetch(
        upstream.url("/feed.json"), validators=Validators(etag='"v1"'), **LIMITS
    )
    assert (result.not_modified, result.body, result.validators.etag) == (False, b"[3]", '"v2"')


async def test_last_modified_round_trip_gives_not_modified(upstream, fetcher):
    """Without an ETag, Last-Modified comes back as If-Modified-Since and earns a 304."""
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    upstream.route("/agenda.ics", Reply(body=b"BEGIN:VCALENDAR", headers={"Last-Modified": stamp}))
    first = await fetcher.fetch(upstream.url("/agenda.ics"), **LIMITS)
    second = await fetcher.fetch(upstream.url("/agenda.ics"), validators=first.validators, **LIMITS)
    received = upstream.requests("/agenda.ics")[1]
    assert received["If-Modified-Since"] == stamp
    assert "If-None-Match" not in received
    assert second.not_modified and second.validators == Validators(last_modified=stamp)


async def test_unasked_304_is_an_error(upstream, fetcher):
    """A 304 to a request that sent no validators is an error, not an empty success."""
    upstream.route("/feed.json", Reply(status=304))
    with pytest.raises(UpstreamHTTPError) as caught:
        await fetcher.fetch(upstream.url("/feed.json"), **LIMITS)
    assert caught.value.status == 304


async def test_slow_headers_time_out(upstream, fetcher):
    """A reply whose headers come after the deadline raises UpstreamTimeout."""
    upstream.route("/slow", Reply(body=b"late", delay=5))
    with pytest.raises(UpstreamTimeout) as caught:
        await fetcher.fetch(upstream.url("/slow"), timeout=0.3, max_bytes=KB, retries=0)
    assert caught.value.message == "no complete answer within 0.3s"
    assert caught.value.attempts == 1


async def test_trickled_body_times_out(upstream, fetcher):
    """A body trickled so slowly it cannot finish in time raises UpstreamTimeout, though every
    single read is quick."""
    upstream.route("/trickle", Reply(body=b"x" * 40, trickle=0.05))
    with pytest.raises(UpstreamTimeout):
        await fetcher.fetch(upstream.url("/trickle"), timeout=0.5, max_bytes=KB, retries=0)


async def test_trickled_body_within_deadline_succeeds(upstream, fetcher):
    """A chunked body that arrives in pieces, in time, is reassembled whole."""
    upstream.route("/trickle", Reply(body=b"abcdefgh", trickle=0.01, chunk_size=3))
    result = await fetcher.fetch(upstream.url("/trickle"), **LIMITS)
    assert result.body == b"abcdefgh"


async def test_timeouts_are_retried(upstream, fetcher, sleeps):
    """A timed-out attempt is retried; the message counts the attempts."""
    # A deadline the answered retry cannot overrun on a loaded machine, and a first reply far
    # past it.
    upstream.route("/slow", [Reply(delay=60), Reply(body=b"ok")])
    result = await fetcher.fetch(upstream.url("/slow"), timeout=2, max_bytes=KB, retries=1)
    assert (result.body, result.attempts, len(sleeps.delays)) == (b"ok", 2, 1)


async def test_declared_length_over_cap_is_rejected(upstream, fetcher):
    """A Content-Length over max_bytes raises BodyTooLarge, and is not retried."""
    upstream.route("/big", Reply(body=b"x" * 2 * KB))
    with pytest.raises(BodyTooLarge) as caught:
        await fetcher.fetch(upstream.url("/big"), timeout=2, max_bytes=KB)
    assert caught.value.message == "body exceeds the 1 KB cap"
    assert upstream.hits("/big") == 1


async def test_streamed_body_over_cap_is_rejected(upstream, fetcher):
    """A chunked body with no Content-Length is cut off once it exceeds max_bytes."""
    upstream.route("/big", Reply(body=b"x" * 2 * KB, chunked=True))
    async with httpx.AsyncClient() as client:  # the premise: nothing is declared up front
        assert "Content-Length" not in (await client.get(upstream.url("/big"))).headers
    with pytest.raises(BodyTooLarge):
        await fetcher.fetch(upstream.url("/big"), timeout=2, max_bytes=KB)


async def test_streamed_body_stops_at_cap_not_at_end(upstream, fetcher):
    """Reading stops as soon as the cap is passed: a long trickled body fails on size, not time."""
    upstream.route("/huge", Reply(body=b"x" * 200 * KB, trickle=0.01, chunk_size=KB))
    with pytest.raises(BodyTooLarge):
        # A deadline past the whole trickle (2 s): only the cap can end this fetch.
        await fetcher.fetch(upstream.url("/huge"), timeout=30, max_bytes=2 * KB, retries=0)


async def test_cap_applies_to_decoded_gzip(upstream, fetcher):
    """A small gzip body that inflates past max_bytes raises BodyTooLarge."""
    bomb = gzip.compress(b"0" * 100 * KB)
    assert len(bomb) < KB
    upstream.route("/bomb", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(BodyTooLarge):
        await fetcher.fetch(upstream.url("/bomb"), timeout=2, max_bytes=10 * KB)


async def test_gzip_body_is_decoded(upstream, fetcher):
    """A gzip-encoded body under the cap arrives decoded."""
    upstream.route("/gz", Reply(body=gzip.compress(b"hello"), headers={"Content-Encoding": "gzip"}))
    assert (await fetcher.fetch(upstream.url("/gz"), **LIMITS)).body == b"hello"


async def test_server_error_then_success_is_retried_with_backoff(upstream, fetcher, sleeps):
    """A 500 then a 200 succeeds on attempt 2, after a jittered delay within [0, 0.5] s."""
    upstream.route("/feed.json", [Reply(status=500), Reply(body=b"[]")])
    result = await fetcher.fetch(upstream.url("/feed.json"), **LIMITS)
    assert (result.body, result.attempts) == (b"[]", 2)
    assert len(sleeps.delays) == 1
    assert 0 <= sleeps.delays[0] <= 0.5


async def test_retries_exhausted_raise_with_attempt_count(upstream, fetcher, sleeps):
    """Three 503s with retries=2 raise after 3 attempts, with exponentially capped delays."""
    upstream.route("/down", Reply(status=503))
    with pytest.raises(UpstreamHTTPError) as caught:
        await fetcher.fetch(upstream.url("/down"), retries=2, **LIMITS)
    error = caught.value
    assert (error.status, error.attempts, error.retry_after) == (503, 3, None)
    assert error.message == "upstream answered 503 Service Unavailable after 3 attempts"
    assert upstream.hits("/down") == 3
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.5 and 0 <= sleeps.delays[1] <= 1.0


async def test_429_waits_exactly_retry_after(upstream, fetcher, sleeps):
    """A 429 with Retry-After: 2 sleeps exactly 2 s, then succeeds."""
    upstream.route(
        "/feed.json", [Reply(status=429, headers={"Retry-After": "2"}), Reply(body=b"1")]
    )
    result = await fetcher.fetch(upstream.url("/feed.json"), **LIMITS)
    assert sleeps.delays == [2.0]
    assert (result.body, result.attempts) == (b"1", 2)


async def test_long_retry_after_gives_up_without_sleeping(upstream, fetcher, sleeps):
    """A 503 asking for an hour raises at once with retry_after set, for the scheduler."""
    upstream.route("/busy", Reply(status=503, headers={"Retry-After": "3600"}))
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(upstream.url("/busy"), retries=2, **LIMITS)
    assert caught.value.retry_after == 3600
    assert caught.value.attempts == 1
    assert sleeps.delays == []
    assert upstream.hits("/busy") == 1


async def test_retry_after_is_reported_when_retries_run_out(upstream, fetcher, sleeps):
    """When the last attempt carried a short Retry-After, the error still reports it."""
    upstream.route("/busy", Reply(status=503, headers={"Retry-After": "5"}))
    with pytest.raises(UpstreamHTTPError) as caught:
        await fetcher.fetch(upstream.url("/busy"), retries=1, **LIMITS)
    assert (caught.value.retry_after, caught.value.attempts, sleeps.delays) == (5, 2, [5.0])


async def test_client_errors_are_not_retried(upstream, fetcher, sleeps):
    """A 404 raises UpstreamHTTPError after one attempt and no sleep."""
    with pytest.raises(UpstreamHTTPError) as caught:
        await fetcher.fetch(upstream.url("/missing"), retries=2, **LIMITS)
    assert (caught.value.status, caught.value.attempts) == (404, 1)
    assert caught.value.message == "upstream answered 404 Not Found"
    assert (upstream.hits("/missing"), sleeps.delays) == (1, [])


async def test_connection_refused_is_unreachable(fetcher, closed_port, sleeps):
    """Nothing listening on the port raises UpstreamUnreachable, after the retries."""
    url = f"http://127.0.0.1:{closed_port}/feed.json"
    with pytest.raises(UpstreamUnreachable) as caught:
        await fetcher.fetch(url, retries=1, **LIMITS)
    assert caught.value.message == "connection refused after 2 attempts"
    assert len(sleeps.delays) == 1


async def test_redirects_are_followed(upstream, fetcher):
    """A redirect is followed to the final body."""
    upstream.route("/old", Reply(status=301, headers={"Location": "/new"}))
    upstream.route("/new", Reply(body=b"moved"))
    assert (await fetcher.fetch(upstream.url("/old"), **LIMITS)).body == b"moved"


async def test_redirect_loop_is_an_error(upstream, fetcher):
    """A redirect loop stops after 5 hops with a plain FetchError."""
    upstream.route("/loop", Reply(status=302, headers={"Location": "/loop"}))
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(upstream.url("/loop"), **LIMITS)
    assert caught.value.message == "more than 5 redirects"
    assert upstream.hits("/loop") == 6


async def test_unsupported_scheme_is_refused(fetcher):
    """Schemes other than http, https and file are refused without any I/O."""
    with pytest.raises(FetchError, match="unsupported URL scheme 'ftp'"):
        await fetcher.fetch("ftp://example.org/feed.zip", **LIMITS)


async def test_secret_query_param_never_shows(upstream, fetcher):
    """An API key in the query is masked in result.url, error.url and str(error)."""
    upstream.route("/ok.json", Reply(body=b"{}"))
    result = await fetcher.fetch(upstream.url("/ok.json?apikey=s3cr3t-k3y"), **LIMITS)
    assert "s3cr3t-k3y" not in result.url and "apikey=***" in result.url
    upstream.route("/down.json", Reply(status=500))
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(upstream.url("/down.json?apikey=s3cr3t-k3y"), retries=0, **LIMITS)
    assert "s3cr3t-k3y" not in str(caught.value)
    assert "s3cr3t-k3y" not in caught.value.url


async def test_configured_secret_in_path_never_shows(fetcher, closed_port):
    """A secret the redactor knows is masked even in the URL path of a failure."""
    url = f"http://127.0.0.1:{closed_port}/feeds/t0ps3cret/gtfs.zip"
    with pytest.raises(UpstreamUnreachable) as caught:
        await fetcher.fetch(url, retries=0, redactor=Redactor(["t0ps3cret"]), **LIMITS)
    assert "t0ps3cret" not in str(caught.value)
    assert "/feeds/***/gtfs.zip" in str(caught.value)


async def test_relative_file_url(fetcher, tmp_path):
    """file:relative/path is read from base_dir, with a content type guessed from its name."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "stops.json").write_bytes(b"[]")
    result = await fetcher.fetch(
        "file:data/stops.json", base_dir=tmp_path, allow_file=True, **LIMITS
    )
    assert (result.body, result.status, result.content_type) == (b"[]", 200, "application/json")
    assert result.url == "file:data/stops.json"


async def test_absolute_file_url(fetcher, tmp_path):
    """file:///abs/path is read as is, base_dir or not."""
    path = tmp_path / "agenda.ics"
    path.write_bytes(b"BEGIN:VCALENDAR")
    result = await fetcher.fetch(path.as_uri(), allow_file=True, **LIMITS)
    assert result.body == b"BEGIN:VCALENDAR"


async def test_file_url_refused_unless_allowed(fetcher, tmp_path):
    """Without allow_file a file: URL is refused, and the error says which setting to change."""
    (tmp_path / "x.json").write_bytes(b"{}")
    with pytest.raises(LocalFileError, match=r"defaults\.allow_file_urls: true"):
        await fetcher.fetch("file:x.json", base_dir=tmp_path, **LIMITS)


async def test_missing_file_is_a_clear_error(fetcher, tmp_path):
    """A file: URL naming no file raises LocalFileError saying so."""
    with pytest.raises(LocalFileError, match=r"no such file: .*nope\.json"):
        await fetcher.fetch("file:nope.json", base_dir=tmp_path, allow_file=True, **LIMITS)


async def test_unchanged_file_is_not_modified(fetcher, tmp_path):
    """Re-reading an untouched file with its validators gives not_modified; a change does not."""
    path = tmp_path / "feed.json"
    path.write_bytes(b"[1]")
    first = await fetcher.fetch(path.as_uri(), allow_file=True, **LIMITS)
    stat = path.stat()
    assert first.validators.last_modified == f"{stat.st_mtime_ns}:{stat.st_size}"
    second = await fetcher.fetch(
        path.as_uri(), allow_file=True, validators=first.validators, **LIMITS
    )
    assert second.not_modified and second.body == b"" and second.validators == first.validators
    path.write_bytes(b"[1, 2]")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    third = await fetcher.fetch(
        path.as_uri(), allow_file=True, validators=first.validators, **LIMITS
    )
    assert (third.not_modified, third.body) == (False, b"[1, 2]")


async def test_file_over_cap_is_rejected(fetcher, tmp_path):
    """The size cap applies to local files too."""
    (tmp_path / "big.bin").write_bytes(b"x" * 2 * KB)
    with pytest.raises(BodyTooLarge):
        await fetcher.fetch(
            "file:big.bin", base_dir=tmp_path, allow_file=True, timeout=1, max_bytes=KB
        )


def test_retry_after_parsing():
    """Retry-After is read as delta-seconds or as an HTTP-date; anything else is ignored."""
    now = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=120), usegmt=True)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(later, now=now.timestamp()) == 120.0
    assert retry_after_seconds(format_datetime(now, usegmt=True), now=now.timestamp() + 60) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") is None
    assert retry_after_seconds(None) is None
    assert MAX_RETRY_WAIT == 30


def test_human_bytes():
    """Sizes read in the config's decimal units (50MB is 50,000,000), at most one decimal."""
    assert human_bytes(512) == "512 B"
    assert human_bytes(1500) == "1.5 KB"
    assert human_bytes(50_000_000) == "50 MB"
    assert human_bytes(3 * 1000**4) == "3000 GB"
    assert human_bytes(1024 * 1024) == "1 MiB"  # as written `1MiB` in the config

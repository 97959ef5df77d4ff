"""Redirects: configured headers stay on the configured origin, and a redirect cannot lead in.

Before this defence httpx followed redirects itself and stripped only Authorization and
Cookie across origins: a custom ``X-Api-Key`` (and OpenAgenda's ``key``) reached whatever
host a redirect named, and a redirect to an internal address was followed and its body served
publicly. ``home`` plays the configured upstream, ``elsewhere`` another host; a test address
classifier calls ``home``'s port "public" so that 127.0.0.1 can play the internet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from upstream_server import Reply, Upstream

from aggregator.fetch import Fetcher
from aggregator.fetch_errors import FetchError, RefusedURL
from aggregator.origins import is_public_address

from .origins_support import (
    API_KEY,
    MARKER,
    NEAR_MARKER,
    discovery,
    elsewhere,
    home,
    lovelo,
    marker_station_information,
    origin,
    runtime_with,
    served,
)

__all__ = ["elsewhere", "home"]  # fixtures, imported for pytest

#: Roomy: no test here is about time, and a loaded machine can be slow to answer.
LIMITS = {"timeout": 30.0, "max_bytes": 1_000_000, "retries": 0}
CONFIGURED = {"X-Api-Key": API_KEY, "Authorization": f"Bearer {API_KEY}", "key": API_KEY}


@pytest.fixture
async def public_home(home: Upstream) -> AsyncIterator[Fetcher]:
    """A Fetcher that takes ``home``'s port for a public address and the rest for internal."""
    async with Fetcher(is_public=lambda host, port: port == home.port) as fetcher:
        yield fetcher


async def test_a_redirect_to_another_origin_drops_every_configured_header(home, elsewhere):
    """X-Api-Key, Authorization and key go to the configured origin, not to the redirect's."""
    home.route("/feed", Reply(status=302, headers={"Location": elsewhere.url("/feed")}))
    elsewhere.route("/feed", Reply(body=b"moved"))
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(home.url("/feed"), headers=CONFIGURED, **LIMITS)
    assert result.body == b"moved"
    assert home.requests("/feed")[0]["X-Api-Key"] == API_KEY
    (request,) = elsewhere.requests("/feed")
    assert not {"x-api-key", "authorization", "key"} & {name.lower() for name in request}
    assert API_KEY not in repr(request)


async def test_a_same_origin_redirect_keeps_the_headers(home):
    """Within the configured origin the headers follow (a moved feed still needs its key)."""
    home.route("/old", Reply(status=301, headers={"Location": "/new"}))
    home.route("/new", Reply(body=b"here"))
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(home.url("/old"), headers=CONFIGURED, **LIMITS)
    assert result.body == b"here" and home.requests("/new")[0]["X-Api-Key"] == API_KEY


async def test_the_openagenda_key_does_not_follow_a_redirect_to_another_origin(home, elsewhere):
    """OpenAgenda's key header stays home when the API answers with a cross-origin redirect."""
    location = elsewhere.url("/v2/agendas/42/events")
    home.route("/v2/agendas/42/events", Reply(status=307, headers={"Location": location}))
    elsewhere.route("/v2/agendas/42/events", Reply(body=b'{"success": true, "events": []}'))
    runtime = runtime_with(
        f"""
        connectors:
          - id: oa
            type: openagenda
            agenda_uid: "42"
            api_key: {API_KEY}
            base_url: {home.url("/v2")}
        """
    )
    assert (await runtime.poll_once("oa")).outcome == "changed"
    assert home.requests("/v2/agendas/42/events")[0]["key"] == API_KEY
    (request,) = elsewhere.requests("/v2/agendas/42/events")
    assert "key" not in request


async def test_validators_go_back_only_to_the_origin_that_gave_them(home, elsewhere):
    """An ETag from the redirect's target is asked of that target, not of the configured host."""
    home.route("/feed", Reply(status=301, headers={"Location": elsewhere.url("/feed")}))
    elsewhere.route("/feed", Reply(body=b"v1", headers={"ETag": '"v1"'}))
    async with Fetcher() as fetcher:
        first = await fetcher.fetch(home.url("/feed"), **LIMITS)
        second = await fetcher.fetch(home.url("/feed"), validators=first.validators, **LIMITS)
    assert second.not_modified and second.validators == first.validators
    assert "If-None-Match" not in home.requests("/feed")[1]
    assert elsewhere.requests("/feed")[1]["If-None-Match"] == '"v1"'


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://127.0.0.1/feed.json", "gopher://127.0.0.1:6379/_INFO"],
)
async def test_a_redirect_to_a_non_http_scheme_is_refused(home, location):
    """Only http(s) redirects are followed: file:, ftp:, gopher: are refused by name."""
    home.route("/feed", Reply(status=302, headers={"Location": location}))
    async with Fetcher() as fetcher:
        with pytest.raises(RefusedURL) as caught:
            await fetcher.fetch(home.url("/feed"), allow_file=True, **LIMITS)
    scheme = location.split(":", 1)[0]
    assert caught.value.message == f"redirected to a {scheme}: URL, which is never followed"


async def test_a_redirect_from_a_public_upstream_to_a_loopback_ip_is_refused(
    home, elsewhere, public_home
):
    """Written as an internal IP, the target is refused without even being connected to."""
    home.route("/feed", Reply(status=302, headers={"Location": elsewhere.url("/admin")}))
    elsewhere.route("/admin", Reply(body=MARKER.encode()))
    with pytest.raises(RefusedURL) as caught:
        await public_home.fetch(home.url("/feed"), **LIMITS)
    assert caught.value.message == (
        f"redirected from a public address to {origin(elsewhere)}, an internal address; "
        "not followed"
    )
    assert elsewhere.hits("/admin") == 0


async def test_a_name_that_resolves_inside_is_caught_on_the_address_connected_to(
    home, elsewhere, public_home
):
    """'localhost' is a name, not an IP: it is judged on the peer address, body never read."""
    target = f"http://localhost:{elsewhere.port}/admin"
    home.route("/feed", Reply(status=302, headers={"Location": "/hop"}))  # public → public
    home.route("/hop", Reply(status=307, headers={"Location": target}))  # → inside
    elsewhere.route("/admin", Reply(body=MARKER.encode()))
    with pytest.raises(RefusedURL, match="from a public address to http://localhost"):
        await public_home.fetch(home.url("/feed"), headers=CONFIGURED, **LIMITS)
    # It was reached (a name gives no warning) but got none of the configured headers.
    (request,) = elsewhere.requests("/admin")
    assert "X-Api-Key" not in request


async def test_an_internal_body_reached_by_redirect_is_never_served(home, elsewhere):
    """End to end: a public bike feed redirecting inside fails the poll; nothing of it is served."""
    inside = f"http://localhost:{elsewhere.port}/internal/stations.json"
    home.route("/info.json", Reply(status=302, headers={"Location": inside}))
    home.route("/status.json", Reply(body=lovelo("station_status")))
    elsewhere.route("/internal/stations.json", Reply(body=marker_station_information()))
    async with Fetcher(is_public=lambda host, port: port == home.port) as fetcher:
        runtime = runtime_with(
            f"""
            clock: {{fixed: "2025-02-28T10:15:00+01:00"}}
            connectors:
              - id: bikes
                type: gbfs
                retries: 0
                files:
                  station_information: {home.url("/info.json")}
                  station_status: {home.url("/status.json")}
            """,
            fetcher,
        )
        outcome = await runtime.poll_once("bikes")
        assert outcome.outcome == "failed"
        assert "from a public address to http://localhost" in (outcome.error or "")
        assert MARKER not in await served(runtime, f"/v1/bikes/stations?{NEAR_MARKER}")


async def test_a_configured_internal_upstream_may_redirect_inside(home, elsewhere):
    """The operator configured a private address: its redirects to other private ones are fine."""
    home.route("/feed", Reply(status=302, headers={"Location": elsewhere.url("/feed")}))
    elsewhere.route("/feed", Reply(body=b"internal and configured"))
    async with Fetcher() as fetcher:  # the real classifier: 127.0.0.1 is loopback
        result = await fetcher.fetch(home.url("/feed"), **LIMITS)
    assert result.body == b"internal and configured"


async def test_a_redirect_loop_still_stops(home):
    """Following hops by hand keeps the old cap: at most 5 redirects."""
    home.route("/loop", Reply(status=308, headers={"Location": "/loop"}))
    async with Fetcher() as fetcher:
        with pytest.raises(FetchError, match="more than 5 redirects"):
            await fetcher.fetch(home.url("/loop"), **LIMITS)
    assert home.hits("/loop") == 6


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("fe80::1%eth0", False),  # link-local, with a zone id
        ("fd00:ec2::254", False),  # unique-local (AWS metadata over IPv6)
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("0.0.0.0", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped: judged as the IPv4 address
        ("::ffff:169.254.169.254", False),
        ("::ffff:8.8.8.8", True),
        ("localhost", False),  # a name is not an address: never public
    ],
)
def test_the_address_classifier(address, public):
    """What counts as internal: loopback, private, link-local, unique-local, and the like."""
    assert is_public_address(address, 80) is public


async def test_a_feed_url_whose_host_turns_internal_after_discovery_is_refused(home):
    """DNS rebinding: gbfs.json came from a public address; its same-origin files may not then
    be read from an internal one. The classifier plays DNS changing its mind after one answer."""
    answers = iter([True])  # the first connection is public, every later one internal
    home.route(
        "/gbfs.json",
        Reply(body=discovery({"station_information": "info.json", "station_status": "st.json"})),
    )
    home.route("/info.json", Reply(body=marker_station_information()))
    home.route("/st.json", Reply(body=lovelo("station_status")))
    async with Fetcher(is_public=lambda host, port: next(answers, False)) as fetcher:
        runtime = runtime_with(
            f"""
            defaults: {{languages: [fr]}}
            connectors:
              - id: bikes
                type: gbfs
                retries: 0
                discovery_url: {home.url("/gbfs.json")}
            """,
            fetcher,
        )
        outcome = await runtime.poll_once("bikes")
    assert outcome.outcome == "failed"
    assert f"gbfs.json leads from a public address to {origin(home)}" in (outcome.error or "")
    assert runtime.live.snapshot("bikes") is None

"""URLs an upstream names in its body stay on the configured origin, and are never file:.

A hostile (or hijacked) GBFS publisher controls its ``gbfs.json``. Before this defence the feed
URLs it listed were fetched as given: the source's headers (the API key) went to whatever host
it named, and with ``allow_file_urls: true`` a ``file:`` URL made the server read a local file
and serve it on ``/v1/bikes/stations``.
"""

from __future__ import annotations

import orjson
import pytest
from upstream_server import Reply

from aggregator.config import ConfigError
from aggregator.fetch import Fetcher
from aggregator.fetch_errors import RefusedURL
from aggregator.origins import UrlFromBody

from .origins_support import (
    API_KEY,
    MARKER,
    NEAR_MARKER,
    discovery,
    elsewhere,
    home,
    lovelo,
    marker_station_information,
    marker_station_status,
    origin,
    runtime_with,
    served,
)

__all__ = ["elsewhere", "home"]  # fixtures, imported for pytest

#: Roomy: no test here is about time, and a loaded machine can be slow to answer.
LIMITS = {"timeout": 30.0, "max_bytes": 1_000_000, "retries": 0}


def gbfs_source(upstream, *, extra: str = "", allow_file: bool = False) -> str:
    return f"""
        defaults: {{languages: [fr], allow_file_urls: {str(allow_file).lower()}}}
        clock: {{fixed: "2025-02-28T10:15:00+01:00"}}
        connectors:
          - id: bikes
            type: gbfs
            retries: 0
            discovery_url: {upstream.url("/gbfs.json")}
            headers: {{X-Api-Key: {API_KEY}}}
            {extra}
        """


async def test_a_gbfs_json_naming_a_local_file_is_refused_and_the_file_never_served(home, tmp_path):
    """file:///... in gbfs.json is refused even with allow_file_urls: nothing of it is served."""
    secret_file = tmp_path / "station_information.json"
    secret_file.write_bytes(marker_station_information())
    home.route(
        "/gbfs.json",
        Reply(
            body=discovery(
                {
                    "station_information": secret_file.as_uri(),
                    "station_status": home.url("/status.json"),
                }
            )
        ),
    )
    home.route("/status.json", Reply(body=marker_station_status()))
    runtime = runtime_with(gbfs_source(home, allow_file=True))
    outcome = await runtime.poll_once("bikes")
    assert outcome.outcome == "failed"
    assert "gbfs.json names a file: URL" in (outcome.error or "")
    stations = await served(runtime, f"/v1/bikes/stations?{NEAR_MARKER}")
    assert MARKER not in stations
    assert MARKER not in await served(runtime, "/v1/sources/bikes")


async def test_a_relative_feed_url_beside_a_file_discovery_is_refused_too(tmp_path):
    """A relative URL in a file: gbfs.json resolves to file: as well: a body URL is never file:."""
    (tmp_path / "station_information.json").write_bytes(marker_station_information())
    (tmp_path / "station_status.json").write_bytes(marker_station_status())
    (tmp_path / "gbfs.json").write_bytes(
        discovery(
            {
                "station_information": "station_information.json",
                "station_status": "station_status.json",
            }
        )
    )
    runtime = runtime_with(
        """
        defaults: {languages: [fr], allow_file_urls: true}
        connectors:
          - id: bikes
            type: gbfs
            discovery_url: file:gbfs.json
        """,
        base_dir=tmp_path,
    )
    outcome = await runtime.poll_once("bikes")
    assert outcome.outcome == "failed" and "gbfs.json names a file: URL" in (outcome.error or "")
    assert runtime.live.snapshot("bikes") is None


async def test_a_gbfs_json_naming_another_origin_is_refused_and_the_key_stays_home(home, elsewhere):
    """Station files on another origin are not fetched: the poll fails naming that origin."""
    elsewhere.route("/info.json", Reply(body=marker_station_information()))
    elsewhere.route("/status.json", Reply(body=marker_station_status()))
    home.route(
        "/gbfs.json",
        Reply(
            body=discovery(
                {
                    "station_information": elsewhere.url("/info.json"),
                    "station_status": elsewhere.url("/status.json"),
                }
            )
        ),
    )
    runtime = runtime_with(gbfs_source(home))
    outcome = await runtime.poll_once("bikes")
    assert outcome.outcome == "failed"
    assert f"names a URL on another origin, {origin(elsewhere)}" in (outcome.error or "")
    assert elsewhere.hits("/info.json") == elsewhere.hits("/status.json") == 0
    assert home.requests("/gbfs.json")[0]["X-Api-Key"] == API_KEY  # the configured origin: yes
    assert MARKER not in await served(runtime, f"/v1/bikes/stations?{NEAR_MARKER}")


async def test_an_optional_file_on_another_origin_is_an_issue_and_the_stations_load(
    home, elsewhere
):
    """A refused optional file is a counted issue naming the origin; the stations still load."""
    elsewhere.route("/alerts.json", Reply(body=b'{"data": {"alerts": []}}'))
    home.route("/info.json", Reply(body=lovelo("station_information")))
    home.route("/status.json", Reply(body=lovelo("station_status")))
    home.route(
        "/gbfs.json",
        Reply(
            body=discovery(
                {
                    "station_information": "info.json",  # relative: on the discovery's origin
                    "station_status": home.url("/status.json"),
                    "system_alerts": elsewhere.url("/alerts.json"),
                }
            )
        ),
    )
    runtime = runtime_with(gbfs_source(home))
    assert (await runtime.poll_once("bikes")).outcome == "changed"
    status = runtime.statuses["bikes"]
    assert status.record_count == 122
    assert status.issue_count == 1
    assert status.issue_samples[0].startswith("system_alerts: gbfs.json names a URL on another")
    assert origin(elsewhere) in status.issue_samples[0]
    assert elsewhere.hits("/alerts.json") == 0
    assert home.requests("/info.json")[0]["X-Api-Key"] == API_KEY


async def test_allowed_origins_lets_a_listed_origin_through_without_the_headers(home, elsewhere):
    """An origin in allowed_origins is fetched, but the configured headers never go there."""
    elsewhere.route("/info.json", Reply(body=lovelo("station_information")))
    elsewhere.route("/status.json", Reply(body=lovelo("station_status")))
    home.route(
        "/gbfs.json",
        Reply(
            body=discovery(
                {
                    "station_information": elsewhere.url("/info.json"),
                    "station_status": elsewhere.url("/status.json"),
                }
            )
        ),
    )
    runtime = runtime_with(gbfs_source(home, extra=f"allowed_origins: [{origin(elsewhere)}/]"))
    assert (await runtime.poll_once("bikes")).outcome == "changed"
    assert runtime.statuses["bikes"].record_count == 122
    (request,) = elsewhere.requests("/status.json")
    assert "X-Api-Key" not in request
    assert home.requests("/gbfs.json")[0]["X-Api-Key"] == API_KEY


@pytest.mark.parametrize(
    "value",
    ["https://cdn.example.org/gbfs", "file:///etc", "cdn.example.org", "ftp://cdn.example.org"],
)
def test_allowed_origins_must_be_origins(value):
    """Anything but scheme://host[:port] is refused when the config loads, naming the value."""
    with pytest.raises(ConfigError) as caught:
        runtime_with(
            f"""
            connectors:
              - id: bikes
                type: gbfs
                discovery_url: https://bikes.example.org/gbfs.json
                allowed_origins: ["{value}"]
            """
        )
    assert "allowed_origins" in str(caught.value) and value in str(caught.value)
    assert "is not an origin" in str(caught.value)


@pytest.mark.parametrize(
    ("body_url", "refused"),
    [
        ("https://api.example.org/v2/status.json", False),
        ("https://API.example.org:443/status.json", False),  # same origin, spelled otherwise
        ("http://api.example.org/status.json", True),  # another scheme is another origin
        ("https://api.example.org:8443/status.json", True),
        ("https://api.example.org.evil.test/status.json", True),
        ("https://api.example.org\\@evil.test/status.json", True),  # reads as evil.test to httpx
        ("file:///etc/passwd", True),
        ("ftp://api.example.org/status.json", True),
        ("https://cdn.example.org/status.json", False),  # listed in allowed_origins
    ],
)
def test_the_origin_rule(body_url, refused):
    """Same scheme, host and port as the configured URL, or a listed origin; nothing else."""
    rule = UrlFromBody.of(
        "https://api.example.org/v2/gbfs.json", ["https://cdn.example.org"], "gbfs.json"
    )
    assert (rule.refusal(body_url) is not None) is refused


async def test_the_fetcher_refuses_a_body_url_before_any_request(elsewhere):
    """RefusedURL is raised with no I/O at all, and its text is plain and redacted."""
    async with Fetcher() as fetcher:
        with pytest.raises(RefusedURL) as caught:
            await fetcher.fetch(
                elsewhere.url("/x.json?token=s3cret"),
                from_body=UrlFromBody.of("https://api.example.org/feed", [], "a next link"),
                **LIMITS,
            )
    assert elsewhere.hits("/x.json") == 0
    assert "a next link names a URL on another origin" in str(caught.value)
    assert "s3cret" not in str(caught.value)


async def test_an_openagenda_cursor_is_a_parameter_never_a_url_to_follow(home, elsewhere):
    """The next page is asked of the configured origin, whatever the cursor says."""
    cursor = elsewhere.url("/steal")
    first = {"success": True, "events": [{"uid": 1, "timings": []}], "after": [cursor]}
    home.route(
        "/v2/agendas/42/events",
        [Reply(body=orjson.dumps(first)), Reply(body=b'{"success": true, "events": []}')],
    )
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
    pages = home.requests("/v2/agendas/42/events")
    assert len(pages) == 2 and pages[1].query.getall("after[]") == [cursor]
    assert elsewhere.hits("/steal") == 0

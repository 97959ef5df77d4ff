"""Shared parts of the notification tests: a local push service and a realtime upstream."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2 as pb
from push_service import PushService
from upstream_server import Reply, Upstream

from aggregator.clock import Clock
from aggregator.notify.webpush import application_server_key, new_vapid_keys

DATA = Path(__file__).parents[2] / "config" / "demo-data"
CAPTURE = "caltrain-2023-11-08T0105Z"


def alerts_feed(
    *alerts: tuple[str, str, dict[str, str]], ended: dict[str, int] | None = None
) -> bytes:
    """The demo capture's (empty) alerts message, plus ``(entity id, route id, texts)``
    alerts; ``texts`` maps a language to the header (the description adds " (details)");
    ``ended`` gives some of them an active period ending at that POSIX time."""
    message = pb.FeedMessage()
    message.ParseFromString((DATA / f"{CAPTURE}-service-alerts.pb").read_bytes())
    for entity_id, route_id, texts in alerts:
        entity = message.entity.add(id=entity_id)
        alert = entity.alert
        alert.informed_entity.add(route_id=route_id)
        alert.effect = pb.Alert.REDUCED_SERVICE
        if ended and entity_id in ended:
            alert.active_period.add(start=ended[entity_id] - 3600, end=ended[entity_id])
        for language, text in texts.items():
            alert.header_text.translation.add(text=text, language=language)
            alert.description_text.translation.add(text=f"{text} (details)", language=language)
    return message.SerializeToString()


class MovedClock(Clock):
    """The data's clock, moved by the test (``clock.at = ...``): time-driven notifications
    (cancellations entering their hour, evening reminders) without waiting for the hour."""

    def __init__(self, at: datetime) -> None:
        super().__init__(fixed=at)
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def vapid() -> tuple[str, str]:
    private, public = new_vapid_keys()
    assert application_server_key(private) == public
    return private, public


@pytest.fixture
async def push(vapid: tuple[str, str]):
    async with PushService(vapid[1]) as service:
        yield service


@pytest.fixture
def upstream(upstream: Upstream) -> Upstream:
    """The shared scriptable upstream, serving the demo capture's realtime feeds."""
    for kind in ("trip-updates", "vehicle-positions"):
        upstream.route(f"/{kind}.pb", Reply.file(DATA / f"{CAPTURE}-{kind}.pb"))
    upstream.route("/alerts.pb", Reply(body=alerts_feed()))
    return upstream


def notify_config(
    upstream: Upstream,
    database: Path,
    vapid_private: str,
    *,
    allow_private: bool = True,
    refresh: str = "1s",
    extra: str = "",
) -> str:
    return f"""
defaults:
  allow_file_urls: true
  languages: [fr, en]
clock:
  fixed: 2023-11-07T17:06:00-08:00
notifications:
  enabled: true
  database: {database}
  vapid_private_key: {vapid_private}
  vapid_subject: mailto:ops@city.example
  allow_private_push_endpoints: {str(allow_private).lower()}
  interval: 0.2s
  retry_base: 0.2s
  deep_links:
    alert: https://app.city.example/alerts/{{id}}
{extra}
connectors:
  - id: caltrain
    type: gtfs
    url: file:caltrain-2023-11.gtfs.zip
  - id: caltrain-rt
    type: gtfs_rt
    feed: caltrain
    retries: 0
    refresh: {refresh}
    urls:
      - {upstream.url("/trip-updates.pb")}
      - {upstream.url("/vehicle-positions.pb")}
      - {upstream.url("/alerts.pb")}
"""


#: The machine's PostgreSQL (trust authentication, database ``test``); tests needing it skip
#: when it does not answer.
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request, tmp_path: Path):
    """Where the subscriptions live: a SQLite file, or a fresh schema of a real PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / "subs.sqlite3")
        return
    import secrets

    import asyncpg

    try:
        admin = await asyncpg.connect(POSTGRES, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("BEFFROI_REQUIRE_POSTGRES"):  # CI (.ci/run) provides one
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES}: {exc}")
    schema = f"notify_{secrets.token_hex(6)}"
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        # asyncpg passes unknown URL parameters on as server settings.
        yield f"{POSTGRES}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()

"""/v1/subscriptions: what a subscription may hold, who may read it, and what is refused
(every refusal a 400 problem naming the field)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import DATA
from push_service import Browser, b64
from support import runtime_from

from aggregator.api.app import create_app
from aggregator.notify.storage import MIGRATIONS
from aggregator.notify.webpush import new_vapid_keys


def config(database: Path, *, allow_private: bool, max_topics: int = 50) -> str:
    return f"""
server:
  cors_origins: ["https://app.example"]
defaults:
  allow_file_urls: true
  languages: [fr, en]
notifications:
  enabled: true
  database: {database}
  vapid_private_key: {new_vapid_keys()[0]}
  allow_private_push_endpoints: {str(allow_private).lower()}
  max_topics: {max_topics}
connectors:
  - id: caltrain
    type: gtfs
    url: file:caltrain-2023-11.gtfs.zip
"""


async def client_for(yaml: str) -> TestClient:
    runtime = runtime_from(yaml, base_dir=DATA)
    await runtime.poll_once("caltrain")
    client = TestClient(TestServer(create_app(runtime, poll=False)))
    await client.start_server()
    return client


@pytest.fixture
async def strict(tmp_path: Path):
    """As in production: https push endpoints on public addresses only."""
    client = await client_for(config(tmp_path / "s.sqlite3", allow_private=False, max_topics=3))
    yield client
    await client.close()


def webpush(endpoint: str = "https://8.8.8.8/push/abc", **keys: str) -> dict:
    return Browser().target(endpoint, **keys)


async def refused_field(client: TestClient, body: object) -> str:
    answer = await client.post("/v1/subscriptions", json=body)
    assert answer.status == 400, await answer.text()
    problem = await answer.json()
    assert problem["code"] == "invalid_parameter"
    return problem["errors"][0]["parameter"]


async def test_create_read_change_delete(strict: TestClient) -> None:
    # 8.8.8.8 is a literal public address: accepted without any DNS lookup.
    body = {
        "target": webpush(),
        "topics": {"lines": ["caltrain:L1"], "stops": ["caltrain:70021"]},
        "lang": "fr",
    }
    created = await strict.post("/v1/subscriptions", json=body)
    assert created.status == 201, await created.text()
    data = (await created.json())["data"]
    assert set(data) == {"id", "secret", "target", "topics", "lang", "created_at", "expires_at"}
    auth = {"Authorization": f"Bearer {data['secret']}"}
    url = f"/v1/subscriptions/{data['id']}"

    read = await strict.get(url, headers=auth)
    assert read.status == 200
    view = (await read.json())["data"]
    assert "secret" not in view
    assert view["topics"] == {
        "lines": ["caltrain:L1"],
        "stops": ["caltrain:70021"],
        "agenda": False,
        "categories": [],
        "news": [],
        "news_sources": [],
        "waste": None,
    }
    changed = await strict.patch(
        url,
        json={"topics": {"agenda": True, "categories": ["conseil"]}, "lang": "en"},
        headers=auth,
    )
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["data"]["topics"]["agenda"] is True
    assert (await changed.json())["data"]["lang"] == "en"

    # A wrong secret, no secret and an unknown id all get the same 404.
    for headers, at in (
        ({"Authorization": "Bearer nope"}, url),
        ({}, url),
        (auth, "/v1/subscriptions/unknown"),
    ):
        answer = await strict.get(at, headers=headers)
        assert answer.status == 404
        assert (await answer.json())["detail_code"] == "no_subscription"

    assert (await strict.delete(url, headers=auth)).status == 204
    assert (await strict.get(url, headers=auth)).status == 404


@pytest.mark.parametrize(
    ("target", "field"),
    [
        (webpush("http://8.8.8.8/push"), "target.endpoint"),  # not https
        (webpush("https://127.0.0.1/push"), "target.endpoint"),  # loopback
        (webpush("https://10.1.2.3/push"), "target.endpoint"),  # private
        (webpush("https://169.254.169.254/latest"), "target.endpoint"),  # link-local metadata
        (webpush("https://localhost/push"), "target.endpoint"),  # a name resolving inside
        (webpush("https://" + "a" * 1100), "target.endpoint"),  # over the byte budget
        (webpush(p256dh=b64(b"\x04" + b"\x00" * 64)), "target.keys.p256dh"),  # not on P-256
        (webpush(p256dh=b64(b"\x04" * 33)), "target.keys.p256dh"),  # wrong length
        (webpush(p256dh="not base64!"), "target.keys.p256dh"),
        (webpush(auth=b64(b"x" * 15)), "target.keys.auth"),
        ({**webpush(), "type": "carrier-pigeon"}, "target.type"),
        ({**webpush(), "extra": 1}, "target.extra"),
    ],
)
async def test_bad_targets_are_refused_naming_the_field(
    strict: TestClient, target: dict, field: str
) -> None:
    body = {"target": target, "topics": {"lines": ["caltrain:L1"]}}
    assert await refused_field(strict, body) == field


@pytest.mark.parametrize(
    ("topics", "field"),
    [
        ({"lines": ["caltrain:NOPE"]}, "topics.lines[0]"),
        ({"lines": ["caltrain:L1", "elsewhere:L1"]}, "topics.lines[1]"),
        ({"stops": ["caltrain:L1"]}, "topics.stops[0]"),  # a line id is not a stop
        ({"lines": ["caltrain:L1", "caltrain:L2", "caltrain:L3", "caltrain:L4"]}, "topics.lines"),
        ({"lines": ["caltrain:" + "x" * 300]}, "topics.lines[0]"),
        ({"categories": ["conseil"]}, "topics.categories"),  # without agenda
        ({}, "topics"),
        ({"agenda": "yes"}, "topics.agenda"),
        ({"bins": True}, "topics.bins"),
    ],
)
async def test_bad_topics_are_refused_naming_the_field(
    strict: TestClient, topics: dict, field: str
) -> None:
    assert await refused_field(strict, {"target": webpush(), "topics": topics}) == field


async def test_bad_bodies_and_languages_are_refused(strict: TestClient) -> None:
    good = {"target": webpush(), "topics": {"agenda": True}}
    assert await refused_field(strict, {**good, "lang": "de"}) == "lang"
    assert await refused_field(strict, {**good, "name": "x"}) == "name"
    assert await refused_field(strict, [good]) == "body"
    answer = await strict.post("/v1/subscriptions", data=b"{not json")
    assert (await answer.json())["errors"][0]["parameter"] == "body"
    big = {**good, "topics": {"agenda": True, "categories": ["c" * 99] * 400}}
    answer = await strict.post("/v1/subscriptions", json=big)
    assert answer.status == 400
    assert {
        "parameter": "body",
        "code": "body_too_large",
    }.items() <= (await answer.json())["errors"][0].items()
    unknown = await strict.post("/v1/subscriptions?verbose=1", json=good)
    assert unknown.status == 400
    assert (await unknown.json())["errors"][0]["parameter"] == "verbose"


async def test_refusals_are_written_in_the_asked_language_and_name_the_field(
    strict: TestClient,
) -> None:
    """Accept-Language, and ?lang= over it, choose the language of the detail; the field it
    names and the code a client branches on are the same in both."""
    body = {"target": webpush(), "topics": {"lines": ["caltrain:NOPE"]}}
    answers = {}
    for name, query, header in (
        ("en", "", "en-US,en;q=0.9"),
        ("fr-header", "", "fr-BE,fr;q=0.9"),
        ("fr-query", "?lang=fr", "en"),
    ):
        answer = await strict.post(
            f"/v1/subscriptions{query}", json=body, headers={"Accept-Language": header}
        )
        assert answer.status == 400, await answer.text()
        answers[name] = await answer.json()
    assert (
        answers["en"]["detail"] == "topics.lines[0]: 'caltrain:NOPE' is not a line of a loaded feed"
    )
    for name in ("fr-header", "fr-query"):
        problem = answers[name]
        assert (
            problem["detail"]
            == "topics.lines[0]: 'caltrain:NOPE' n'est une ligne d'aucun flux chargé"
        )
        assert (problem["detail_code"], problem["detail_language"]) == ("not_a_loaded_line", "fr")
        assert problem["title"] != answers["en"]["title"]
        error = problem["errors"][0]
        assert error["parameter"] == "topics.lines[0]"
        assert error["code"] == answers["en"]["errors"][0]["code"] == "not_a_loaded_line"
        assert error["detail"] == "'caltrain:NOPE' n'est une ligne d'aucun flux chargé"


@pytest.mark.parametrize(
    ("body", "field", "code", "french"),
    [
        (
            {"target": webpush("http://8.8.8.8/push"), "topics": {"agenda": True}},
            "target.endpoint",
            "not_https",
            "doit être une URL https",
        ),
        (
            {"target": webpush(auth=b64(b"x" * 15)), "topics": {"agenda": True}},
            "target.keys.auth",
            "wrong_byte_count",
            "doit se décoder en 16 octets, pas 15",
        ),
        (
            {"target": webpush(), "topics": {"agenda": True}, "lang": "de"},
            "lang",
            "not_one_of",
            "'de' ne fait pas partie de : en, fr",
        ),
        (
            {"target": webpush(), "topics": {"agenda": True}, "name": "x"},
            "name",
            "unknown_body_field",
            "champ inconnu ; acceptés : target, topics, lang",
        ),
        (
            {"target": webpush(), "topics": {"categories": ["conseil"]}},
            "topics.categories",
            "categories_need_agenda",
            "seulement avec agenda: true",
        ),
        (
            {"target": webpush(), "topics": {"agenda": "yes"}},
            "topics.agenda",
            "not_a_boolean",
            "'yes' n'est pas un booléen (true ou false)",
        ),
    ],
)
async def test_each_kind_of_refusal_is_written_in_french(
    strict: TestClient, body: dict, field: str, code: str, french: str
) -> None:
    answer = await strict.post("/v1/subscriptions?lang=fr", json=body)
    assert answer.status == 400, await answer.text()
    problem = await answer.json()
    assert problem["detail"] == f"{field}: {french}"
    assert {"parameter": field, "code": code, "detail": french}.items() <= problem["errors"][
        0
    ].items()


async def test_a_long_value_is_quoted_back_cut_short(strict: TestClient) -> None:
    body = {"target": webpush(), "topics": {"agenda": True}, "lang": "x" * 5000}
    answer = await strict.post("/v1/subscriptions", json=body, headers={"Accept-Language": "en"})
    detail = (await answer.json())["errors"][0]["detail"]
    assert detail.startswith("'xxx") and "…" in detail and len(detail) < 120


async def test_an_unknown_subscription_is_answered_in_the_asked_language(
    strict: TestClient,
) -> None:
    answer = await strict.get(
        "/v1/subscriptions/unknown?lang=fr", headers={"Authorization": "Bearer nope"}
    )
    assert answer.status == 404
    problem = await answer.json()
    assert problem["detail"] == "aucun abonnement avec cet identifiant et ce secret"
    assert problem["detail_code"] == "no_subscription"


async def test_private_endpoints_only_when_the_operator_allows_them(tmp_path: Path) -> None:
    client = await client_for(config(tmp_path / "s.sqlite3", allow_private=True))
    try:
        body = {"target": webpush("http://127.0.0.1:9/push"), "topics": {"agenda": True}}
        assert (await client.post("/v1/subscriptions", json=body)).status == 201
    finally:
        await client.close()


async def test_without_lang_a_subscription_takes_the_language_the_request_asks_for(
    strict: TestClient,
) -> None:
    """An app that sends Accept-Language (as every browser does) and no lang is written to in
    that language; with neither, in the deployment's default (French here), not English."""
    topics = {"lines": ["caltrain:L1"]}
    for headers, query, expected in (
        ({"Accept-Language": "en-GB,en;q=0.8"}, "", "en"),
        ({"Accept-Language": "fr-FR"}, "", "fr"),
        ({"Accept-Language": "de"}, "", "fr"),
        ({}, "", "fr"),
        ({"Accept-Language": "fr"}, "?lang=en", "en"),
    ):
        answer = await strict.post(
            "/v1/subscriptions" + query,
            json={"target": webpush(), "topics": topics},
            headers=headers,
        )
        assert answer.status == 201, await answer.text()
        assert (await answer.json())["data"]["lang"] == expected, (headers, query)


async def test_browsers_may_send_the_preflight_of_a_post(strict: TestClient) -> None:
    answer = await strict.options(
        "/v1/subscriptions",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert answer.status == 204, await answer.text()
    assert answer.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST, OPTIONS"
    assert answer.headers["Access-Control-Allow-Headers"] == "content-type"
    # Where no route declares a method, it is still refused.
    elsewhere = await strict.options(
        "/v1/openapi.json",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"},
    )
    assert elsewhere.status == 405


async def test_subscriptions_survive_a_restart_in_a_versioned_schema(tmp_path: Path) -> None:
    database = tmp_path / "s.sqlite3"
    yaml = config(database, allow_private=False)
    client = await client_for(yaml)
    body = {"target": webpush(), "topics": {"lines": ["caltrain:L1"]}}
    data = (await (await client.post("/v1/subscriptions", json=body)).json())["data"]
    await client.close()
    with sqlite3.connect(database) as db:
        versions = [v for (v,) in db.execute("SELECT version FROM schema_migrations")]
        # Only a hash of the secret is kept.
        stored = db.execute("SELECT * FROM subscriptions").fetchall()
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert data["secret"] not in repr(stored)
    client = await client_for(yaml)
    try:
        answer = await client.get(
            f"/v1/subscriptions/{data['id']}", headers={"Authorization": f"Bearer {data['secret']}"}
        )
        assert answer.status == 200
    finally:
        await client.close()


async def test_disabled_notifications_answer_403(tmp_path: Path) -> None:
    yaml = config(tmp_path / "s.sqlite3", allow_private=False).replace(
        "enabled: true", "enabled: false"
    )
    client = await client_for(yaml)
    try:
        body = {"target": webpush(), "topics": {"agenda": True}}
        answer = await client.post("/v1/subscriptions", json=body)
        assert answer.status == 403
        assert (await answer.json())["detail_code"] == "notifications_disabled"
        assert not (tmp_path / "s.sqlite3").exists()
    finally:
        await client.close()


def test_vapid_keys_command_prints_a_usable_pair() -> None:
    from aggregator.notify.webpush import application_server_key

    out = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "vapid-keys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    values = dict(
        line.split(": ", 1) for line in out.splitlines() if line and not line.startswith("#")
    )
    assert application_server_key(values["vapid_private_key"]) == values["application_server_key"]


def test_notification_secrets_are_redacted(tmp_path: Path) -> None:
    from support import config_from

    private = new_vapid_keys()[0]
    account = '{"private_key": "-----BEGIN PRIVATE KEY-----xyz", "project_id": "p"}'
    loaded = config_from(
        f"""
notifications:
  database: postgresql://beffroi:s3cret-pass@db.internal/beffroi
  vapid_private_key: {private}
  fcm: {{service_account: '{account}'}}
"""
    )
    assert {private, "s3cret-pass", account, "-----BEGIN PRIVATE KEY-----xyz"} <= loaded.secrets
    assert private not in repr(loaded)

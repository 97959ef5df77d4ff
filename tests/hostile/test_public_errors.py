"""Public answers name a failed poll's class, never its detail: no server path, no upstream
address, no upstream text on /v1/sources, /v1/sources/{id} or the status page; the admin API
keeps the full (redacted) detail.

Each source below fails in its own way against real parts (a real upstream on 127.0.0.1, a
port with nothing listening, files on disk); the public answers are read as raw text, so a
leak anywhere in them (``last_error``, issue examples, stats) fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis_server import free_port
from support import CONNECTOR_TYPES
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.config import load_config
from aggregator.failures import FailureCode
from aggregator.registry import config_models
from aggregator.runtime import Runtime

TOKEN = "admin-token-for-public-errors"
MARKER = "upstream-said-Z9Q"  # text only the upstream's answers carry
ROWS = b'[{"code": "P1", "nom": "Gare"}, {"nom": "no id"}]'  # one row is skipped (no id)

# id, how it fails (URL template; {up} is the upstream, {closed} a dead port, {dir} the files),
# the public code and text, and what only the admin detail may say.
CASES = [
    ("missing", "file://{dir}/hidden-dir/feed.json", "local_file",
     "the local file could not be read", "no such file: {dir}/hidden-dir/feed.json"),
    ("a_dir", "file://{dir}", "local_file", "the local file could not be read", "not a file"),
    ("garbled", "file://{dir}/garbled.json", "parse_failed", "the feed could not be parsed",
     "the body is not JSON"),
    ("refused", "http://127.0.0.1:{closed}/x.json", "unreachable",
     "the upstream could not be reached", "connection refused (http://127.0.0.1:{closed}/"),
    ("status", "{up}/500.json", "upstream_status", "the upstream answered HTTP 500",
     "upstream answered 500 Internal Server Error"),
    ("big", "{up}/big.json", "too_large", "the body exceeds the size cap", "exceeds the 1 KB"),
    ("chatty", "{up}", "fetch_failed", "the feed could not be fetched", f"error: {MARKER}"),
]  # fmt: skip


def source(source_id: str, url: str) -> str:
    if source_id == "chatty":  # an API whose error answers say things of their own
        return f"""
  - id: chatty
    type: openagenda
    base_url: "{url}"
    agenda_uid: "1234"
    api_key: "oa-key-0000"
    retries: 0
"""
    return f"""
  - id: {source_id}
    type: json_records
    url: "{url}"
    retries: 0
    max_bytes: 1KB
    id_field: code
    fields:
      name: nom
"""


@pytest.fixture
async def failing(tmp_path: Path, upstream):
    """An app whose sources each fail one way (and one that loads, skipping a row), polled once."""
    (tmp_path / "garbled.json").write_text(f"<html>{MARKER} at /srv/private</html>")
    upstream.route("/500.json", Reply(status=500, body=f"{MARKER} stack trace".encode()))
    upstream.route("/big.json", Reply(body=b"[" + b'{"code": "x"},' * 200 + b"{}]"))
    upstream.route(
        "/agendas/1234/events", Reply(body=f'{{"success": false, "message": "{MARKER}"}}'.encode())
    )
    upstream.route("/ok.json", Reply(body=ROWS))
    names = {"up": f"http://127.0.0.1:{upstream.port}", "closed": free_port(), "dir": tmp_path}
    sources = [source(i, url.format(**names)) for i, url, *_ in CASES]
    sources.append(source("ok", f"http://127.0.0.1:{upstream.port}/ok.json"))
    config = tmp_path / "beffroi.yaml"
    config.write_text(
        f"server:\n  admin_token: {TOKEN}\ndefaults:\n  allow_file_urls: true\n"
        "connectors:" + "".join(sources)
    )
    runtime = Runtime(
        load_config(config, connector_types=config_models(CONNECTOR_TYPES)), CONNECTOR_TYPES
    )
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        for source_id in runtime.connectors:
            await runtime.poll_once(source_id)
        yield client, names


async def test_public_statuses_name_the_failure_class_only(failing):
    """Every failure shows its code and fixed sentence in public; the raw answers carry no
    path, no upstream address, no upstream text, no issue example; the admin API has all."""
    client, names = failing
    public_texts = [
        await (await client.get("/v1/sources")).text(),
        await (await client.get("/")).text(),
    ]
    listed = (await (await client.get("/v1/sources")).json())["data"]
    by_id = {s["id"]: s for s in listed}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for source_id, _url, code, text, detail in CASES:
        one = await client.get(f"/v1/sources/{source_id}")
        public_texts.append(await one.text())
        status = (await one.json())["data"]
        assert (status["last_error_code"], status["last_error"]) == (code, text), source_id
        assert by_id[source_id]["last_error"] == text
        assert status["last_error_code"] in set(FailureCode)
        admin = await (await client.get(f"/v1/admin/sources/{source_id}", headers=auth)).json()
        assert detail.format(**names) in admin["data"]["last_error"], source_id
        assert admin["data"]["recent_errors"][0]["code"] == code
    ok = by_id["ok"]
    assert ok["last_error"] is None and ok["last_error_code"] is None
    assert ok["issues"] == {"count": 1, "examples": []}
    admin_ok = await (await client.get("/v1/admin/sources/ok", headers=auth)).json()
    assert admin_ok["data"]["issues"]["examples"][0].startswith("record 2: id field 'code'")
    for body in public_texts:
        for leak in (
            str(names["dir"]),
            "/srv/private",
            MARKER,
            "hidden-dir",
            "127.0.0.1",
            str(names["closed"]),
            str(client.port),
            "connection refused",
            "record 2",
        ):
            assert leak not in body, f"{leak!r} is in a public answer"  # fmt: skip


def test_a_refused_upstream_url_has_its_own_public_class():
    """A redirect or body URL refused by the origin rules names neither the URL nor the
    address in public: only its class."""
    from aggregator.failures import failure_of_fetch
    from aggregator.fetch_errors import RefusedURL

    failure = failure_of_fetch(
        RefusedURL("redirect to an internal address 10.0.0.7 refused", url="http://x/")
    )
    assert failure.code == "refused_url"
    assert failure.public == "a URL or redirect of the upstream was refused"

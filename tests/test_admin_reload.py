"""The admin API (bearer token), configuration reload (admin call and SIGHUP), and secrets
never leaking into answers or logs."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from aiohttp.test_utils import TestClient, TestServer
from redis_server import free_port
from support import CONNECTOR_TYPES, eventually
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.config import load_config
from aggregator.registry import config_models
from aggregator.runtime import Runtime

ROOT = Path(__file__).parents[1]
TOKEN = "s3cret-admin-token-42"
ROWS = b'[{"code": "P1", "nom": "Gare", "libre": "12"}, {"code": "P2", "nom": "Euralille"}]'


def source(source_id: str, url: str, extra: str = "") -> str:
    return f"""
  - id: {source_id}
    type: json_records
    url: "{url}"
    retries: 0
    id_field: code
    fields:
      name: nom{extra}
"""


def write_config(path: Path, *sources: str, token: str | None = TOKEN) -> None:
    server = f"server:\n  admin_token: {token}\n" if token else ""
    path.write_text(server + "connectors:" + "".join(sources))


def runtime_for(path: Path) -> Runtime:
    config = load_config(path, connector_types=config_models(CONNECTOR_TYPES))
    return Runtime(config, CONNECTOR_TYPES)


async def test_admin_needs_the_token_and_is_off_without_one(tmp_path, upstream):
    """No token configured: 403; wrong or missing token: 401; the right one: details."""
    upstream.route("/a.json", [Reply(status=500), Reply(body=ROWS)])
    config = tmp_path / "beffroi.yaml"
    write_config(config, source("a", upstream.url("/a.json")), token=None)
    async with TestClient(TestServer(create_app(runtime_for(config), poll=False))) as client:
        assert (await client.get("/v1/admin/sources/a")).status == 403
    write_config(config, source("a", upstream.url("/a.json")))
    async with TestClient(TestServer(create_app(runtime_for(config), poll=False))) as client:
        missing = await client.get("/v1/admin/sources/a")
        assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await client.get("/v1/admin/sources/a", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        first = await (await client.post("/v1/admin/sources/a/refresh", headers=auth)).json()
        assert first["data"]["outcome"] == "failed"
        second = await (await client.post("/v1/admin/sources/a/refresh", headers=auth)).json()
        assert second["data"]["outcome"] == "changed"
        detail = await (await client.get("/v1/admin/sources/a", headers=auth)).json()
        assert detail["data"]["recent_errors"][0]["error"].startswith("upstream answered 500")
        public = await (await client.get("/v1/sources/a")).json()
        assert "recent_errors" not in public["data"]


async def test_reload_adds_removes_and_changes_sources(tmp_path, upstream):
    """A reload starts new sources, drops removed ones, re-reads changed ones, keeps the rest."""
    for path in ("/a.json", "/b.json", "/c.json"):
        upstream.route(path, Reply(body=ROWS))
    config = tmp_path / "beffroi.yaml"
    a, b = source("a", upstream.url("/a.json")), source("b", upstream.url("/b.json"))
    write_config(config, a, b)
    runtime = runtime_for(config)
    async with TestClient(TestServer(create_app(runtime))) as client:
        await eventually(lambda: runtime.live.snapshot("a") and runtime.live.snapshot("b"))
        version_a = runtime.live.snapshot("a").version
        changed_b = source("b", upstream.url("/b.json"), "\n      free: {path: libre, type: int}")
        write_config(config, a, changed_b, source("c", upstream.url("/c.json")))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        report = await (await client.post("/v1/admin/reload", headers=auth)).json()
        assert report["data"] == {
            "added": ["c"],
            "removed": [],
            "changed": ["b"],
            "unchanged": ["a"],
            "restart_needed": [],
        }
        await eventually(lambda: runtime.live.snapshot("c") is not None)
        await eventually(lambda: "free" in runtime.live.snapshot("b").data[0])
        assert runtime.live.snapshot("b").data[0]["free"] == 12
        assert runtime.live.snapshot("a").version == version_a  # untouched
        write_config(config, a)
        report = await (await client.post("/v1/admin/reload", headers=auth)).json()
        assert sorted(report["data"]["removed"]) == ["b", "c"]
        assert (await client.get("/v1/sources/b")).status == 404
        assert [s["id"] for s in (await (await client.get("/v1/sources")).json())["data"]] == ["a"]


async def test_invalid_reload_keeps_the_running_configuration(tmp_path, upstream):
    """A broken file is refused with every problem listed; the old sources keep running."""
    upstream.route("/a.json", Reply(body=ROWS))
    config = tmp_path / "beffroi.yaml"
    write_config(config, source("a", upstream.url("/a.json")))
    runtime = runtime_for(config)
    async with TestClient(TestServer(create_app(runtime))) as client:
        await eventually(lambda: runtime.live.snapshot("a") is not None)
        config.write_text(config.read_text() + "    refrsh: 5m\n")
        answer = await client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status == 400
        problem = await answer.json(content_type=None)
        assert any("unknown key 'refrsh'" in e for e in problem["errors"])
        assert (await client.get("/v1/sources/a")).status == 200


def test_sighup_reloads_a_running_server_and_secrets_never_leak(tmp_path):
    """SIGHUP applies a new file to a real process; a bad one is logged and ignored. No answer
    and no log line ever shows the API key (header, URL parameter) or the admin token."""
    secret = "k3y-that-must-never-show"
    port = free_port()
    closed = free_port()  # nothing listens there: every poll fails, errors get reported
    config = tmp_path / "beffroi.yaml"
    failing = source("a", f"http://127.0.0.1:{closed}/a.json?token={secret}")
    failing += f"    headers:\n      X-Api-Key: {secret}\n"
    write_config(config, failing)
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator.cli",
                "serve",
                "-c",
                str(config),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        bodies: list[str] = []
        try:
            asyncio.run(_wait_for(base, lambda s: s["a"]["last_error"] is not None))
            write_config(config, failing, source("b", f"http://127.0.0.1:{closed}/b.json"))
            process.send_signal(signal.SIGHUP)
            asyncio.run(_wait_for(base, lambda s: "b" in s))
            config.write_text("connectors: [{id: BAD}]\n")
            process.send_signal(signal.SIGHUP)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            for path in ("/v1/sources", "/v1/sources/a", "/metrics", "/", "/readyz"):
                bodies.append(httpx.get(base + path, timeout=30).text)
            bodies.append(httpx.get(base + "/v1/admin/sources/a", headers=auth, timeout=30).text)
            bodies.append(
                httpx.post(base + "/v1/admin/sources/a/refresh", headers=auth, timeout=30).text
            )
            asyncio.run(_wait_for(base, lambda s: set(s) == {"a", "b"}))
            # The bad file's refusal is logged when the process gets to the SIGHUP: wait for
            # it, since a SIGTERM sent before then would rightly stop the process first.
            _wait_for_log(log, "the new configuration is invalid")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    output = log.read_text()
    assert "the new configuration is invalid; keeping the running one" in output
    assert "connectors[0].type: required key is missing" in output
    assert process.returncode == 0
    for text in [*bodies, output]:
        assert secret not in text
        assert TOKEN not in text
    # The public answer names the failure's class; the admin one has the detail.
    assert "the upstream could not be reached" in bodies[1]
    assert "connection refused" not in bodies[1]
    assert "connection refused" in bodies[5]


async def _wait_for(base: str, condition, within: float = 90.0) -> None:
    """Poll /v1/sources until ``condition`` holds. The bound only stops a broken test from
    hanging: a process importing the app can take many seconds on a loaded machine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            try:
                answer = (await client.get(base + "/v1/sources")).json()
                if condition({s["id"]: s for s in answer["data"]}):
                    return
            except (httpx.TransportError, KeyError, ValueError):
                pass
            if loop.time() > deadline:
                raise AssertionError("condition not reached")
            await asyncio.sleep(0.1)


def _wait_for_log(log: Path, text: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"{text!r} not logged"
        time.sleep(0.1)

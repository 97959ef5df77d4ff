"""Config files that would take every source offline, or the process down.

Before the defences, an empty file (or one with no source) was "valid, 0 sources" for
``beffroi check`` and a SIGHUP applied it, dropping every source while /readyz stayed 200; and a
600-byte YAML alias bomb kept ``check`` busy past 30 s at 1.7 GB, on the event loop in a reload.
Every subprocess here runs with a memory cap and a timeout, so a regression fails, not hangs.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import CONNECTOR_TYPES, eventually
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.config import load_config
from aggregator.registry import config_models
from aggregator.runtime import Runtime
from hostile.serve_support import ROOT, running_server, source_entry, write_config

#: "Billion laughs": nine aliases of nine aliases... of nine strings, 9**9 once expanded.
ALIAS_BOMB = """\
connectors: []
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
BOMB_MESSAGE = "YAML aliases expand to more than 100,000 nodes (alias bomb?)"
#: What ``beffroi check`` may use: it needs about 90 MB; the bomb took 1.7 GB and more.
CHECK_MEMORY = 1 << 30
DISABLED = """\
connectors:
  - id: a
    type: json_records
    url: https://example.org/a.json
    id_field: code
    fields: {name: nom}
    enabled: false
"""
NO_SOURCE = [
    pytest.param("", "the file is empty (or only comments): no source is configured", id="empty"),
    pytest.param("# to do\n", "the file is empty (or only comments)", id="only-comments"),
    pytest.param("connectors: []\n", "connectors: no source is configured", id="empty-list"),
    pytest.param("server:\n  port: 8081\n", "no source is configured", id="no-connectors"),
    pytest.param(DISABLED, "connectors: every source is disabled", id="all-disabled"),
]


def check(config: Path) -> subprocess.CompletedProcess[str]:
    """``beffroi check -c config`` with its memory capped and a timeout."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CHECK_MEMORY, CHECK_MEMORY))

    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=90,
        preexec_fn=cap_memory,
    )


@pytest.mark.parametrize(("text", "message"), NO_SOURCE)
def test_check_refuses_a_config_with_no_source(tmp_path: Path, text: str, message: str) -> None:
    """An empty file, no ``connectors``, an empty list, or only disabled sources: exit 2."""
    config = tmp_path / "beffroi.yaml"
    config.write_text(text)
    result = check(config)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"1 problem in {config}\n{config}:" in result.stderr
    assert message in result.stderr
    assert "valid" not in result.stdout


def test_check_refuses_an_alias_bomb_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bomb.yaml"
    config.write_text(ALIAS_BOMB)
    result = check(config)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{config}:7: {BOMB_MESSAGE}" in result.stderr  # f: the first line past the bound


def test_check_refuses_lists_nested_too_deeply(tmp_path: Path) -> None:
    """PyYAML composes recursively: 5,000 `[` used to end in a RecursionError traceback."""
    config = tmp_path / "deep.yaml"
    config.write_text("connectors: " + "[" * 5000 + "\n")
    result = check(config)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{config}:1: invalid YAML: lists or mappings nested too deeply" in result.stderr
    assert "Traceback" not in result.stderr


def test_anchors_shared_between_sources_still_load(tmp_path: Path) -> None:
    """The bound leaves ordinary anchors and merge keys alone: 50 sources sharing one."""
    config = tmp_path / "beffroi.yaml"
    first = (
        "  - &common\n    id: s0\n    type: json_records\n    url: https://example.org/0.json\n"
        "    id_field: code\n    fields: {name: nom, free: {path: libre, type: int}}\n"
    )
    others = "".join(
        f"  - <<: *common\n    id: s{n}\n    url: https://example.org/{n}.json\n"
        for n in range(1, 50)
    )
    config.write_text("connectors:\n" + first + others)
    result = check(config)
    assert result.returncode == 0, result.stderr
    assert "valid, 50 source(s) enabled" in result.stdout


async def test_admin_reload_refuses_a_config_with_no_source(tmp_path: Path, upstream) -> None:
    """The admin reload answers 400 naming the problem; the running source stays."""
    upstream.route("/a.json", Reply(body=b'[{"code": "P1", "nom": "Gare"}]'))
    config = tmp_path / "beffroi.yaml"
    config.write_text(
        "server:\n  admin_token: t0ken-for-the-test\nconnectors:\n"
        f"  - id: a\n    type: json_records\n    url: {upstream.url('/a.json')}\n"
        "    id_field: code\n    fields: {name: nom}\n"
    )
    runtime = Runtime(
        load_config(config, connector_types=config_models(CONNECTOR_TYPES)), CONNECTOR_TYPES
    )
    async with TestClient(TestServer(create_app(runtime))) as client:
        await eventually(lambda: runtime.live.snapshot("a") is not None)
        config.write_text("server:\n  admin_token: t0ken-for-the-test\n")
        answer = await client.post(
            "/v1/admin/reload", headers={"Authorization": "Bearer t0ken-for-the-test"}
        )
        assert answer.status == 400
        problem = await answer.json(content_type=None)
        assert any("no source is configured" in error for error in problem["errors"])
        assert (await client.get("/v1/sources/a")).status == 200


def source_ids(server) -> set[str]:
    return {source["id"] for source in server.get("/v1/sources").json()["data"]}


def test_sighup_refuses_configs_without_a_source_and_keeps_serving(tmp_path: Path) -> None:
    """Each file that would serve nothing is refused with the reason in the log; both sources
    keep serving and /readyz stays as it was."""
    config = tmp_path / "beffroi.yaml"
    write_config(config, "a", "b")
    with running_server(config) as server:
        server.wait_until(lambda: server.get("/v1/sources/b").json()["data"]["record_count"] == 2)
        ready = server.get("/readyz").status_code
        disabled = "connectors:\n" + source_entry("a", tmp_path / "rows.json")
        disabled += "    enabled: false\n"
        for text, reason in (
            ("", "the file is empty (or only comments): no source is configured"),
            ("connectors: []\n", "connectors: no source is configured"),
            (disabled, "connectors: every source is disabled"),
        ):
            config.write_text(text)
            server.process.send_signal(signal.SIGHUP)
            server.wait_for_log(reason)
        log = server.log()
        assert log.count("SIGHUP: the new configuration is invalid; keeping the running one") == 3
        assert "configuration reloaded" not in log
        assert source_ids(server) == {"a", "b"}
        assert server.get("/v1/sources/a").json()["data"]["record_count"] == 2
        assert server.get("/readyz").status_code == ready


def test_sighup_with_an_alias_bomb_is_refused_while_the_server_answers(tmp_path: Path) -> None:
    """The bomb is refused with the file named; /healthz answers right after the signal (the
    reload used to build the bomb on the event loop, answering nothing for minutes)."""
    config = tmp_path / "beffroi.yaml"
    write_config(config, "a")
    with running_server(config) as server:
        config.write_text(ALIAS_BOMB)
        server.process.send_signal(signal.SIGHUP)
        assert server.get("/healthz").status_code == 200
        server.wait_for_log(f"{config}:7: {BOMB_MESSAGE}")
        assert server.get("/healthz").status_code == 200
        assert source_ids(server) == {"a"}

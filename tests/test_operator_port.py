"""`server.operator_port`: the status page, sources' statuses, metrics and admin API answer on
the operator listener only; the public port answers them as unknown paths, even right after
the operator port rendered them (the response cache must not carry them over)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from redis_server import free_port

ROOT = Path(__file__).parents[1]
TOKEN = "operator-port-admin-token"
OPERATOR_ONLY = ["/", "/v1/sources", "/v1/sources/parks", "/metrics", "/v1/admin/sources/parks"]
SERVE = [sys.executable, "-m", "aggregator.cli", "--log-level", "WARNING", "serve"]
PUBLIC = ["/healthz", "/readyz", "/v1/openapi.json", "/v1/sources/parks/records"]


def test_operator_routes_answer_on_the_operator_port_only(tmp_path):
    (tmp_path / "rows.json").write_text('[{"code": "P1"}]')
    public, operator = free_port(), free_port()
    config = tmp_path / "beffroi.yaml"
    config.write_text(
        f"""
server:
  admin_token: {TOKEN}
  operator_port: {operator}
defaults:
  allow_file_urls: true
connectors:
  - {{id: parks, type: json_records, url: "file:rows.json", id_field: code, required: true}}
"""
    )
    process = subprocess.Popen(
        [*SERVE, "-c", str(config), "--port", str(public)],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        # Generous: importing the app can take many seconds on a loaded machine.
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{public}/readyz", timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server never got ready"
            time.sleep(0.1)
        unknown = httpx.get(f"http://127.0.0.1:{public}/v1/nowhere", timeout=30)
        for path in OPERATOR_ONLY:
            on_operator = httpx.get(f"http://127.0.0.1:{operator}{path}", headers=auth, timeout=30)
            assert on_operator.status_code == 200, (path, on_operator.text)
            on_public = httpx.get(f"http://127.0.0.1:{public}{path}", headers=auth, timeout=30)
            assert on_public.status_code == 404, path
            assert on_public.headers["Content-Type"] == "application/problem+json"
            assert on_public.json()["type"] == unknown.json()["type"]
        for path in PUBLIC:
            assert httpx.get(f"http://127.0.0.1:{public}{path}", timeout=30).status_code == 200, (
                path
            )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_the_operator_port_cannot_be_the_public_one(tmp_path):
    config = tmp_path / "beffroi.yaml"
    config.write_text(
        "server:\n  port: 8080\n  operator_port: 8080\n"
        "connectors:\n  - {id: a, type: json_records, url: 'https://e.org/a.json', id_field: id}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "check", "-c", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "server.operator_port: must differ from `port` (the public port)" in result.stderr

"""`--log-format json`: one JSON object per line, for a log pipeline; a source's transitions
carry `source`, `event` and `state`; secrets are masked as in the text format."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from redis_server import free_port

ROOT = Path(__file__).parents[1]
SECRET = "json-log-secret-k3y"
SERVE = [sys.executable, "-m", "aggregator.cli", "--log-format", "json", "serve"]


def test_json_log_lines_carry_source_event_and_state(tmp_path):
    closed = free_port()
    (tmp_path / "rows.json").write_text('[{"code": "P1"}]')
    config = tmp_path / "beffroi.yaml"
    config.write_text(
        f"""
defaults:
  allow_file_urls: true
connectors:
  - id: down
    type: json_records
    url: "http://127.0.0.1:{closed}/rows.json?token={SECRET}"
    refresh: 1h
    retries: 0
    id_field: code
  - id: parks
    type: json_records
    url: file:rows.json
    refresh: 1h
    id_field: code
"""
    )
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*SERVE, "-c", str(config), "--port", str(port)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            # Generous: importing the app can take many seconds on a loaded machine.
            deadline = time.monotonic() + 90
            while True:
                try:
                    url = f"http://127.0.0.1:{port}/v1/sources"
                    sources = httpx.get(url, timeout=30).json()["data"]
                    if all(s["last_attempt"] for s in sources):
                        break
                except (httpx.TransportError, ValueError, KeyError):
                    pass
                assert time.monotonic() < deadline, "the server never polled both sources"
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    text = log.read_text()
    assert SECRET not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    events = {(line.get("source"), line.get("event"), line.get("state")) for line in lines}
    assert ("down", "failing", "failing") in events
    assert ("parks", "loaded", "ok") in events
    failing = next(line for line in lines if line.get("event") == "failing")
    assert failing["level"] == "WARNING"
    assert failing["message"].startswith("source down is failing:")

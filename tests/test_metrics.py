"""/metrics as an on-call team reads it: each source's state, freshness and content figures,
errors by kind, the store, reloads, the build and the process; read by Prometheus's own text
parser. Then `serve --workers`: one scrape of a host gives consistent counters, whichever
worker answers, and every process exports the sources."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from aiohttp.test_utils import TestClient, TestServer
from process_signals import all_children_catch
from prometheus_client.parser import text_string_to_metric_families
from redis_server import free_port
from support import runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.config import load_config
from aggregator.registry import config_models, discover_connector_types
from aggregator.runtime import Runtime

ROOT = Path(__file__).parents[1]
DATA = ROOT / "config" / "demo-data"
ROWS = b'[{"code": "P1", "nom": "Gare"}, {"code": "P2", "nom": "Euralille"}]'
TOKEN = "metrics-admin-token"
SERVE = [sys.executable, "-m", "aggregator.cli", "--log-level", "WARNING", "serve"]


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample by (name, labels), parsed as Prometheus parses it."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def helps(text: str) -> dict[str, str]:
    return {family.name: family.documentation for family in text_string_to_metric_families(text)}


def config(url: str) -> str:
    return f"""
    server:
      admin_token: {TOKEN}
    defaults:
      allow_file_urls: true
    clock:
      fixed: 2023-11-07T17:06:00-08:00
    connectors:
      - id: parks
        type: json_records
        url: "{url}"
        refresh: 1h
        retries: 0
        id_field: code
      - id: caltrain
        type: gtfs
        url: file:caltrain-2023-11.gtfs.zip
      - id: caltrain-rt
        type: gtfs_rt
        feed: caltrain
        retries: 0
        urls:
          - file:caltrain-2023-11-08T0105Z-trip-updates.pb
          - file:caltrain-2023-11-08T0105Z-vehicle-positions.pb
    """


async def test_metrics_say_state_errors_by_kind_content_and_process(upstream, tmp_path):
    upstream.route(
        "/p.json",
        [Reply(body=ROWS), Reply(status=503), Reply(status=404), Reply(body=b'[{"x": 1}]')],
    )
    runtime = runtime_from(config(upstream.url("/p.json")), base_dir=DATA)
    for source in ("parks", "caltrain", "caltrain-rt"):
        await runtime.poll_once(source)
    for _ in range(3):
        await runtime.poll_once("parks")  # 503, 404, then rows no mapping can read
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        text = await (await client.get("/metrics")).text()
    values = samples(text)

    def value(name: str, **labels: str) -> float:
        return values[(name, frozenset(labels.items()))]

    # One gauge per state, 1 for the current one: an alert rule needs no parsing of strings.
    assert value("beffroi_source_state", source="parks", state="stale") == 1
    assert value("beffroi_source_state", source="parks", state="ok") == 0
    assert value("beffroi_source_state", source="caltrain", state="ok") == 1
    assert value("beffroi_source_stale", source="parks") == 1
    assert value("beffroi_source_stale_after_seconds", source="parks") == 3 * 3600
    assert value("beffroi_source_records", source="parks") == 2  # the last good data
    assert value("beffroi_source_consecutive_failures", source="parks") == 3
    # Errors by kind, not "error" for all of them.
    for kind in ("http_5xx", "http_4xx", "mapping"):
        assert value("beffroi_source_poll_errors_total", source="parks", kind=kind) == 1
    # Content figures: the realtime feeds' age, the timetable's end.
    assert value("beffroi_realtime_feed_age_seconds", source="caltrain-rt", kind="vehicles") > 0
    assert (
        "beffroi_realtime_feed_age_seconds",
        frozenset({"source": "caltrain-rt", "kind": "trip_updates"}.items()),
    ) in values
    assert value("beffroi_gtfs_valid_until_timestamp_seconds", source="caltrain") > 1.7e9
    assert value("beffroi_store_up") == 1
    assert value("beffroi_config_last_reload_successful") == 1
    assert any(name == "beffroi_build_info" for name, _labels in values)
    assert any(name == "process_resident_memory_bytes" for name, _labels in values)
    # No `_created` twin of every counter; help texts list their label values.
    assert not [name for name, _labels in values if name.endswith("_created")]
    documentation = helps(text)
    assert "http_4xx, http_5xx, unreachable, timeout" in documentation["beffroi_source_poll_errors"]
    assert "never_loaded, ok, degraded, stale, failing" in documentation["beffroi_source_state"]


async def test_a_refused_reload_shows_in_metrics(upstream, tmp_path):
    upstream.route("/p.json", Reply(body=ROWS))
    path = tmp_path / "beffroi.yaml"
    path.write_text(
        f"server: {{admin_token: {TOKEN}}}\nconnectors:\n"
        f"  - {{id: parks, type: json_records, url: '{upstream.url('/p.json')}', id_field: code}}\n"
    )
    types = discover_connector_types()
    runtime = Runtime(load_config(path, connector_types=config_models(types)), types)
    async with TestClient(TestServer(create_app(runtime))) as client:
        path.write_text("connectors: [{id: BAD}]\n")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await client.post("/v1/admin/reload", headers=auth)).status == 400
        values = samples(await (await client.get("/metrics")).text())
    assert values[("beffroi_config_last_reload_successful", frozenset())] == 0


async def test_workers_share_counters_and_every_process_exports_the_sources(
    tmp_path, upstream, redis_server
):
    """Scrapes of `serve --workers 2` land on either worker: request counts only grow (they
    went 99, 101, 99... and Prometheus saw resets), the poller's poll counts are in every
    scrape, and so is each source's state (the API processes exported none)."""
    upstream.route("/p.json", Reply(body=ROWS))
    config_path = tmp_path / "beffroi.yaml"
    config_path.write_text(
        f"""
server:
  cursor_secret: metrics-test-shared-secret
store:
  backend: redis
  url: {redis_server.url}
  key_prefix: "metrics:"
connectors:
  - id: parks
    type: json_records
    url: {upstream.url("/p.json")}
    refresh: 1h
    required: true
    id_field: code
"""
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    parent = subprocess.Popen(  # noqa: ASYNC220 - a process to supervise, not to wait on here
        [*SERVE, "-c", str(config_path), "--workers", "2", "--port", str(port)],
        cwd=ROOT,
        env=env,
    )
    try:

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient(timeout=30) as client:
                    return (await client.get(base + "/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        # Generous: three processes importing the app can take long on a loaded machine.
        deadline = asyncio.get_running_loop().time() + 90
        # Ready is one worker answering; the stop below must find all three with their SIGTERM
        # handler (one still starting dies of the signal, and the supervisor exits 1).
        while not (await ready() and all_children_catch(parent.pid, 3)):
            assert asyncio.get_running_loop().time() < deadline, "the workers never got ready"
            await asyncio.sleep(0.2)
        totals = []
        for _ in range(12):
            async with httpx.AsyncClient(timeout=30) as client:  # a new connection each time
                await client.get(base + "/v1/sources")
            async with httpx.AsyncClient(timeout=30) as client:
                text = (await client.get(base + "/metrics")).text
            values = samples(text)
            totals.append(
                sum(
                    value
                    for (name, labels), value in values.items()
                    if name == "beffroi_http_request_duration_seconds_count"
                    and ("route", "/v1/sources") in labels
                )
            )
            assert (
                values[
                    ("beffroi_source_state", frozenset({"source": "parks", "state": "ok"}.items()))
                ]
                == 1
            )
            assert (
                values[
                    (
                        "beffroi_source_polls_total",
                        frozenset({"source": "parks", "outcome": "changed"}.items()),
                    )
                ]
                >= 1
            )
        assert totals == sorted(totals), totals
        assert totals[-1] >= 12
    finally:
        parent.send_signal(signal.SIGTERM)
        # In a thread: a blocking wait would freeze this loop and the upstream it serves.
        assert await asyncio.to_thread(parent.wait, 30) == 0

"""The shipped alert rules and dashboard (docs/monitoring/): valid and unit-tested by
Prometheus's own promtool, and every metric they name is one a real Beffroi exports."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from support import runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app

ROOT = Path(__file__).parents[1]
MONITORING = ROOT / "docs" / "monitoring"
DATA = ROOT / "config" / "demo-data"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package prometheus; .ci/run installs it)",
)
METRIC_NAME = re.compile(r"\b((?:beffroi|process|python)_[a-z0-9_]+)")


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120
    )


@needs_promtool
def test_promtool_checks_the_alert_rules():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_of_the_alert_rules_pass():
    """Each alert fires on the series it is about, at the time its `for:` says, not before."""
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def expressions() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    found = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    found += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return found


async def test_every_metric_the_rules_and_dashboard_name_is_exported(upstream):
    """A rule on a metric name nobody exports never fires: each name is checked against a
    real scrape of a process with a timetable, a realtime feed and a records source."""
    upstream.route("/p.json", [Reply(body=b'[{"code": "P1"}]'), Reply(status=503)])
    runtime = runtime_from(
        f"""
        defaults: {{allow_file_urls: true}}
        clock: {{fixed: "2023-11-07T17:06:00-08:00"}}
        connectors:
          - {{id: parks, type: json_records, url: "{upstream.url("/p.json")}", id_field: code}}
          - {{id: caltrain, type: gtfs, url: "file:caltrain-2023-11.gtfs.zip"}}
          - id: caltrain-rt
            type: gtfs_rt
            feed: caltrain
            urls: [file:caltrain-2023-11-08T0105Z-vehicle-positions.pb]
        """,
        base_dir=DATA,
    )
    for source in ("parks", "caltrain", "caltrain-rt", "parks"):
        await runtime.poll_once(source)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        await client.get("/v1/sources")
        text = await (await client.get("/metrics")).text()
    exported = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    named = {name for expr in expressions() for name in METRIC_NAME.findall(expr)}
    assert len(named) >= 12
    assert named - exported == set()

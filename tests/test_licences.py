"""Each source's licence and attribution, from the YAML to every answer's meta.sources and
/v1/sources, so an app can show "© Ilévia, Licence Ouverte" under a board."""

import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import config_from, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.config import ConfigError

ROOT = Path(__file__).parents[1]
ROWS = b'[{"code": "P1", "nom": "Gare"}]'


def source(url: str, terms: str) -> str:
    return f"""
    connectors:
      - id: parks
        type: json_records
        url: "{url}"
        id_field: code
        {terms}
    """


async def test_answers_and_sources_carry_licence_and_attribution(upstream):
    upstream.route("/p.json", Reply(body=ROWS))
    runtime = runtime_from(
        source(upstream.url("/p.json"), "licence: odbl-1.0\n        attribution: © MEL")
    )
    await runtime.poll_once("parks")
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        records = await (await client.get("/v1/sources/parks/records")).json()
        status = (await (await client.get("/v1/sources/parks")).json())["data"]
    terms = {
        "licence": "ODbL-1.0",  # in its SPDX spelling
        "licence_url": "https://spdx.org/licenses/ODbL-1.0.html",
        "attribution": "© MEL",
        "share_alike": True,
    }
    assert terms.items() <= records["meta"]["sources"]["parks"].items()
    assert terms.items() <= status.items()


def test_a_licence_that_is_neither_spdx_nor_a_url_is_refused():
    with pytest.raises(ConfigError) as info:
        config_from(source("https://e.org/p.json", "licence: Licence-Ouverte"))
    (issue,) = info.value.issues
    assert "'Licence-Ouverte' is neither an SPDX licence identifier" in str(issue)
    url = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
    config = config_from(source("https://e.org/p.json", f"licence: {url}"))
    assert config.connectors[0].licence == url


def test_check_warns_about_a_source_without_licence(tmp_path):
    path = tmp_path / "beffroi.yaml"
    path.write_text(
        "connectors:\n"
        "  - {id: a, type: json_records, url: 'https://e.org/a.json', id_field: id}\n"
        "  - {id: b, type: json_records, url: 'https://e.org/b.json', id_field: id,"
        " licence: CC-BY-4.0, attribution: B}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "check", "-c", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    warnings = [line.strip() for line in result.stdout.splitlines() if "warning:" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: a has no `licence`")

"""The operator's page (GET /), checked over HTTP and as rendered by real headless Chromium."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from bikes.helpers import FIXTURES, runtime_from

from aggregator.api.app import create_app
from aggregator.api.status_page import register_status_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Set to a path (e.g. docs/status-page.png) to keep the screenshot the test takes.
SCREENSHOT_ENV = "BEFFROI_STATUS_SCREENSHOT"
CONFIG = """
defaults: {timezone: Europe/Paris, allow_file_urls: true}
connectors:
  - id: lovelo
    type: gbfs
    title: Lovélo (Rouen) bike share
    files:
      station_information: file:lovelo-station_information.json
      station_status: file:lovelo-station_status.json
  - id: vlille
    type: bike_stations
    title: V'Lille availability
    url: file:vlille_temps_reel-handmade.geojson
    id_field: libelle
    fields: {is_installed: etat}
    values: {is_installed: {"EN SERVICE": true, "HORS SERVICE": false}}
  - id: parkings-lille
    type: parkings
    title: Parkings relais (Lille)
    url: file:missing-parkings.json
    id_field: libelle
    retries: 0
  - id: agenda
    type: json_records
    title: Council agenda
    url: file:not-polled-yet.json
    id_field: uid
"""


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    runtime = runtime_from(CONFIG, base_dir=FIXTURES)
    for source_id in ("lovelo", "vlille", "parkings-lille"):
        await runtime.poll_once(source_id)
    app = create_app(runtime, poll=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_page_is_self_contained_html(server_url):
    """GET / is HTML with no external resource, and a policy that forbids loading any."""
    async with ClientSession() as session, session.get(server_url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        html = await response.text()
    assert "<script>" in html and "v1/sources" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_route_is_declared_outside_the_envelope_for_openapi():
    """Registered on a router, GET / is documented as text/html and not enveloped."""
    from aggregator.api.routing import ApiRouter

    router = ApiRouter()
    register_status_page(router)
    route = router.lookup("GET", "/")
    assert route is not None and route.media_type == "text/html" and not route.enveloped
    document = router.openapi(
        runtime_from("connectors: []"), title="t", version="0", description="d"
    )
    assert "text/html" in document["paths"]["/"]["get"]["responses"]["200"]["content"]


async def run_chromium(*args: str) -> str:
    """Run headless Chromium to completion; its stdout."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        # Bounded so a hung browser fails the test instead of hanging it.
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_chromium_renders_each_sources_state_and_error(server_url):
    """After its script ran, the page shows every source with its state and last error, and
    why a source is stale: Lovélo's capture of February 2025 is polled fine but its content is
    months old at today's clock."""
    dom = await run_chromium("--dump-dom", server_url)
    cards = dict(re.findall(r'data-source-id="([^"]+)" data-state="([^"]+)"', dom))
    assert cards == {
        "lovelo": "stale",
        "vlille": "degraded",
        "parkings-lille": "failing",
        "agenda": "never_loaded",
    }
    assert "Lovélo (Rouen) bike share" in dom
    # The failing source's last error, as the public sees it: its class, never the path.
    assert "the local file could not be read" in dom
    assert "no such file" not in dom
    assert "4 sources · updated" in dom
    assert re.search(
        r'data-reason="content_outdated">Stale \(content_outdated\): the feed was last '
        r"updated \d+ days ago \(limit 5 min\), since ",
        dom,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_chromium_screenshot_on_a_phone_sized_window(server_url, tmp_path):
    """The page renders on a phone-sized window (a PNG is produced; kept if asked for)."""
    shot = tmp_path / "status.png"
    await run_chromium("--window-size=412,1100", f"--screenshot={shot}", server_url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get(SCREENSHOT_ENV)
    if keep:
        shutil.copyfile(shot, Path(keep))

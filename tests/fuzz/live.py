"""A real Beffroi server on 127.0.0.1 with the demo data, run in a background thread."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from support import runtime_from

from aggregator.api.app import create_app
from aggregator.runtime import Runtime
from aggregator.serving import HTTP_LIMITS

T = TypeVar("T")

DEMO_DATA = Path(__file__).resolve().parents[2] / "config" / "demo-data"

#: The demo's sources (config/demo.yaml) plus a municipal agenda, on a clock at which the
#: Caltrain realtime captures are fresh.
DEMO_CONFIG = """
clock:
  fixed: 2023-11-07T17:06:00-08:00
defaults:
  timezone: Europe/Paris
  languages: [fr, en]
  allow_file_urls: true
server:
  cors_origins: ["*"]
connectors:
  - id: communes
    type: communes
    url: file:communes-demo-extract.geojson
    fields: {code: code, name: nom}
  - id: lovelo-stations
    type: json_records
    url: file:lovelo-station-information.json
    records_path: data.stations
    id_field: station_id
    fields:
      name: name
      address: address
      lat: {path: lat, type: float, required: true}
      lon: {path: lon, type: float, required: true}
      capacity: {path: capacity, type: int}
      virtual: {path: is_virtual_station, type: bool}
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
      - file:caltrain-2023-11-08T0105Z-service-alerts.pb
  - id: stq
    type: gtfs
    url: file:stq-ferries-2026.gtfs.zip
  - id: paris-events
    type: opendatasoft
    export_url: file:openagenda-paris-events-ods-v1.json
    timezone: Europe/Paris
  - id: machbar
    type: ics
    url: file:machbar-potsdam-2019.ics
    categories: [atelier]
  - id: council
    type: ics
    channel: agenda
    url: file:council.ics
  - id: niort-pharmacies
    type: places
    url: file:niort-pharmacies-osm.geojson
    format: geojson
    id_field: "@id"
    category: pharmacy
    fields:
      name: name
      opening_hours: opening_hours
      phone: phone
    holidays: {country: FR}
  - id: guardian-news
    type: news
    url: file:guardian-us-2018.rss
  - id: bordeaux-waste
    type: waste
    url: file:bordeaux-metropole-collection-zones.json
    fields: {id: gid, name: commune, geometry: geo_shape, stream: type, weekdays: jour_col}
    values:
      stream: {OM: household, TRI: recycling}
"""

COUNCIL_ICS = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Beffroi fuzz//Council//FR",
        "BEGIN:VEVENT",
        "UID:conseil-2023-11-20@mairie.example",
        "DTSTART;TZID=Europe/Paris:20231120T180000",
        "DTEND;TZID=Europe/Paris:20231120T210000",
        "SUMMARY:Conseil municipal",
        # Without a DESCRIPTION the API serves "description": {} (see test_api_props).
        "DESCRIPTION:Séance publique",
        "LOCATION:Hôtel de Ville",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


def demo_data_dir(target: Path) -> Path:
    """Copy the bundled demo data and the agenda calendar into ``target``."""
    for path in DEMO_DATA.iterdir():
        if path.is_file():
            shutil.copy(path, target / path.name)
    (target / "council.ics").write_text(COUNCIL_ICS, encoding="utf-8")
    return target


async def loaded_runtime(base_dir: Path, config: str = DEMO_CONFIG) -> Runtime:
    """A runtime on the demo config (or ``config``) whose every source was polled once and
    indexed."""
    runtime = runtime_from(config, base_dir=base_dir)
    for source_id in runtime.connectors:
        outcome = await runtime.poll_once(source_id)
        if outcome.outcome != "changed":
            raise RuntimeError(f"demo source {source_id} did not load: {outcome}")
    await runtime.live.settled()
    return runtime


class LiveServer:
    """Serves the demo runtime over real TCP on a free port of 127.0.0.1, from its own thread."""

    def __init__(self, base_dir: Path, config: str = DEMO_CONFIG) -> None:
        self._base_dir = base_dir
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.runtime: Runtime | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _start(self) -> None:
        self.runtime = await loaded_runtime(self._base_dir, self._config)
        # The same HTTP limits as `beffroi serve`.
        self._runner = web.AppRunner(create_app(self.runtime, poll=False), **HTTP_LIMITS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = self._runner.addresses
        self.port = sockets[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> LiveServer:
        self._thread.start()
        self.run(self._start())
        return self

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

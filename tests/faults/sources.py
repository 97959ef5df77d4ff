"""The fault suite's harness: one source of each type on real data, next to a healthy one.

Every case builds a real :class:`~aggregator.runtime.Runtime` with two (three for realtime)
sources polling the ``upstream`` test server: ``faulty`` (the type under test) and ``healthy``
(a json_records source on another path). A case loads good data, switches the faulty path to a
fault, polls, checks what the runtime serves and says, then heals the upstream and polls again.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from support import runtime_from
from upstream_server import Reply, Upstream

from aggregator.poller import PollOutcome
from aggregator.runtime import Runtime
from aggregator.status import STALE_AFTER_FAILURES, SourceStatus

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo-data"
EVENT_FIXTURES = ROOT / "tests" / "fixtures" / "events"
#: The instant the bundled Caltrain realtime captures were taken: realtime matches at it, and
#: the ICS window (1 day back, 180 ahead) holds the machBar calendar's recurring events.
CLOCK = "2023-11-07T17:06:00-08:00"
#: The deadline of the timeout faults: small enough to keep them cheap.
TIMEOUT_S = 0.3
#: The faulty source's deadline otherwise: polls that must succeed, or fail for another reason
#: than time, get one a loaded machine cannot overrun (0.3 s could turn a 500 into a timeout).
ROOMY_TIMEOUT_S = 30.0
#: Every good payload below fits; the over-the-cap faults go past it.
MAX_BYTES = 1_048_576
FAULTY, HEALTHY = "faulty", "healthy"
OA_PATH = "/v2/agendas/41630080/events"
ODS_PATH = "/api/explore/v2.1/catalog/datasets/evenements-publics-openagenda/records"
ETAG = '"good-v1"'


def _lovelo() -> bytes:
    return (DEMO / "lovelo-station-information.json").read_bytes()


def _lovelo_csv() -> bytes:
    """The Lovélo stations (real data) as the CSV export a portal would offer."""
    stations = orjson.loads(_lovelo())["data"]["stations"]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["station_id", "name", "lat", "lon"])
    for s in stations:
        writer.writerow([s["station_id"], s["name"], s["lat"], s["lon"]])
    return out.getvalue().encode()


def _ods_api_page() -> bytes:
    """The real ODS export (Explore v1) re-shaped as one Explore v2.1 records page."""
    export = orjson.loads((DEMO / "openagenda-paris-events-ods-v1.json").read_bytes())
    rows = [r["fields"] for r in export["records"]]
    return orjson.dumps({"total_count": len(rows), "results": rows})


def _openagenda_page() -> bytes:
    """One real OpenAgenda v2 list page (Erwane/openagenda-api fixture, MIT), detailed event."""
    event = orjson.loads((EVENT_FIXTURES / "events_event.json").read_bytes())["event"]
    return orjson.dumps({"total": 1, "events": [event], "after": None, "success": True})


@dataclass(frozen=True)
class Kind:
    """A connector type, its source entry (URLs under ``base``) and its good payload."""

    name: str
    path: str
    content_type: str
    good: Callable[[], bytes]
    entry: Callable[[str], dict[str, Any]]
    #: Sources this one needs besides itself (the timetable of a realtime feed).
    extra: Callable[[str], list[dict[str, Any]]] = lambda base: []
    extra_routes: dict[str, Callable[[], bytes]] = field(default_factory=dict)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "json_records",
            "/feed.json",
            "application/json",
            _lovelo,
            lambda base: {
                "type": "json_records",
                "url": f"{base}/feed.json",
                "records_path": "data.stations",
                "id_field": "station_id",
                "fields": {
                    "name": "name",
                    "lat": {"path": "lat", "type": "float", "required": True},
                },
            },
        ),
        Kind(
            "csv_records",
            "/feed.csv",
            "text/csv",
            _lovelo_csv,
            lambda base: {
                "type": "csv_records",
                "url": f"{base}/feed.csv",
                "id_field": "station_id",
                "fields": {
                    "name": "name",
                    "lat": {"path": "lat", "type": "float", "required": True},
                },
            },
        ),
        Kind(
            "gtfs",
            "/gtfs.zip",
            "application/zip",
            lambda: (DEMO / "caltrain-2023-11.gtfs.zip").read_bytes(),
            lambda base: {"type": "gtfs", "url": f"{base}/gtfs.zip"},
        ),
        Kind(
            "gtfs_rt",
            "/trip-updates.pb",
            "application/x-protobuf",
            lambda: (DEMO / "caltrain-2023-11-08T0105Z-trip-updates.pb").read_bytes(),
            lambda base: {
                "type": "gtfs_rt",
                "feed": "caltrain",
                "urls": [f"{base}/trip-updates.pb"],
            },
            extra=lambda base: [
                {"id": "caltrain", "type": "gtfs", "url": f"{base}/caltrain.zip", "retries": 0}
            ],
            extra_routes={
                "/caltrain.zip": lambda: (DEMO / "caltrain-2023-11.gtfs.zip").read_bytes()
            },
        ),
        Kind(
            "ics",
            "/calendar.ics",
            "text/calendar",
            lambda: (DEMO / "machbar-potsdam-2019.ics").read_bytes(),
            lambda base: {"type": "ics", "url": f"{base}/calendar.ics", "max_occurrences": 2000},
        ),
        Kind(
            "openagenda",
            OA_PATH,
            "application/json",
            _openagenda_page,
            lambda base: {
                "type": "openagenda",
                "agenda_uid": "41630080",
                "api_key": "oa-test-key",
                "base_url": f"{base}/v2",
            },
        ),
        Kind(
            "opendatasoft",
            "/ods-export.json",
            "application/json",
            lambda: (DEMO / "openagenda-paris-events-ods-v1.json").read_bytes(),
            lambda base: {
                "type": "opendatasoft",
                "export_url": f"{base}/ods-export.json",
                "timezone": "Europe/Paris",
            },
        ),
        Kind(
            "opendatasoft-api",
            ODS_PATH,
            "application/json",
            _ods_api_page,
            lambda base: {
                "type": "opendatasoft",
                "base_url": base,
                "dataset": "evenements-publics-openagenda",
                "page_size": 100,
                "timezone": "Europe/Paris",
            },
        ),
    )
}


def good_reply(kind: Kind, body: bytes | None = None) -> Reply:
    """The good payload with an ETag, so a healthy upstream answers later polls with a 304."""
    return Reply(
        body=kind.good() if body is None else body,
        content_type=kind.content_type,
        headers={"ETag": ETAG},
    )


def build_runtime(kind: Kind, upstream: Upstream, **overrides: Any) -> Runtime:
    """A runtime with the faulty source of ``kind`` (keys ``overrides``) and a healthy one."""
    base = upstream.url("")
    faulty = {
        "id": FAULTY,
        **kind.entry(base),
        "timeout": ROOMY_TIMEOUT_S,
        "retries": 0,
        "max_bytes": MAX_BYTES,
        **overrides,
    }
    healthy = {
        "id": HEALTHY,
        **KINDS["json_records"].entry(base),
        "url": f"{base}/healthy.json",
        "retries": 0,
    }
    config = {
        "clock": {"fixed": CLOCK},
        "defaults": {"timezone": "America/Los_Angeles", "languages": ["fr", "en"]},
        "connectors": [healthy, *kind.extra(base), faulty],
    }
    upstream.route("/healthy.json", good_reply(KINDS["json_records"]))
    for path, body in kind.extra_routes.items():
        upstream.route(path, Reply(body=body(), headers={"ETag": ETAG}))
    return runtime_from(yaml.safe_dump(config, sort_keys=False))


def state(runtime: Runtime, source_id: str = FAULTY) -> str:
    """The state a client would read for the source now."""
    status: SourceStatus = runtime.statuses[source_id]
    return status.state(datetime.now(UTC)).value


async def load_good(runtime: Runtime, kind: Kind, upstream: Upstream) -> None:
    """Poll every source once on good data; each must be served and ``ok``."""
    upstream.route(kind.path, good_reply(kind))
    for source_id in runtime.connectors:
        outcome = await runtime.poll_once(source_id)
        assert outcome.outcome == "changed", (source_id, outcome)
        assert state(runtime, source_id) == "ok", runtime.statuses[source_id].issue_samples
        assert (runtime.statuses[source_id].record_count or 0) > 0, source_id


async def check_healthy_unaffected(runtime: Runtime) -> None:
    """The healthy neighbour still polls fine and serves its data."""
    outcome = await runtime.poll_once(HEALTHY)
    assert outcome.outcome in ("changed", "unchanged"), outcome
    assert state(runtime, HEALTHY) == "ok"
    assert runtime.live.snapshot(HEALTHY) is not None


async def poll_fault(runtime: Runtime, polls: int = STALE_AFTER_FAILURES) -> list[PollOutcome]:
    """Poll the faulty source ``polls`` times; a poll returns an outcome, it never raises."""
    return [await runtime.poll_once(FAULTY) for _ in range(polls)]


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Peak bytes Python allocated (every thread) inside the block, in the yielded list."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


class CuttingServer:
    """A raw TCP server that starts a 200 answer promising 1 MB, sends 1 KB, then hangs up.

    aiohttp finishes what it starts, so a connection lost mid-body needs a server this crude.
    """

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"{" * 1024)
        await writer.drain()
        writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

"""The one-call home screen and the live stream of boards and alerts, on the demo's real data."""

import asyncio
import gzip
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from google.transit import gtfs_realtime_pb2 as pb
from support import runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app

DATA = Path(__file__).parents[1] / "config" / "demo-data"
CAPTURE = 1699405534


def config(rt_url: str, extra: str = "") -> str:
    return f"""
server:
  stream_heartbeat: 200ms
  max_streams: 2
{extra}
defaults:
  allow_file_urls: true
clock:
  fixed: 2023-11-07T17:06:00-08:00
connectors:
  - id: caltrain
    type: gtfs
    url: file:caltrain-2023-11.gtfs.zip
  - id: caltrain-rt
    type: gtfs_rt
    feed: caltrain
    retries: 0
    urls: ["{rt_url}"]
  - id: lovelo-bikes
    type: gbfs
    files:
      station_information: file:lovelo-station-information.json
      station_status: file:lovelo-station-status.json
  - id: paris-events
    type: opendatasoft
    export_url: file:openagenda-paris-events-ods-v1.json
"""


def message(*cancelled: str) -> bytes:
    feed = pb.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = CAPTURE + len(cancelled)  # newer with each change
    for trip_id in cancelled:
        entity = feed.entity.add(id=f"cancel-{trip_id}")
        entity.trip_update.trip.trip_id = trip_id
        entity.trip_update.trip.start_date = "20231107"
        entity.trip_update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
    return feed.SerializeToString()


@pytest.fixture
async def served(upstream):
    upstream.route("/rt.pb", [Reply(body=message()), Reply(body=message("310"))])
    runtime = runtime_from(config(upstream.url("/rt.pb")), base_dir=DATA)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        yield client, runtime


async def test_home_gathers_every_part_and_explains_empty_ones(served):
    """Near San Francisco station: its board; empty parts say why; under 30 KB gzipped."""
    client, _ = served
    answer = await client.get(
        "/v1/home?lat=37.7764&lon=-122.3949", headers={"Accept-Encoding": "gzip"}
    )
    assert answer.status == 200
    body = await answer.json()
    parts = body["data"]
    assert parts["departures"]["items"][0]["stop"]["id"] == "caltrain:san_francisco"
    assert parts["departures"]["items"][0]["departures"][0]["status"] == "scheduled"
    assert parts["parkings"] == {
        "items": [],
        "reason": {
            "code": "no_source",
            "message": "Aucune source ne fournit ces données.",
            "sources": [],
        },
        "unavailable": {"code": "no_source", "message": "Aucune source ne fournit ces données."},
    }
    assert parts["bikes"] == {
        "items": [],
        "reason": {
            "code": "empty",
            "message": "Rien à afficher ici pour le moment.",
            "sources": ["lovelo-bikes"],
        },
        "unavailable": {"code": "empty", "message": "Rien à afficher ici pour le moment."},
    }
    assert {"caltrain", "caltrain-rt"} <= set(body["meta"]["sources"])
    raw = await client.get(
        "/v1/home?lat=37.7764&lon=-122.3949",
        headers={"Accept-Encoding": "gzip"},
        auto_decompress=False,
    )
    compressed = await raw.read()
    assert len(compressed) < 30_000
    assert gzip.decompress(compressed).startswith(b'{"data":')


async def test_home_near_rouen_shows_bike_stations(served):
    """Near Rouen's cathedral the bike part lists the nearest Lovélo stations."""
    client, _ = served
    body = await (await client.get("/v1/home?lat=49.4402&lon=1.0944")).json()
    bikes = body["data"]["bikes"]["items"]
    assert bikes and bikes[0]["source"] == "lovelo-bikes"
    assert [b["distance_m"] for b in bikes] == sorted(b["distance_m"] for b in bikes)
    assert body["data"]["departures"]["items"] == []


async def test_home_needs_a_place(served):
    """Without lat/lon the home call is a 400 naming the parameter."""
    client, _ = served
    answer = await client.get("/v1/home?lat=37.7")
    assert answer.status == 400
    assert (await answer.json(content_type=None))["errors"][0]["parameter"] == "lon"


async def read_events(response, count: int) -> list[tuple[str, str]]:
    """The next ``count`` SSE events or heartbeats, as (kind, text) pairs."""
    out: list[tuple[str, str]] = []
    block: list[str] = []
    while len(out) < count:
        line = (await asyncio.wait_for(response.content.readline(), timeout=10)).decode()
        if line.startswith(": heartbeat"):
            out.append(("heartbeat", ""))
            continue
        if line == "\n":
            if block:
                fields = dict(item.split(": ", 1) for item in block)
                out.append((fields["event"], fields["id"] + " " + fields["data"]))
                block = []
            continue
        block.append(line.rstrip("\n"))
    return out


async def test_stream_pushes_board_changes_and_resumes(served):
    """A stream sends the board, a heartbeat when idle, a new board when realtime changes;
    reconnecting with Last-Event-ID does not resend what the client has."""
    client, runtime = served
    url = str(client.make_url("/v1/stream?stops=caltrain:lawrence"))
    async with ClientSession() as session, session.get(url) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        first = await read_events(response, 3)
        assert [kind for kind, _ in first] == ["board", "alerts", "heartbeat"]
        board_id = first[0][1].split(" ")[0]
        assert '"caltrain:310"' in first[0][1] and '"cancelled"' not in first[0][1]
        await runtime.poll_once("caltrain-rt")  # the feed now cancels trip 310
        changed = await read_events(response, 1)
        assert changed[0][0] == "board" and '"cancelled"' in changed[0][1]
        latest = changed[0][1].split(" ")[0]
        # Still inside: this stream keeps the topics alive, as the other phones at the
        # stop (or the reconnecting phone's own lingering connection) do.
        async with session.get(url, headers={"Last-Event-ID": latest}) as resumed:
            events = await read_events(resumed, 1)
            assert events == [("heartbeat", "")]  # nothing new since that id
        async with session.get(url, headers={"Last-Event-ID": board_id}) as behind:
            events = await read_events(behind, 1)
            assert events[0][0] == "board" and events[0][1].startswith(latest + " ")


async def test_streams_are_bounded_and_checked(served):
    """Past max_streams a new stream is a 503; a stream needs stops or lines."""
    client, _ = served
    url = str(client.make_url("/v1/stream?stops=caltrain:lawrence"))
    async with ClientSession() as session:
        assert (await session.get(str(client.make_url("/v1/stream")))).status == 400
        open_streams = [await session.get(url) for _ in range(2)]
        for response in open_streams:
            await read_events(response, 1)
        refused = await session.get(url)
        assert refused.status == 503 and refused.headers["Retry-After"] == "30"
        for response in open_streams:
            response.close()

"""The one-call home screen and the live stream of boards and alerts, on the demo's real data."""

import asyncio
import gzip
import json
import re
from pathlib import Path
from typing import Any

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
    # The events source feeds the events channel only: the agenda has no source, and says so.
    assert parts["agenda"]["reason"] == {
        "code": "no_source",
        "message": "Aucune source ne fournit ces données.",
        "sources": [],
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
        line = (await asyncio.wait_for(response.content.readline(), timeout=60)).decode()
        if line.startswith(": heartbeat"):
            out.append(("heartbeat", ""))
            continue
        if line == "\n":
            if block:
                fields = dict(item.split(": ", 1) for item in block)
                if "event" in fields:  # not the stream's opening retry field
                    out.append((fields["event"], fields["id"] + " " + fields["data"]))
                block = []
            continue
        block.append(line.rstrip("\n"))
    return out


async def test_stream_instants_are_to_the_second_like_the_rest_answers(served):
    """The stream's meta.generated_at had milliseconds where every REST answer has seconds."""
    client, _ = served
    url = str(client.make_url("/v1/stream?stops=caltrain:lawrence"))
    async with ClientSession() as session, session.get(url) as response:
        kind, text = (await read_events(response, 1))[0]
        assert kind == "board"
        generated = json.loads(text.split(" ", 1)[1])["meta"]["generated_at"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", generated)


async def events_only(response, count: int) -> list[tuple[str, str]]:
    """The next ``count`` SSE events, past any heartbeats."""
    out: list[tuple[str, str]] = []
    while len(out) < count:
        out += [event for event in await read_events(response, 1) if event[0] != "heartbeat"]
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
        # Past heartbeats: the stream beats every 200 ms, and a poll on a loaded machine
        # can take longer than that.
        changed = await events_only(response, 1)
        assert changed[0][0] == "board-delta" and '"cancelled"' in changed[0][1]
        latest = changed[0][1].split(" ")[0]
        # Still inside: this stream keeps the topics alive, as the other phones at the
        # stop (or the reconnecting phone's own lingering connection) do.
        async with session.get(url, headers={"Last-Event-ID": latest}) as resumed:
            events = await read_events(resumed, 1)
            assert events == [("heartbeat", "")]  # nothing new since that id
        async with session.get(url, headers={"Last-Event-ID": board_id}) as behind:
            # Events come in id order: the stop's alerts (sent after board_id), then,
            # behind the latest version, the whole board again, not a delta.
            events = await events_only(behind, 2)
            assert events[0][0] == "alerts"
            assert events[1][0] == "board" and events[1][1].startswith(latest + " ")


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


async def sse(response, count: int) -> list[dict[str, Any]]:
    """The next ``count`` SSE blocks as aiohttp reads them off the wire: each a dict of its
    fields (``data`` decoded from JSON), heartbeats as ``{"comment": ...}``."""
    out: list[dict[str, Any]] = []
    block: dict[str, Any] = {}
    while len(out) < count:
        raw = await asyncio.wait_for(response.content.readline(), timeout=60)
        assert raw, f"the stream ended ({response.status}) before {count} blocks"
        line = raw.decode().rstrip("\n")
        if not line:
            if block:
                out.append(block)
                block = {}
            continue
        if line.startswith(":"):
            out.append({"comment": line[1:].strip()})
            continue
        name, _, value = line.partition(": ")
        block[name] = json.loads(value) if name == "data" else value
    return out


async def next_event(response) -> dict[str, Any]:
    """The next event, past heartbeats."""
    while True:
        (block,) = await sse(response, 1)
        if "event" in block:
            return block


async def test_stream_sends_retry_freshness_board_options_then_deltas(served):
    """The stream opens with ``retry:``; each event carries its sources' freshness in the
    shape of the REST ``meta.sources``; the REST board options apply; after the first full
    board only the changes come (by departure key); a client behind gets the whole board."""
    client, runtime = served
    options = "limit=3&lang=fr"
    rest_url = f"/v1/stops/caltrain:lawrence/departures?{options}"
    rest = await (await client.get(rest_url)).json()
    url = str(client.make_url(f"/v1/stream?stops=caltrain:lawrence&{options}"))
    async with ClientSession() as session, session.get(url) as response:
        opening, board = await sse(response, 2)
        assert opening == {"retry": "3000"}
        assert board["event"] == "board"
        data = board["data"]
        assert len(data["departures"]) == 3
        assert [d["trip_id"] for d in data["departures"]] == [
            d["trip_id"] for d in rest["data"]["departures"]
        ]
        assert all(d["key"].startswith(d["trip_id"] + "@") for d in data["departures"])
        fresh = data["meta"]["sources"]
        assert set(fresh) == set(rest["meta"]["sources"]) == {"caltrain", "caltrain-rt"}
        for source_id, state in fresh.items():
            assert set(state) == set(rest["meta"]["sources"][source_id])
        assert (await next_event(response))["event"] == "alerts"
        await runtime.poll_once("caltrain-rt")  # the feed now cancels trip 310
        delta = await next_event(response)
        assert delta["event"] == "board-delta"
        change = delta["data"]
        assert change["base"] == int(board["id"]) and "departures" not in change
        assert [d["trip_id"] for d in change["changed"]] == ["caltrain:310"]
        assert change["changed"][0]["status"] == "cancelled"
        assert change["added"] == change["removed"] == []
        assert change["order"] == [d["key"] for d in data["departures"]]
        assert set(change["meta"]["sources"]) == {"caltrain", "caltrain-rt"}
        # Reconnecting from the first board's id (this stream keeps the topic alive): the
        # version it has is gone, so the board comes whole, at its latest version.
        async with session.get(url, headers={"Last-Event-ID": board["id"]}) as again:
            whole = await next_event(again)
            while whole["event"] != "board":
                whole = await next_event(again)
            assert whole["id"] == delta["id"]
            assert [d for d in whole["data"]["departures"] if d["status"] == "cancelled"] == (
                change["changed"]
            )


async def test_stream_groups_boards_and_refuses_bad_board_options(served):
    """group=line_direction gives the REST grouped board; a bad option is a 400 naming it."""
    client, _ = served
    stream = "/v1/stream?stops=caltrain:lawrence"
    async with ClientSession() as session:
        url = str(client.make_url(stream + "&group=line_direction&per_group=1"))
        async with session.get(url) as response:
            board = await next_event(response)
            groups = board["data"]["groups"]
            assert groups and all(len(g["departures"]) == 1 for g in groups)
        for bad in ("group=bogus", "limit=0", "duration=2d", "per_group=x"):
            answer = await session.get(str(client.make_url(f"{stream}&{bad}")))
            assert answer.status == 400
            problem = await answer.json(content_type=None)
            assert problem["errors"][0]["parameter"] == bad.split("=")[0]

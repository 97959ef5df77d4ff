"""Realtime bodies of other shapes through the whole server, on Caltrain's real timetable and
its real trip-updates capture of 2023-11-08T01:05Z rewritten the way other producers publish:
protobuf's JSON mapping served gzipped, and descriptors without trip_id."""

import gzip

from aiohttp.test_utils import TestClient, TestServer
from google.protobuf import json_format
from google.transit import gtfs_realtime_pb2 as pb
from test_realtime_api import DATA, board_of, get_json, started
from test_realtime_api import config as caltrain_config

from aggregator.api.app import create_app

CAPTURE = DATA / "caltrain-2023-11-08T0105Z-trip-updates.pb"


def _capture() -> pb.FeedMessage:
    message = pb.FeedMessage()
    message.ParseFromString(CAPTURE.read_bytes())
    return message


async def test_gzipped_json_mapping_feed_is_applied_like_protobuf(tmp_path):
    """The capture as protobuf JSON (enum names as strings), gzipped: same matches, same
    delays (trip 310 leaves Lawrence 203 s late), source ok."""
    body = json_format.MessageToJson(_capture()).encode()
    assert body.lstrip().startswith(b"{") and b'"tripId"' in body
    path = tmp_path / "trip-updates.json.gz"
    path.write_bytes(gzip.compress(body))
    runtime = await started(caltrain_config([path.as_uri()]))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        source = (await get_json(client, "/v1/sources/caltrain-rt"))["data"]
        assert source["state"] == "ok", source
        assert (source["stats"]["trip_updates"], source["stats"]["matched"]) == (19, 19)
        board = await get_json(
            client, "/v1/stops/caltrain:lawrence/departures?duration=2h&limit=20"
        )
        assert board_of(board)["caltrain:310"]["delay_s"] == 203


async def test_descriptors_matching_no_run_degrade_the_source_with_counters(tmp_path):
    """Every trip_id removed and replaced by a route and start time no run has: nothing
    matches, the source is degraded with the reason, and /v1/sources shows the counters."""
    message = _capture()
    _strip_trip_ids(message, keep=0)
    path = tmp_path / "no-trip-ids.pb"
    path.write_bytes(message.SerializeToString())
    runtime = await started(caltrain_config([path.as_uri()]))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        source = (await get_json(client, "/v1/sources/caltrain-rt"))["data"]
        assert source["state"] == "degraded"
        stats = source["stats"]
        assert (stats["matched"], stats["unmatched_descriptor"]) == (0, 19)
        assert stats["ambiguous_descriptor"] == 0 and stats["bad_entities"] == 0
        assert "no run of route 'L1' leaves at 03:33:00" in stats["descriptor_examples"][0]
        assert stats["match_ratio"] == 0.0
        # The public answer counts the issue; its text is for the operator (the admin view).
        assert source["issues"]["count"] == 1
        detail = runtime.statuses["caltrain-rt"].to_json(runtime.clock.now(), detail=True)
        assert any("no trip update matches" in text for text in detail["issues"]["examples"])


async def test_a_feed_where_most_updates_match_nothing_is_degraded(tmp_path):
    """5 of 19 trip updates keep their trip_id: served, but degraded, saying how many."""
    message = _capture()
    _strip_trip_ids(message, keep=5)
    path = tmp_path / "mostly-unmatched.pb"
    path.write_bytes(message.SerializeToString())
    runtime = await started(caltrain_config([path.as_uri()]))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        source = (await get_json(client, "/v1/sources/caltrain-rt"))["data"]
        assert source["state"] == "degraded"
        assert (source["stats"]["matched"], source["stats"]["unmatched_descriptor"]) == (5, 14)
        assert source["issues"]["count"] == 1
        detail = runtime.statuses["caltrain-rt"].to_json(runtime.clock.now(), detail=True)
        assert detail["issues"]["examples"] == [
            "most trip updates match no trip of 'caltrain' (14 unmatched, 5 matched)"
        ]


def _strip_trip_ids(message: pb.FeedMessage, keep: int) -> None:
    """Trip updates after the first ``keep`` name their trip by a route and a start time that
    no run of Caltrain has, as a producer without trip ids whose times are off would."""
    seen = 0
    for entity in message.entity:
        if entity.HasField("trip_update"):
            seen += 1
            if seen <= keep:
                continue
            trip = entity.trip_update.trip
            trip.ClearField("trip_id")
            trip.route_id = "L1"
            trip.start_time = "03:33:00"

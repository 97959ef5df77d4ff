"""A GTFS zip whose stop_times.txt is one endless line: refused early, old timetable kept.

The issue's case was a 1.5 MB zip whose stop_times.txt is one 1.5 GB line: the block
reader grew its buffer for the whole line (7.6 GB resident, 182 s). Here the line is 256 MB
(a zip under 1 MB, most of it the real feed's other files) to keep the test quick;
bench/hostile_gtfs_line.py runs the full-size case.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from faults.sources import (
    FAULTY,
    KINDS,
    build_runtime,
    check_healthy_unaffected,
    load_good,
    peak_memory,
    poll_fault,
    state,
)
from upstream_server import Reply, Upstream

from aggregator.api.app import create_app
from connectors.gtfs import GtfsError, compile_feed
from connectors.gtfs.errors import IssueLog
from connectors.gtfs.reader import GtfsZip
from hostile.gtfs_long_line_support import MB, write_long_line_feed

GTFS = KINDS["gtfs"]
LINE_BYTES = 256 * MB
#: Bytes Python may hold while refusing the feed: a couple of 16 MB read blocks, not the line.
MEMORY_BOUND = 64 * MB
BOARD = f"/v1/stops/{FAULTY}:san_francisco/departures?limit=3&duration=2h"


@pytest.fixture(scope="module")
def long_line_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("hostile") / "long-line.zip"
    return write_long_line_feed(path, GTFS.good(), LINE_BYTES).read_bytes()


def test_the_hostile_zip_is_small_and_its_line_huge(long_line_zip: bytes, tmp_path: Path) -> None:
    """The attack's shape: a zip of well under 1 MB declaring 256 MB of stop_times.txt."""
    (tmp_path / "z.zip").write_bytes(long_line_zip)
    with zipfile.ZipFile(tmp_path / "z.zip") as z:
        declared = z.getinfo("stop_times.txt").file_size
    assert len(long_line_zip) < MB
    assert declared > LINE_BYTES


async def test_endless_stop_times_line_fails_the_poll_and_boards_keep_answering(
    long_line_zip: bytes, upstream: Upstream
) -> None:
    """The poll fails naming file, line, cap and option; the old timetable keeps serving."""
    runtime = build_runtime(GTFS, upstream, max_bytes=8 * MB, timeout=30)
    await load_good(runtime, GTFS, upstream)
    served = runtime.live.snapshot(FAULTY)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        before = await (await client.get(BOARD)).json()
        assert before["data"]["departures"], before

        upstream.route(GTFS.path, Reply(body=long_line_zip, content_type=GTFS.content_type))
        with peak_memory() as peak:
            outcomes = await poll_fault(runtime, 1)
        message = runtime.statuses[FAULTY].last_error or ""
        assert [o.outcome for o in outcomes] == ["failed"]
        assert "stop_times.txt line 2 is longer than 1048576 bytes (max_line_bytes)" in message
        assert peak[0] < MEMORY_BOUND, f"peak {peak[0] / MB:.0f} MB"
        assert runtime.live.snapshot(FAULTY) is served
        assert state(runtime) == "degraded"
        response = await client.get(BOARD)
        assert response.status == 200
        after = await response.json()
        assert after["data"]["departures"] == before["data"]["departures"]
    await check_healthy_unaffected(runtime)


def test_raising_max_line_bytes_moves_the_cap(tmp_path: Path) -> None:
    """The option is honoured: a 3 MB line fails at a 2 MiB cap, naming that cap."""
    path = write_long_line_feed(tmp_path / "z.zip", GTFS.good(), 3 * MB)
    with pytest.raises(GtfsError, match=r"line 2 is longer than 2097152 bytes"):
        compile_feed(path, max_line_bytes=2 * MB)


def test_a_long_line_in_a_small_table_is_refused_too(tmp_path: Path) -> None:
    """trips.txt goes through the csv module: its lines are capped on that path as well."""
    good = tmp_path / "good.zip"
    good.write_bytes(GTFS.good())
    hostile = tmp_path / "trips.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith("trips.txt"):
                head, _, rest = body.partition(b"\n")
                body = head + b"\n" + b"x," * (2 * MB) + b"\n" + rest
            out.writestr(info.filename, body)
    with pytest.raises(GtfsError, match=r"trips\.txt line 2 is longer than 1048576 bytes"):
        compile_feed(hostile)


def test_lines_at_block_edges_obey_the_same_cap(tmp_path: Path) -> None:
    """Whether a long line ends inside a block or runs past it, the answer is the same."""
    path = write_long_line_feed(tmp_path / "z.zip", GTFS.good(), 300_000)
    for block_bytes in (64 * 1024, 1 << 20, 1 << 24):
        with pytest.raises(GtfsError, match="line 2 is longer than 200000 bytes"):
            compile_feed(path, max_line_bytes=200_000, block_bytes=block_bytes)
        # Under the cap the same line is an ordinary broken row.
        timetable = compile_feed(path, max_line_bytes=400_000, block_bytes=block_bytes)
        assert timetable.counts["issues"] >= 1


@pytest.mark.parametrize("at_line", [2, 5, 40, 150])
def test_small_table_lines_are_measured_wherever_they_fall(tmp_path: Path, at_line: int) -> None:
    """trips.txt is read 8 KB at a time: a 3 KB line at a 2 KB cap is caught on any line."""
    good = tmp_path / "good.zip"
    good.write_bytes(GTFS.good())
    hostile = tmp_path / "trips.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith("trips.txt"):
                lines = body.split(b"\n")
                lines.insert(at_line - 1, b"," * 3000)
                body = b"\n".join(lines)
            out.writestr(info.filename, body)
    with pytest.raises(GtfsError, match=rf"trips\.txt line {at_line} is longer than 2048 bytes"):
        compile_feed(hostile, max_line_bytes=2048)


def test_lines_ended_by_a_lone_cr_are_not_one_long_line(tmp_path: Path) -> None:
    """An old Mac export (CR line ends) of a table far over the cap still reads row by row."""
    good = tmp_path / "good.zip"
    good.write_bytes(GTFS.good())
    with zipfile.ZipFile(good) as src:
        stops = src.read("stops.txt")
    old_mac = tmp_path / "cr.zip"
    with zipfile.ZipFile(old_mac, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("stops.txt", stops.replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    assert len(stops) > 4 * 2048
    with GtfsZip(good) as z:
        expected = z.read_table("stops.txt", ["stop_id"], IssueLog())
    with GtfsZip(old_mac, max_line_bytes=2048) as z:
        read = z.read_table("stops.txt", ["stop_id"], IssueLog())
    assert list(read.columns["stop_id"]) == list(expected.columns["stop_id"])

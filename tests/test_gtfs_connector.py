"""The gtfs connector in the polling path: real zips from a local upstream, broken feeds,
conditional GETs, and the compiled-timetable cache."""

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from support import runtime_from
from upstream_server import Reply

from aggregator.status import SourceState

CALTRAIN = Path(__file__).parents[1] / "config" / "demo-data" / "caltrain-2023-11.gtfs.zip"


def config(url: str, extra: str = "") -> str:
    # A day the timetable covers: past its last day (2024-06-01) the source is stale anyway.
    return f"""
    clock: {{fixed: "2023-11-07T17:06:00-08:00"}}
    connectors:
      - id: caltrain
        type: gtfs
        url: "{url}"
        retries: 0
{extra}
    """


def without(member: str) -> bytes:
    """The Caltrain zip minus one file."""
    out = io.BytesIO()
    with zipfile.ZipFile(CALTRAIN) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename != member:
                target.writestr(info, source.read(info))
    return out.getvalue()


async def test_broken_feed_keeps_the_previous_timetable_serving(upstream):
    """A truncated zip, then one missing stop_times.txt, fail the poll; the good timetable stays."""
    good = CALTRAIN.read_bytes()
    upstream.route(
        "/gtfs.zip",
        [Reply(body=good), Reply(body=good[:5000]), Reply(body=without("stop_times.txt"))],
    )
    runtime = runtime_from(config(upstream.url("/gtfs.zip")))
    status = runtime.statuses["caltrain"]
    try:
        assert (await runtime.poll_once("caltrain")).outcome == "changed"
        timetable = runtime.live.snapshot("caltrain").data
        assert (await runtime.poll_once("caltrain")).outcome == "failed"
        assert "the feed could not be read" in status.last_error
        assert (await runtime.poll_once("caltrain")).outcome == "failed"
        assert "stop_times.txt" in status.last_error
        assert runtime.live.snapshot("caltrain").data is timetable
        assert status.state(datetime.now(UTC)) is SourceState.DEGRADED  # 2 failures, data kept
        assert status.record_count == 3498
    finally:
        await runtime.stop()


async def test_unchanged_feed_is_not_compiled_again(upstream):
    """An ETag'd feed answered 304 keeps the same timetable object and version."""
    upstream.route("/gtfs.zip", Reply(body=CALTRAIN.read_bytes(), headers={"ETag": '"ct-1"'}))
    runtime = runtime_from(config(upstream.url("/gtfs.zip")))
    try:
        await runtime.poll_once("caltrain")
        first = runtime.live.snapshot("caltrain")
        assert (await runtime.poll_once("caltrain")).outcome == "unchanged"
        assert runtime.live.snapshot("caltrain") is first
        stats = runtime.statuses["caltrain"].stats
        assert stats["valid_from"] == "2023-09-23" and stats["valid_until"] == "2024-06-01"
        assert stats["stop_times"] == 3498
    finally:
        await runtime.stop()


async def test_compiled_timetable_cache_skips_compiling_on_restart(upstream, tmp_path):
    """With cache_dir, a second process start on the same feed loads the saved timetable."""
    upstream.route("/gtfs.zip", Reply(body=CALTRAIN.read_bytes()))
    yaml = config(upstream.url("/gtfs.zip"), f"        cache_dir: {tmp_path / 'cache'}")
    first = runtime_from(yaml)
    try:
        await first.poll_once("caltrain")
        assert first.statuses["caltrain"].stats["from_cache"] is False
    finally:
        await first.stop()
    assert len(list((tmp_path / "cache").glob("caltrain-*.npz"))) == 1
    second = runtime_from(yaml)
    try:
        await second.poll_once("caltrain")
        assert second.statuses["caltrain"].stats["from_cache"] is True
        board = second.live.snapshot("caltrain").data.departures(
            "san_francisco", datetime(2023, 11, 8, 1, 5, tzinfo=UTC), limit=3
        )
        assert board.departures[0].departure.isoformat() == "2023-11-07T17:10:00-08:00"
    finally:
        await second.stop()


async def test_a_new_feed_prunes_the_superseded_compiled_timetable(upstream, tmp_path):
    """Each new feed left its compiled timetable in the cache for ever; the superseded one
    goes, and another source's files in the same folder stay."""
    cache = tmp_path / "cache"
    cache.mkdir()
    neighbour = cache / "caltrain-2-0123456789abcdef.npz"  # another source, a similar id
    neighbour.write_bytes(b"not ours")
    upstream.route(
        "/gtfs.zip", [Reply(body=CALTRAIN.read_bytes()), Reply(body=without("shapes.txt"))]
    )
    runtime = runtime_from(config(upstream.url("/gtfs.zip"), f"        cache_dir: {cache}"))
    try:
        await runtime.poll_once("caltrain")
        (first,) = cache.glob("caltrain-????????????????.npz")
        assert (await runtime.poll_once("caltrain")).outcome == "changed"
    finally:
        await runtime.stop()
    (current,) = cache.glob("caltrain-????????????????.npz")
    assert current != first
    assert not first.exists()
    assert neighbour.read_bytes() == b"not ours"


def test_a_long_load_reports_its_progress(caplog):
    """compile_feed reports stop_times.txt block by block; a big feed logs every 10 %."""
    from connectors.gtfs import compile_feed
    from connectors.gtfs.connector import PROGRESS_FROM_BYTES, LoadProgress

    steps: list[tuple[str, float]] = []
    compile_feed(CALTRAIN.read_bytes(), block_bytes=8192, progress=lambda *s: steps.append(s))
    shares = [share for step, share in steps if step == "stop_times"]
    assert len(shares) > 5 and shares == sorted(shares) and shares[-1] == 1.0
    assert steps[-1] == ("compile", 0.0)

    caplog.set_level("INFO", logger="connectors.gtfs.connector")
    report = LoadProgress("idf", PROGRESS_FROM_BYTES)
    for share in (0.05, 0.12, 0.15, 0.31, 1.0):
        report("stop_times", share)
    report("compile", 0.0)
    assert [r.getMessage() for r in caplog.records] == [
        "gtfs idf: reading stop_times.txt, 12%",
        "gtfs idf: reading stop_times.txt, 31%",
        "gtfs idf: reading stop_times.txt, 100%",
        "gtfs idf: stop_times.txt read; compiling the timetable",
    ]

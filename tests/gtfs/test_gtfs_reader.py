"""Reading the zip: required files, broken rows, odd CSV, and the zip-bomb cap."""

from __future__ import annotations

import codecs
import struct
import zipfile
from datetime import datetime
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from feeds import PARIS, csv_text, make_zip, simple_feed

from connectors.gtfs import (
    FeedTooLargeError,
    GtfsError,
    MissingFileError,
    compile_feed,
)

PARIS_TZ = ZoneInfo(PARIS)
MORNING = datetime(2026, 6, 10, 7, 0, tzinfo=PARIS_TZ)


def test_missing_required_file_is_named():
    """A feed without stops.txt fails with an error naming the file."""
    files = simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:10:00")]).files()
    del files["stops.txt"]
    with pytest.raises(MissingFileError, match=r"stops\.txt") as info:
        compile_feed(make_zip(files))
    assert info.value.missing == ["stops.txt"]


def test_missing_calendar_files_are_named():
    """A feed with neither calendar.txt nor calendar_dates.txt says it needs one of them."""
    files = simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:10:00")]).files()
    del files["calendar.txt"]
    with pytest.raises(MissingFileError, match=r"calendar\.txt or calendar_dates\.txt"):
        compile_feed(make_zip(files))


def test_not_a_zip_is_a_gtfs_error():
    """Bytes that are not a zip give a GtfsError, not a crash."""
    with pytest.raises(GtfsError, match="zip"):
        compile_feed(b"<html>Service unavailable</html>")


def test_broken_rows_are_reported_with_file_and_line_and_skipped():
    """Bad rows become issues (file + line) and are skipped; the rest of the feed loads."""
    feed = simple_feed()
    feed.trip("GOOD", [("A", "08:00:00"), ("B", "08:10:00")])
    feed.trips.append(["NO_SUCH_ROUTE", "S", "ORPHAN", "", None, None])  # trips.txt line 3
    feed.stop_times += [
        ["GHOST", "08:00:00", "08:00:00", "A", 1, "", None, None],  # line 4
        ["GOOD", "08:20:00", "08:20:00", "NOWHERE", 3, "", None, None],  # line 5
        ["GOOD", "8:6O:00", "08:30:00", "C", 4, "", None, None],  # line 6
        ["GOOD", "08:40:00", "08:40:00", "C", "", "", None, None],  # line 7
    ]
    tt = compile_feed(feed.to_zip())
    found = {(i.file, i.line, i.code) for i in tt.issues}
    assert found == {
        ("trips.txt", 3, "unknown_reference"),
        ("stop_times.txt", 4, "unknown_reference"),
        ("stop_times.txt", 5, "unknown_reference"),
        ("stop_times.txt", 6, "invalid_time"),
        ("stop_times.txt", 7, "invalid_value"),
    }
    assert "GHOST" in next(str(i) for i in tt.issues if i.line == 4)
    assert tt.counts["trips"] == 1
    assert [d.trip_id for d in tt.departures("A", MORNING, 3 * 3600).departures] == ["GOOD"]


@pytest.mark.parametrize("quoted", [False, True])
def test_integers_beyond_int32_are_invalid_rows_not_a_crash(quoted):
    """A stop_sequence or route_type too big for the int32 columns is a broken row."""
    feed = simple_feed().route("HUGE", route_type=99999999999)
    feed.trip("GOOD", [("A", "08:00:00"), ("B", "08:10:00")])
    feed.stop_times.append(["GOOD", "08:20:00", "08:20:00", "C", 2**31, "", None, None])
    files = feed.files()
    if quoted:  # the csv-module path rather than the vectorised one
        files["stop_times.txt"] = files["stop_times.txt"].replace("GOOD,", '"GOOD",')
    tt = compile_feed(make_zip(files))
    found = {(i.file, i.line, i.code) for i in tt.issues}
    assert found == {("routes.txt", 3, "invalid_value"), ("stop_times.txt", 4, "invalid_value")}
    assert tt.route_ids == ("R",) and tt.counts["stop_times"] == 2


def test_csv_quirks_bom_crlf_quotes_and_extra_columns():
    """A BOM, CRLF line ends, quoted commas and unknown columns are all tolerated."""
    files = simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:10:00")]).files()
    files["stops.txt"] = (
        codecs.BOM_UTF8
        + csv_text(
            ["stop_id", "stop_name", "stop_lat", "stop_lon", "x_vendor"],
            [["A", "Place, de la Gare", 50.6, 3.0, "?"], ["B", 'Le "Bravo"', 50.6, 3.1, ""]],
            crlf=True,
        ).encode()
    )
    tt = compile_feed(make_zip(files))
    assert tt.stop_names == ("Place, de la Gare", 'Le "Bravo"')
    assert [d.trip_id for d in tt.departures("A", MORNING, 3 * 3600).departures] == ["T"]
    assert tt.issues == []


def test_missing_intermediate_times_are_interpolated():
    """A non-timepoint stop with empty times gets a time between its neighbours."""
    feed = simple_feed().trip("T", [("A", "08:00:00"), ("B", ""), ("C", "08:20:00")])
    tt = compile_feed(feed.to_zip())
    (dep,) = tt.departures("B", MORNING, 3 * 3600).departures
    assert dep.departure.strftime("%H:%M") == "08:10"


def test_zip_bomb_cap_on_declared_sizes():
    """A feed declaring more inflated bytes than the cap is refused before reading."""
    feed = simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:10:00")])
    feed.extra_files["stop_times.txt"] = feed.files()["stop_times.txt"] + "\n" * 500_000
    data = feed.to_zip()
    assert len(data) < 20_000
    with pytest.raises(FeedTooLargeError, match="100000"):
        compile_feed(data, max_uncompressed_bytes=100_000)
    assert compile_feed(data).counts["stop_times"] == 2


def _understate_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size of ``name`` in the zip's central directory."""
    with zipfile.ZipFile(BytesIO(data)) as zf:
        info = zf.getinfo(name)
    buf = bytearray(data)
    at = buf.find(b"PK\x01\x02")
    while at >= 0:
        (offset,) = struct.unpack_from("<I", buf, at + 42)
        if offset == info.header_offset:
            struct.pack_into("<I", buf, at + 24, size)
            return bytes(buf)
        at = buf.find(b"PK\x01\x02", at + 4)
    raise AssertionError("entry not found")


def test_zip_bomb_cap_with_lying_sizes():
    """A zip that understates an entry's size still cannot inflate past the cap unnoticed."""
    feed = simple_feed().trip("T", [("A", "08:00:00"), ("B", "08:10:00")])
    feed.extra_files["stop_times.txt"] = feed.files()["stop_times.txt"] + "\n" * 500_000
    forged = _understate_size(feed.to_zip(), "stop_times.txt", 100)
    with pytest.raises(GtfsError):
        compile_feed(forged, max_uncompressed_bytes=100_000)

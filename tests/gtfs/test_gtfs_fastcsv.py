"""The vectorised stop_times path gives exactly what the csv-module path gives."""

from __future__ import annotations

import numpy as np
from feeds import make_zip, simple_feed

from connectors.gtfs import compile_feed
from connectors.gtfs.fastcsv import HashIndex, hash_fields, split_fields
from connectors.gtfs.timetable import ARRAY_FIELDS

ODD_STOP_TIMES = [
    # trip, arrival, departure, stop, sequence, headsign, pickup, drop-off
    ["T1", "8:05:00", "8:05:00", "A", "1", "", "", ""],
    ["T1", " 08:10:00", "08:11:00 ", "B", "2", "Vers C", "0", "1"],
    ["T1", "", "", "C", "3", "", "", ""],
    ["T1", "100:00:00", "100:00:00", "A", "4.0", "", "1", "0"],
    ["T2", "07:00:00", "07:00:00", "GHOST", "1", "", "", ""],
    ["T2", "07:xx:00", "07:10:00", "B", "2", "", "", ""],
    ["NOPE", "07:00:00", "07:00:00", "A", "1", "", "", ""],
    ["T2", "07:20:00", "07:20:00", "C", "", "", "", ""],
    ["T2", "07:30:00", "07:30:00", "C", "5", "", "7", ""],
    ["T2", "07:40:00", "07:40:00", "A", "6", "", "", ""],
]
HEADER = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,stop_headsign,"
HEADER += "pickup_type,drop_off_type\n"


def _zip(stop_times: str) -> bytes:
    feed = simple_feed().trip("T1", []).trip("T2", [])
    files = feed.files()
    files["stop_times.txt"] = stop_times
    return make_zip(files)


def test_vectorised_and_csv_paths_agree_on_odd_values_and_issues():
    """Spaces, short hours, 100:00, "4.0", empty and bad fields parse alike on both paths."""
    plain = HEADER + "".join(",".join(row) + "\n" for row in ODD_STOP_TIMES)
    # A quote anywhere in a block sends that block through the csv module.
    quoted = HEADER + "".join(
        ",".join(f'"{v}"' if k == 0 else v for k, v in enumerate(row)) + "\n"
        for row in ODD_STOP_TIMES
    )
    fast = compile_feed(_zip(plain))
    slow = compile_feed(_zip(quoted))
    for block_bytes in (64, 200):
        small = compile_feed(_zip(plain), block_bytes=block_bytes)
        for name in ARRAY_FIELDS:
            assert np.array_equal(getattr(small, name), getattr(fast, name)), name
        assert sorted(small.issues, key=str) == sorted(fast.issues, key=str)
    for name in ARRAY_FIELDS:
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    assert fast.headsigns == slow.headsigns
    assert fast.issues == slow.issues
    assert sorted((i.line, i.code) for i in fast.issues) == [
        (6, "unknown_reference"),
        (7, "invalid_time"),
        (8, "unknown_reference"),
        (9, "invalid_value"),
        (10, "invalid_value"),
    ]
    assert fast.run_stop_times(0) == [
        (1, "A", 29100, 29100),
        (2, "B", 29400, 29460),
        (3, "C", 194730, 194730),  # interpolated half-way from 08:11 to 100:00
        (4, "A", 360000, 360000),
    ]


def test_crlf_bom_and_trailing_blank_lines_on_the_vectorised_path():
    """CRLF line ends, a BOM and blank lines at the end do not disturb the fast path."""
    body = "".join(",".join(row) + "\r\n" for row in ODD_STOP_TIMES[:4])
    data = "\ufeff" + HEADER.replace("\n", "\r\n") + body + "\r\n\r\n"
    tt = compile_feed(_zip(data))
    assert tt.counts["stop_times"] == 4
    assert [i for i in tt.issues if i.file == "stop_times.txt"] == []


def test_split_fields_refuses_ragged_lines():
    """A line with a missing field makes the block fall back to the csv module."""
    assert split_fields(b"a,b,c\nd,e,f\n", 3) is not None
    assert split_fields(b"a,b\nd,e,f,g\n", 3) is None
    assert split_fields(b'a,"b",c\n', 3) is None


def test_hash_index_finds_exact_ids_only():
    """Ids that are prefixes of each other, accented or unknown are told apart."""
    ids = ["1", "11", "111", "Gare-Ouest", "Gare-Oüest", "x" * 70]
    index = HashIndex(ids)
    assert index.ok
    probe = ["11", "1", "Gare-Oüest", "Gare-Ouest", "111", "1111", "", "x" * 70, "x" * 69]
    data = "".join(probe).encode()
    lengths = np.array([len(p.encode()) for p in probe])
    ends = np.cumsum(lengths)
    buf = np.frombuffer(data + b"\0", np.uint8)
    hashes = hash_fields(buf, ends - lengths, ends)
    assert index.find(hashes, lengths).tolist() == [1, 0, 4, 3, 2, -1, -1, 5, -1]

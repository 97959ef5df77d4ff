"""shapes.txt: compiled into ordered float32 columns, broken rows reported, lines drawn."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from feeds import make_zip, simple_feed

from connectors.gtfs import Timetable, compile_feed
from connectors.gtfs.fastcsv import ByteBlock, split_fields
from connectors.gtfs.geometry import line_geojson, shortest
from connectors.gtfs.parse import parse_float
from connectors.gtfs.timetable import ARRAY_FIELDS

ROOT = Path(__file__).resolve().parents[2]
BULLRUNNER = ROOT / "tests" / "fixtures" / "gtfs_rt" / "bullrunner-gtfs.zip"
SHARED = ROOT.parent / "shared" / "data" / "gtfs-static"
SHAPE_FIELDS = ("trip_shape", "shape_ptr", "shape_lat", "shape_lon")
#: float32 keeps coordinates to about 1e-5 degree (see connectors/gtfs/shapes.py).
FLOAT32_DEGREES = 2e-5

#: shapes.txt of the two-way line below, line by line (the header is line 1).
SHAPES_TXT = [
    "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence",
    "OUT,50.65,3.09,30",  # 2: given out of order on purpose
    "OUT,50.6366,3.0703,10",  # 3
    "OUT,abc,3.08,15",  # 4: latitude not a number
    "OUT,50.64,3.08,20",  # 5
    "OUT,50.641,200,25",  # 6: longitude out of range
    ",50.642,3.081,26",  # 7: no shape_id
    "OUT,50.643,3.082,x",  # 8: sequence not a number
    "OUT,50.644,3.083,20",  # 9: sequence 20 again
    "BACK,50.65,3.09,1",  # 10
    "BACK,50.6366,3.0703,3",  # 11
    "BACK,50.645,3.085,2",  # 12
    "LONELY,50.6,3.0,1",  # 13: a shape of one point
    "OUT,50.646,3.086,2147483648",  # 14: a sequence beyond int32
]


def _two_way(shapes: list[str] | None = SHAPES_TXT) -> bytes:
    """Route R both ways: two trips on shape OUT, one on BACK, one without shape, one on LONELY."""
    feed = simple_feed()
    out = [("A", "08:00:00"), ("B", "08:10:00"), ("C", "08:20:00")]
    back = [("C", "09:00:00"), ("B", "09:10:00"), ("A", "09:20:00")]
    feed.trip("T1", out, direction=0, headsign="Charlie", shape="OUT")
    feed.trip("T2", out, direction=0, headsign="Charlie centre", shape="OUT")
    feed.trip("T3", back, direction=1, headsign="Alpha", shape="BACK")
    feed.trip("T4", back, direction=1, headsign="Alpha")
    feed.trip("T5", back, direction=1, headsign="Alpha", shape="LONELY")
    files = feed.files()
    if shapes is not None:
        files["shapes.txt"] = "\n".join(shapes) + "\n"
    return make_zip(files)


def _points(tt: Timetable, shape_id: str) -> list[tuple[float, float]]:
    k = tt.shape_ids.index(shape_id)
    a, b = tt.shape_ptr[k], tt.shape_ptr[k + 1]
    return [
        (round(lat, 4), round(lon, 4))
        for lat, lon in zip(tt.shape_lat[a:b].tolist(), tt.shape_lon[a:b].tolist(), strict=True)
    ]


def test_points_come_in_shape_pt_sequence_order_as_float32_columns():
    """Rows given out of order are sorted by shape_pt_sequence, shape by shape."""
    tt = compile_feed(_two_way())
    assert tt.shape_ids == ("OUT", "BACK")  # LONELY has one point: dropped
    assert _points(tt, "OUT") == [(50.6366, 3.0703), (50.64, 3.08), (50.65, 3.09)]
    assert _points(tt, "BACK") == [(50.65, 3.09), (50.645, 3.085), (50.6366, 3.0703)]
    assert tt.shape_ptr.tolist() == [0, 3, 6]
    assert tt.shape_lat.dtype == np.float32 and tt.shape_lon.dtype == np.float32
    assert tt.trip_shape.tolist() == [0, 0, 1, -1, -1]


def test_broken_rows_are_reported_with_file_and_line_and_skipped():
    """Each broken row is a LoadIssue naming shapes.txt and its line; the load goes on."""
    tt = compile_feed(_two_way())
    found = sorted((i.line, i.code) for i in tt.issues if i.file == "shapes.txt")
    assert found == [
        (4, "invalid_value"),
        (6, "invalid_value"),
        (7, "missing_field"),
        (8, "invalid_value"),
        (9, "duplicate_key"),
        (13, "too_few_points"),
        (14, "invalid_value"),
    ]
    by_line = {i.line: i for i in tt.issues if i.file == "shapes.txt"}
    assert "'abc'" in by_line[4].message and "shape_pt_lat" in by_line[4].message
    assert "LONELY" in by_line[13].message and str(by_line[13]).startswith("shapes.txt:13: ")
    # The first row of a repeated sequence is kept: 50.64, not 50.644.
    assert (50.64, 3.08) in _points(tt, "OUT") and (50.644, 3.083) not in _points(tt, "OUT")


def test_csv_and_vectorised_paths_agree_whatever_the_block_size():
    """Quoted rows (csv module) and plain blocks of any size (numpy) give the same shapes."""
    plain = compile_feed(_two_way())
    quoted_rows = [SHAPES_TXT[0]] + [
        f'"{r.split(",")[0]}",' + r.split(",", 1)[1] for r in SHAPES_TXT[1:]
    ]
    quoted = compile_feed(_two_way(quoted_rows))
    for other in (quoted, *(compile_feed(_two_way(), block_bytes=b) for b in (40, 64, 200))):
        for name in SHAPE_FIELDS:
            assert np.array_equal(getattr(other, name), getattr(plain, name)), name
        assert other.shape_ids == plain.shape_ids
        assert sorted(map(str, other.issues)) == sorted(map(str, plain.issues))


def test_a_line_both_ways_gives_a_feature_per_direction_and_shape():
    """Per direction, one LineString per shape its trips use, [lon, lat], most used first."""
    collection = line_geojson("lille", compile_feed(_two_way()), 0)
    assert collection["type"] == "FeatureCollection"
    summary = [
        (
            f["properties"]["direction_id"],
            f["properties"]["shape_id"],
            f["properties"]["trips"],
            f["properties"]["geometry_source"],
        )
        for f in collection["features"]
    ]
    assert summary == [
        (0, "lille:OUT", 2, "shapes.txt"),
        (1, "lille:BACK", 1, "shapes.txt"),
        (1, None, 2, "stops"),  # T4 has no shape, T5's shape was dropped
    ]
    out, back, by_stops = collection["features"]
    assert out["properties"]["line_id"] == "lille:R"
    assert out["properties"]["headsigns"] == ["Charlie", "Charlie centre"]
    assert out["geometry"] == {
        "type": "LineString",
        "coordinates": [[3.0703, 50.6366], [3.08, 50.64], [3.09, 50.65]],
    }
    assert back["geometry"]["coordinates"][0] == [3.09, 50.65]
    assert by_stops["geometry"]["coordinates"] == [[3.09, 50.65], [3.08, 50.64], [3.0703, 50.6366]]
    assert out["bbox"] == [3.0703, 50.6366, 3.09, 50.65]
    assert collection["bbox"] == [3.0703, 50.6366, 3.09, 50.65]


def test_a_feed_without_shapes_is_drawn_through_its_stops():
    """No shapes.txt: each direction is a LineString through its pattern's stops, in order."""
    tt = compile_feed(_two_way(shapes=None))
    assert tt.shape_ids == () and tt.shape_ptr.tolist() == [0]
    assert (tt.trip_shape == -1).all()
    features = line_geojson("lille", tt, 0)["features"]
    assert [f["properties"]["geometry_source"] for f in features] == ["stops", "stops"]
    assert [f["properties"]["trips"] for f in features] == [2, 3]
    directions = tt.route_directions(0)
    for feature, direction in zip(features, directions, strict=True):
        stops = direction.stop_indices  # what the line's JSON lists, in riding order
        expected = [[float(tt.stop_lon[s]), float(tt.stop_lat[s])] for s in stops]
        assert feature["geometry"]["coordinates"] == expected
        assert feature["properties"]["direction_id"] == direction.direction_id
    missing = [i for i in tt.issues if i.code == "missing_file"]
    assert len(missing) == 1 and "shapes.txt" in missing[0].message
    assert missing[0].severity == "warning"


def test_unknown_and_unused_shapes_are_reported():
    """A trip naming an unknown shape is drawn from stops; a shape no trip uses is not kept."""
    rows = [*SHAPES_TXT[:3], "SPARE,50.6,3.0,1", "SPARE,50.7,3.1,2"]
    feed = simple_feed().trip("T1", [("A", "08:00:00"), ("B", "08:10:00")], shape="GHOST")
    feed.trip("T2", [("A", "08:00:00"), ("B", "08:10:00")], shape="OUT")
    files = feed.files()
    files["shapes.txt"] = "\n".join(rows) + "\n"
    tt = compile_feed(make_zip(files))
    assert tt.shape_ids == ("OUT",) and tt.trip_shape.tolist() == [-1, 0]
    codes = {(i.file, i.code): i.message for i in tt.issues}
    assert "'GHOST'" in codes[("trips.txt", "unknown_reference")]
    assert "1 shape(s)" in codes[("shapes.txt", "unused_shape")]


def test_shapes_without_a_needed_column_are_ignored_not_fatal():
    """A shapes.txt lacking shape_pt_sequence is one issue; the timetable still loads."""
    tt = compile_feed(_two_way(["shape_id,shape_pt_lat,shape_pt_lon", "OUT,50.6,3.0"]))
    assert tt.shape_ids == ()
    issue = next(i for i in tt.issues if i.file == "shapes.txt")
    assert issue.code == "missing_column" and "shape_pt_sequence" in issue.message
    assert len(line_geojson("lille", tt, 0)["features"]) == 2


def test_unlocated_stops_are_skipped_and_a_line_without_two_points_has_no_geometry():
    """A stop without coordinates is left out; fewer than two points: geometry null."""
    feed = simple_feed().stop("NOWHERE", "Nowhere", lat=float("nan"), lon=float("nan"))
    feed.trip("T1", [("A", "08:00:00"), ("NOWHERE", "08:05:00"), ("B", "08:10:00")])
    feed.route("Q").trip("T2", [("A", "08:00:00"), ("NOWHERE", "08:10:00")], route="Q")
    tt = compile_feed(feed.to_zip())
    drawn = line_geojson("lille", tt, tt.route_index["R"])["features"][0]["geometry"]
    assert drawn["coordinates"] == [[3.0703, 50.6366], [3.08, 50.64]]
    lone = line_geojson("lille", tt, tt.route_index["Q"])
    assert lone["features"][0]["geometry"] is None and "bbox" not in lone


def test_shapes_survive_save_and_load(tmp_path):
    """The shape arrays are saved with the timetable; the loaded one draws the same lines."""
    tt = compile_feed(_two_way())
    path = tmp_path / "feed.npz"
    tt.save(path)
    back = Timetable.load(path)
    assert set(SHAPE_FIELDS) <= set(ARRAY_FIELDS)
    for name in SHAPE_FIELDS:
        loaded = getattr(back, name)
        assert loaded.dtype == getattr(tt, name).dtype
        assert np.array_equal(loaded, getattr(tt, name)), name
    assert back.shape_ids == tt.shape_ids
    assert line_geojson("lille", back, 0) == line_geojson("lille", tt, 0)


def _csv_shapes(path: Path) -> dict[str, list[tuple[int, float, float]]]:
    """shapes.txt read plainly with the csv module: shape id → sorted (sequence, lat, lon)."""
    points: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    with zipfile.ZipFile(path) as z, z.open("shapes.txt") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, "utf-8-sig")):
            seq = int(row["shape_pt_sequence"])
            points[row["shape_id"]].append(
                (seq, float(row["shape_pt_lat"]), float(row["shape_pt_lon"]))
            )
    return {shape: sorted(found) for shape, found in points.items()}


def _assert_same_as_csv(path: Path) -> None:
    tt = compile_feed(path)
    reference = _csv_shapes(path)
    assert tt.shape_ids, "the feed's trips use shapes"
    assert [i for i in tt.issues if i.file == "shapes.txt"] == []
    for k, shape in enumerate(tt.shape_ids):
        a, b = int(tt.shape_ptr[k]), int(tt.shape_ptr[k + 1])
        expected = reference[shape]
        assert b - a == len(expected), shape
        lat = np.array([p[1] for p in expected])
        lon = np.array([p[2] for p in expected])
        assert np.abs(tt.shape_lat[a:b] - lat).max() < FLOAT32_DEGREES, shape
        assert np.abs(tt.shape_lon[a:b] - lon).max() < FLOAT32_DEGREES, shape
    used = {s for s in tt.trip_shape_ids if s}
    assert set(tt.shape_ids) == used & set(reference)


def test_real_feed_in_the_repository_matches_a_plain_csv_read():
    """USF Bull Runner (bundled): each shape has the points, order and places csv gives."""
    _assert_same_as_csv(BULLRUNNER)
    tt = compile_feed(BULLRUNNER)
    route = tt.route_ids[0]
    shape = tt.trip_shape_ids[int(np.flatnonzero(tt.trip_route == 0)[0])]
    feature = next(
        f
        for f in line_geojson("usf", tt, 0)["features"]
        if f["properties"]["shape_id"] == f"usf:{shape}"
    )
    assert len(feature["geometry"]["coordinates"]) == len(_csv_shapes(BULLRUNNER)[shape])
    assert feature["properties"]["line_id"] == f"usf:{route}"


@pytest.mark.parametrize(
    "feed",
    ["caltrain-2017-2019/caltrain.zip", "bart-2023/bart-new.zip", "hart-tampa-2018/hart.zip"],
)
def test_shared_real_feeds_match_a_plain_csv_read(feed):
    """Real feeds of the team's data folder: point counts per shape as a plain csv read."""
    path = SHARED / feed
    if not path.exists():
        pytest.skip(f"shared GTFS feed not found at {path} (the ../shared data folder is absent)")
    _assert_same_as_csv(path)


def test_float32_coordinates_are_printed_in_their_shortest_form():
    """50.64 stored as float32 is answered as 50.64, as numpy prints it, never 50.63999938."""
    rng = np.random.default_rng(7)
    values = np.concatenate(
        (
            np.round(rng.uniform(-180, 180, 20_000), 6),
            np.round(rng.uniform(-1, 1, 1000), 9),
            [50.64, 3.0703, -122.394411563873, 0.0, -0.0, 180.0, 1e-9],
        )
    ).astype(np.float32)
    printed = shortest(values)
    assert printed.tolist()[-7:-4] == [50.64, 3.0703, -122.39441]
    assert np.array_equal(printed.astype(np.float32), values)  # the same points
    assert np.array_equal(printed, values.astype(str).astype(np.float64))


@pytest.mark.parametrize("with_broken", [False, True])
def test_vectorised_float_column_reads_what_float_reads(with_broken):
    """ByteBlock.floats gives parse_float's answer, field by field, on odd spellings."""
    values = ["37.5", " -122.25 ", "1e2", "1_000", ".5", "5.", "+1", "123456789.123456789"]
    if with_broken:  # a block numpy refuses whole goes value by value
        values += ["", "abc", "0x10", "1.2.3", "1\0"]
    data = "".join(f"{v},x\n" for v in values).encode()
    split = split_fields(data, 2)
    assert split is not None
    block = ByteBlock("t.txt", *split, {"v": 0}, 2)
    np.testing.assert_array_equal(block.floats("v"), [parse_float(v) for v in values])

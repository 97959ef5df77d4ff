"""Saving and loading a compiled timetable."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from feeds import PARIS, simple_feed

from connectors.gtfs import CacheFormatError, Timetable, compile_feed, load_if_current
from connectors.gtfs.timetable import ARRAY_FIELDS, STRING_FIELDS

PARIS_TZ = ZoneInfo(PARIS)


def _feed() -> bytes:
    feed = simple_feed().trip("T", [("A", "08:00:00"), ("B", "25:10:00"), ("C", "25:20:00")])
    feed.trip("F", [("A", "00:00:00"), ("B", "00:10:00")], headsign="Bravo")
    feed.frequency("F", "06:00:00", "07:00:00", 900, 0)
    feed.stop_times.append(["T", "09:00:00", "09:00:00", "NOWHERE", 9, "", None, None])
    return feed.to_zip()


def test_save_load_roundtrip_gives_identical_results(tmp_path):
    """A loaded timetable has the same arrays, strings, issues and query answers."""
    data = _feed()
    tt = compile_feed(data)
    path = tmp_path / "feed.npz"
    tt.save(path)
    back = Timetable.load(path)
    for name in ARRAY_FIELDS:
        assert np.array_equal(getattr(tt, name), getattr(back, name)), name
    for name in STRING_FIELDS:
        assert getattr(tt, name) == getattr(back, name), name
    assert back.issues == tt.issues and back.issue_counts == tt.issue_counts
    assert back.source_hash == tt.source_hash
    for at in (
        datetime(2026, 6, 10, 5, 0, tzinfo=PARIS_TZ),
        datetime(2026, 6, 11, 1, 0, tzinfo=PARIS_TZ),
        datetime(2027, 6, 11, 1, 0, tzinfo=PARIS_TZ),
    ):
        for stop in ("A", "B", "C"):
            assert tt.departures(stop, at, 4 * 3600) == back.departures(stop, at, 4 * 3600)


def test_load_if_current_checks_the_content_hash(tmp_path):
    """A saved timetable is reused only for the same feed bytes."""
    data = _feed()
    tt = compile_feed(data)
    path = tmp_path / "feed.npz"
    assert load_if_current(path, tt.source_hash) is None
    tt.save(path)
    assert load_if_current(path, tt.source_hash) is not None
    assert load_if_current(path, "0" * 64) is None


def test_corrupt_cache_is_refused(tmp_path):
    """A damaged cache file raises CacheFormatError (and is simply not reused)."""
    path = tmp_path / "feed.npz"
    path.write_bytes(b"not a timetable")
    with pytest.raises(CacheFormatError):
        Timetable.load(path)
    assert load_if_current(path, "x") is None

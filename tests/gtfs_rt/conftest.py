"""Fixtures shared by the realtime tests: the compiled hand-made static feed."""

from __future__ import annotations

import pytest
from rtfeeds import static_timetable

from connectors.gtfs import Timetable


@pytest.fixture(scope="session")
def tt() -> Timetable:
    """The static feed of :mod:`rtfeeds`, compiled once."""
    return static_timetable()

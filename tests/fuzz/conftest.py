"""Fixtures of the hostile-input suite: one real server on the demo data per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuzz.live import LiveServer, demo_data_dir


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo runtime served on 127.0.0.1 (a free port) for the whole session."""
    server = LiveServer(demo_data_dir(tmp_path_factory.mktemp("demo-data"))).start()
    yield server
    server.stop()


#: Operations whose documented parameter schemas are looser than what the server accepts:
#: schemathesis sends a schema-valid request (an empty string, a 0, an unbounded number, a
#: free-text lang) and gets a 400. The fix is in the declarations (minLength, minimum/maximum,
#: enum, format); see the reason of each mark.
LOOSE_PARAMETER_SCHEMAS = {
    "GET /v1/agenda": "lang has no enum; from/to/q/category/source/cursor lack minLength/format; "
    "limit lacks minimum 1/maximum 100; radius lacks 1..50000",
    "GET /v1/alerts": "line/stop/lang lack minLength; active_at lacks format date-time",
    "GET /v1/bikes/stations": "source lacks minLength; radius 1..5000, limit 1..100 undeclared",
    "GET /v1/categories": "from/to lack format date-time; radius/lat/lon bounds undeclared",
    "GET /v1/departures": "radius 1..5000, stops/per_stop 1..20, duration pattern undeclared",
    "GET /v1/events": "lang has no enum; limit 1..100, radius 1..50000, lat/lon bounds undeclared",
    "GET /v1/events/{event_id}": "lang has no enum (fr, en)",
    "GET /v1/home": "lang has no enum (fr, en)",
    "GET /v1/lines": "feed/mode lack minLength",
    "GET /v1/parkings": "source lacks minLength; radius 1..10000, limit 1..100 undeclared",
    "GET /v1/stops": "q/feed lack minLength; q needs lat/lon otherwise; bounds undeclared",
    "GET /v1/vehicles": "bbox lacks a pattern (four comma-separated numbers)",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the positive-acceptance fuzz of loosely documented operations as known failures."""
    for item in items:
        if getattr(item, "originalname", None) != "test_schema_valid_requests_are_accepted":
            continue
        for label, reason in LOOSE_PARAMETER_SCHEMAS.items():
            if item.name.endswith(f"[{label}]"):
                item.add_marker(
                    pytest.mark.xfail(strict=True, reason="SCHEMA TOO LOOSE: " + reason)
                )

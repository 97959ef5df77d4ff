"""Fixtures of the hostile-input suite: one real server on the demo data per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from fuzz.live import LiveServer, demo_data_dir

# CI explores the same examples on every run (a red build must be reproducible); on a
# developer's machine hypothesis keeps exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo runtime served on 127.0.0.1 (a free port) for the whole session."""
    server = LiveServer(demo_data_dir(tmp_path_factory.mktemp("demo-data"))).start()
    yield server
    server.stop()


#: Operations whose documented parameters still admit requests the server refuses with a 400.
#: Every bound, length, format, enum and pattern the handlers check is declared, configured
#: languages and source ids included; what remains are rules between several parameters (or
#: between the items of one), which OpenAPI 3.1 parameter schemas cannot state. Each is said in
#: the parameter's description and in docs/API.md.
_EVENT_FILTERS = (
    "lat/lon go together, radius and sort=distance need them, to must follow from by at most "
    "366 days (cross-parameter rules)"
)
#: Every list: its cursor must be one the server signed, its fields= names of its item schema.
_PAGED = "cursor must be one the server signed; fields must name properties of the items"
#: Lists of located items: commune= must be a code of the loaded communes (data, not schema).
_COMMUNE = "commune must be a code the communes source knows"
LOOSE_PARAMETER_SCHEMAS = {
    "GET /v1/agenda": f"{_EVENT_FILTERS}; {_PAGED}; {_COMMUNE}",
    "GET /v1/agenda.ics": _EVENT_FILTERS,
    "GET /v1/categories": _EVENT_FILTERS,
    "GET /v1/events.ics": _EVENT_FILTERS,
    "GET /v1/events": f"{_EVENT_FILTERS}; {_PAGED}; {_COMMUNE}",
    "GET /v1/places": "lat/lon go together, radius needs them, open_now and open_at exclude "
    "each other and sync (cross-parameter rules); cursor and sync must be ones the server "
    "signed; " + _COMMUNE,
    "GET /v1/news": "cursor and sync must be ones the server signed; q needs a word that is "
    "not a stop word; source items must be configured news sources; updated_since is declared "
    "only to be refused with a pointer to sync",
    "GET /v1/stops": "q, lat/lon or commune is required and lat/lon go together "
    f"(cross-parameter rules); {_PAGED}; {_COMMUNE}",
    "GET /v1/vehicles": "bbox needs west <= east and south <= north (an order between list "
    "items a pattern cannot express); " + _PAGED,
    "GET /v1/alerts": _PAGED,
    "GET /v1/bikes/stations": f"{_PAGED}; {_COMMUNE}",
    "GET /v1/parkings": f"{_PAGED}; {_COMMUNE}",
    "GET /v1/lines": "fields must name properties of the items",
}
# The GeoJSON twin of a route (its path plus .geojson) takes the same parameters.
LOOSE_PARAMETER_SCHEMAS |= {
    label + ".geojson": reason
    for label, reason in LOOSE_PARAMETER_SCHEMAS.items()
    if label
    in (
        "GET /v1/stops",
        "GET /v1/vehicles",
        "GET /v1/bikes/stations",
        "GET /v1/parkings",
        "GET /v1/places",
    )
}

# A CSV export (its list's path plus .csv) takes the list's filters, not its paging: the
# cross-parameter rules stay, the cursor and fields ones go.
LOOSE_PARAMETER_SCHEMAS |= {
    "GET /v1/agenda.csv": f"{_EVENT_FILTERS}; {_COMMUNE}",
    "GET /v1/events.csv": f"{_EVENT_FILTERS}; {_COMMUNE}",
    "GET /v1/places.csv": "lat/lon go together, radius needs them, open_now and open_at exclude "
    "each other (cross-parameter rules); " + _COMMUNE,
    "GET /v1/bikes/stations.csv": _COMMUNE,
    "GET /v1/parkings.csv": _COMMUNE,
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

"""``/v1/parkings.csv``: the car parks the JSON list's query selects, as one CSV file (see
:mod:`aggregator.api.csv_export` for the conventions)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from aggregator.api.csv_export import COMMUNE_COLUMNS, LICENCE_COLUMNS, Column, field, nested
from aggregator.runtime import runtime_of
from connectors.places.near_export import near_csv

#: The columns, in order (docs/OPEN-DATA.md lists them with their meaning). Freshness is the
#: ``last_updated`` time and ``stale``: an age in seconds would make the file differ every second.
COLUMNS: Sequence[Column] = (
    field("id"),
    field("source"),
    field("name"),
    field("lat"),
    field("lon"),
    field("address"),
    field("city"),
    field("capacity"),
    field("free_spaces"),
    field("state"),
    field("last_updated"),
    nested("stale", "freshness", "stale"),
    field("distance_m"),
    *COMMUNE_COLUMNS,
    *LICENCE_COLUMNS,
)


async def parkings_csv(request: web.Request) -> web.Response:
    from .routes import car_parks, read_query  # the JSON list's own query and car parks

    query = read_query(request)
    found = car_parks(runtime_of(request), query)
    return await near_csv(request, query, found, COLUMNS, "parkings")

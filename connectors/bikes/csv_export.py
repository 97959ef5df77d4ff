"""``/v1/bikes/stations.csv``: the stations the JSON list's query selects, as one CSV file
(see :mod:`aggregator.api.csv_export` for the conventions)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from aggregator.api.csv_export import COMMUNE_COLUMNS, LICENCE_COLUMNS, Column, field, nested
from connectors.places.near_export import near_csv

#: The columns, in order (docs/OPEN-DATA.md lists them with their meaning). A station's
#: freshness is its ``last_reported`` time and ``stale``: an age in seconds would make the
#: file differ every second.
COLUMNS: Sequence[Column] = (
    field("id"),
    field("source"),
    field("name"),
    field("lat"),
    field("lon"),
    field("address"),
    field("capacity"),
    field("bikes_available"),
    field("ebikes_available"),
    field("docks_available"),
    field("is_renting"),
    field("is_returning"),
    field("is_installed"),
    field("last_reported"),
    nested("stale", "freshness", "stale"),
    field("alert_ids"),
    field("distance_m"),
    *COMMUNE_COLUMNS,
    *LICENCE_COLUMNS,
)


async def bike_stations_csv(request: web.Request) -> web.Response:
    from .routes import read_query, stations  # the JSON list's own query and stations

    query = read_query(request)
    found, _feeds = stations(request, query)
    return await near_csv(request, query, found, COLUMNS, "bike-stations")

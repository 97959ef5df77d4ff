"""``/v1/places.csv``: the places the JSON list's filters select, as one CSV file (see
:mod:`aggregator.api.csv_export` for the conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from aggregator.api.csv_export import (
    COMMUNE_COLUMNS,
    LICENCE_COLUMNS,
    MAX_ROWS,
    Column,
    ExportJob,
    ExportTooLarge,
    export_response,
    field,
    nested,
    source_terms,
)
from aggregator.api.i18n import negotiate_language
from aggregator.runtime import runtime_of

#: The columns, in order (docs/OPEN-DATA.md lists them with their meaning).
COLUMNS: Sequence[Column] = (
    field("id"),
    field("source"),
    field("name"),
    field("category"),
    field("lat"),
    field("lon"),
    field("address"),
    field("postcode"),
    field("city"),
    nested("phone", "contact", "phone"),
    nested("website", "contact", "website"),
    nested("email", "contact", "email"),
    nested("wheelchair", "accessibility", "wheelchair"),
    nested("opening_hours", "opening_hours", "raw"),
    nested("opening_hours_parsed", "opening_hours", "parsed"),
    field("evaluated_at"),
    field("open_now"),
    nested("next_change_at", "next_change", "at"),
    nested("next_change_state", "next_change", "state"),
    field("distance_m"),
    field("description"),
    *COMMUNE_COLUMNS,
    *LICENCE_COLUMNS,
)


async def places_csv(request: web.Request) -> web.Response:
    # The JSON list's filters and shape of a place.
    from .routes import PlaceQuery, indexes_of, render, with_communes

    runtime = runtime_of(request)
    language = negotiate_language(request, runtime.languages)
    query = PlaceQuery.read(request, runtime)
    # Resolved here, on the loop: the live indexes (the loop swaps them for new ones, never
    # changes them) and their commune tags (immutable once made; looking them up reads the
    # live communes, which the loop may rebuild meanwhile).
    indexes = with_communes(runtime, indexes_of(runtime, query.sources))
    communes = {id(index): tags for index, tags in indexes}

    def rows() -> list[dict[str, Any]]:
        # In a worker thread: reads the immutable indexes, their places and their tags.
        hits = query.search(runtime, None, MAX_ROWS, indexes=indexes)
        if len(hits) > MAX_ROWS:
            raise ExportTooLarge()
        evaluated_at = query.at.astimezone(runtime.timezone).isoformat()
        records = []
        for key, index, place in hits:
            tags = communes[id(index)]
            item: dict[str, Any] = render(index, place, query.at, runtime, communes=tags)
            item["distance_m"] = key[0] if query.lat is not None else None
            item["evaluated_at"] = evaluated_at
            records.append(item)
        return records

    job = ExportJob(
        name="places",
        columns=COLUMNS,
        rows=rows,
        terms=source_terms(runtime, query.sources),
        sources=query.sources,
        language=language,
    )
    return await export_response(request, runtime, job)

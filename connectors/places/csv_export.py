"""``/v1/places.csv``: the places the JSON list's filters select, as one CSV file (see
:mod:`aggregator.api.csv_export` for the conventions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from aggregator.api.csv_export import (
    LICENCE_COLUMNS,
    MAX_ROWS,
    Column,
    ExportTooLarge,
    csv_response,
    field,
    nested,
    source_terms,
    write_csv,
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
    *LICENCE_COLUMNS,
)


def _sources_of(record: Mapping[str, Any]) -> list[str]:
    return [record["source"]]


async def places_csv(request: web.Request) -> web.Response:
    from .routes import PlaceQuery, render  # the JSON list's filters and shape of a place

    runtime = runtime_of(request)
    language = negotiate_language(request, runtime.languages)
    query = PlaceQuery.read(request, runtime)
    hits = query.search(runtime, None, MAX_ROWS)
    if len(hits) > MAX_ROWS:
        raise ExportTooLarge()
    evaluated_at = query.at.astimezone(runtime.timezone).isoformat()
    records = []
    for key, index, place in hits:
        item: dict[str, Any] = render(index, place, query.at, runtime)
        item["distance_m"] = key[0] if query.lat is not None else None
        item["evaluated_at"] = evaluated_at
        records.append(item)
    body, used = write_csv(COLUMNS, records, source_terms(runtime, query.sources), _sources_of)
    return csv_response(
        request,
        runtime,
        body,
        name="places",
        sources=query.sources,
        used_terms=used,
        language=language,
    )

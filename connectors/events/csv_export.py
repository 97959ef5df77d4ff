"""``/v1/events.csv`` and ``/v1/agenda.csv``: the occurrences the JSON list's filters select,
as one CSV file (see :mod:`aggregator.api.csv_export` for the conventions)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
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
from aggregator.api.params import QueryParams
from aggregator.runtime import runtime_of

from .ics_export import sources_of


def _registration(record: Mapping[str, Any]) -> list[str]:
    return [f"{r['type']}:{r['value']}" for r in record.get("registration") or []]


#: The columns, in order (docs/OPEN-DATA.md lists them with their meaning).
COLUMNS: Sequence[Column] = (
    field("id"),
    field("event_id"),
    field("source"),
    field("channel"),
    field("status"),
    field("title"),
    field("start"),
    field("end"),
    field("all_day"),
    field("start_date"),
    field("end_date"),
    field("timezone"),
    field("previous_start"),
    nested("location_name", "location", "name"),
    nested("address", "location", "address"),
    nested("postal_code", "location", "postal_code"),
    nested("city", "location", "city"),
    nested("lat", "location", "lat"),
    nested("lon", "location", "lon"),
    field("attendance_mode"),
    field("online_url"),
    field("categories"),
    field("keywords"),
    field("accessibility"),
    nested("free", "price", "free"),
    nested("price", "price", "text"),
    nested("age_min", "age", "min"),
    nested("age_max", "age", "max"),
    Column("registration", _registration),
    field("url"),
    nested("image_url", "image", "url"),
    nested("image_credits", "image", "credits"),
    field("updated_at"),
    field("distance_m"),
    field("description"),
    *COMMUNE_COLUMNS,
    *LICENCE_COLUMNS,
)


async def _export(request: web.Request, channel: str | None, name: str) -> web.Response:
    # The JSON list's own filters, checks and localisation: one definition of both answers.
    from .routes import (
        _all_in,
        _commune_of,
        _communes,
        _event_sources,
        _in_commune,
        _index,
        _localized,
        _query,
    )

    runtime = runtime_of(request)
    language = negotiate_language(request, runtime.languages)
    query, _scope = _query(QueryParams(request.query), runtime, channel)
    sources = _event_sources(runtime)
    # Resolved here, on the loop: the live index (the loop swaps it for a new one, never
    # changes it), its commune tags and the commune filter (lookups in live data; the tags
    # are immutable once made, so the thread may read them).
    index = _index(runtime)
    communes = None
    if index is not None:
        query = _in_commune(query, runtime, index)
        communes = _communes(runtime, index)
    languages = runtime.languages

    def rows() -> list[dict[str, Any]]:
        # In a worker thread: reads the immutable index and its records. Its memo of
        # localised records is shared with the loop, one dict operation at a time.
        if index is None or communes is None:
            return []
        # One page of one more than an export holds: its total says whether it is too large.
        page = index.query(dataclasses.replace(query, limit=MAX_ROWS + 1, after=None))
        if page.total > MAX_ROWS:
            raise ExportTooLarge()

        def render(record: Any) -> dict[str, Any]:
            return _localized(record, language, runtime)

        records: list[dict[str, Any]] = []
        for record, distance in page.items:
            item = dict(index.localized(record, language, languages, render))
            item["commune"] = _commune_of(communes, index, record)
            if distance is not None:
                item["distance_m"] = round(distance, 1)
            records.append(item)
        return records

    job = ExportJob(
        name=name,
        columns=COLUMNS,
        rows=rows,
        terms=source_terms(runtime, sources),
        sources=sources,
        sources_of=sources_of,
        language=language,
        all_in_language=lambda records: _all_in(language, records),
    )
    return await export_response(request, runtime, job)


async def events_csv(request: web.Request) -> web.Response:
    return await _export(request, None, "events")


async def agenda_csv(request: web.Request) -> web.Response:
    return await _export(request, "agenda", "agenda")

"""``/v1/events.csv`` and ``/v1/agenda.csv``: the occurrences the JSON list's filters select,
as one CSV file (see :mod:`aggregator.api.csv_export` for the conventions)."""

from __future__ import annotations

import dataclasses
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
from aggregator.api.params import QueryParams
from aggregator.runtime import runtime_of


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
    *LICENCE_COLUMNS,
)


def _sources_of(record: Mapping[str, Any]) -> list[str]:
    """The sources of an occurrence: two when duplicates of two sources were merged."""
    return [s["source"] for s in record.get("sources") or []] or [record["source"]]


async def _export(request: web.Request, channel: str | None, name: str) -> web.Response:
    # The JSON list's own filters, checks and localisation: one definition of both answers.
    from .routes import _all_in, _event_sources, _in_commune, _index, _localized, _query

    runtime = runtime_of(request)
    language = negotiate_language(request, runtime.languages)
    query, _scope = _query(QueryParams(request.query), runtime, channel)
    sources = _event_sources(runtime)
    index = _index(runtime)
    records: list[dict[str, Any]] = []
    if index is not None:
        # One page of one more than an export holds: its total says whether it is too large.
        query = _in_commune(query, runtime, index)
        page = index.query(dataclasses.replace(query, limit=MAX_ROWS + 1, after=None))
        if page.total > MAX_ROWS:
            raise ExportTooLarge()

        def render(record: Any) -> dict[str, Any]:
            return _localized(record, language, runtime)

        for record, distance in page.items:
            item = dict(index.localized(record, language, runtime.languages, render))
            if distance is not None:
                item["distance_m"] = round(distance, 1)
            records.append(item)
    body, used = write_csv(COLUMNS, records, source_terms(runtime, sources), _sources_of)
    return csv_response(
        request,
        runtime,
        body,
        name=name,
        sources=sources,
        used_terms=used,
        language=language,
        content_language=_all_in(language, records),
    )


async def events_csv(request: web.Request) -> web.Response:
    return await _export(request, None, "events")


async def agenda_csv(request: web.Request) -> web.Response:
    return await _export(request, "agenda", "agenda")

"""The CSV export of a "near a point" list (bike stations, car parks): the rows the JSON
list's query selects, all of them, in the list's order (see :mod:`aggregator.api.csv_export`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from aggregator.api.csv_export import (
    MAX_ROWS,
    Column,
    ExportTooLarge,
    csv_response,
    source_terms,
    write_csv,
)
from aggregator.runtime import runtime_of

from .query import NearQuery


def _sources_of(record: Mapping[str, Any]) -> list[str]:
    return [record["source"]]


def near_csv(
    request: web.Request,
    query: NearQuery,
    found: Sequence[tuple[float, dict[str, Any]]],
    columns: Sequence[Column],
    name: str,
) -> web.Response:
    """``found`` (what the JSON list pages through) as the export ``name``."""
    if len(found) > MAX_ROWS:
        raise ExportTooLarge()
    runtime = runtime_of(request)
    records = [entry for _, entry in NearQuery.ordered(found)]
    body, used = write_csv(columns, records, source_terms(runtime, query.sources), _sources_of)
    # No language: these rows have no translated text (the JSON list says none either).
    return csv_response(
        request, runtime, body, name=name, sources=query.sources, used_terms=used, language=None
    )

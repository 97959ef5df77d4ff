"""The CSV export of a "near a point" list (bike stations, car parks): the rows the JSON
list's query selects, all of them, in the list's order (see :mod:`aggregator.api.csv_export`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from aggregator.api.csv_export import (
    MAX_ROWS,
    Column,
    ExportJob,
    ExportTooLarge,
    export_response,
    source_terms,
)
from aggregator.runtime import runtime_of

from .query import NearQuery


async def near_csv(
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
    # ``found`` is this request's own list (of snapshot records, or entries made for it):
    # nothing on the loop changes it while the thread orders and writes it.
    job = ExportJob(
        name=name,
        columns=columns,
        rows=lambda: [entry for _, entry in NearQuery.ordered(found)],
        terms=source_terms(runtime, query.sources),
        sources=query.sources,
        # No language: these rows have no translated text (the JSON list says none either).
        language=None,
    )
    return await export_response(request, runtime, job)

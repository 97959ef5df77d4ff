"""CSV exports of the lists: what a person downloads into a spreadsheet.

A list's CSV twin (``/v1/events.csv`` beside ``/v1/events``, see
:meth:`aggregator.api.routing.ApiRouter.get`) takes the JSON list's filters, read by the very
function the JSON route reads them with, and answers the whole filtered set in one file, in
the list's order: a spreadsheet cannot follow a ``Link: rel=next`` header, and a file that
silently stops at a page boundary looks complete. The set is bounded (:data:`MAX_ROWS` rows,
:data:`MAX_BYTES` bytes); over that, the answer is a problem (``export_too_large``) asking for
narrower filters, never a truncated file.

A route checks the request's filters on the event loop, then describes its export as an
:class:`ExportJob`; :func:`export_response` builds the rows, the file, its ETag and its gzip in
a worker thread (a 10,000-row file takes about a second, which must not stall every other
request) and keeps the finished file for a repeat or a 304 (:mod:`aggregator.api.export_cache`).

The file is written by the standard library's :mod:`csv` module (RFC 4180: a header row,
``,`` between cells, CRLF line ends, cells with ``,``, ``"`` or a line break quoted and their
quotes doubled), in UTF-8. Columns are flat and stable (:class:`Column`): a location is ``lat``
and ``lon``, a list is joined with :data:`LIST_SEPARATOR`, a time is ISO 8601 with its offset,
a boolean is ``true``/``false``, a missing value is an empty cell. Each row names its sources'
licence and attribution (a saved file loses the HTTP headers; ODbL asks that derived data say
where it comes from and under which terms), and the answer carries one
``Link: <licence>; rel="license"`` per licence.

CSV injection (OWASP): a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@``
(or a tab or carriage return) as a formula. Every text cell that starts so and is not a plain
number gets a leading apostrophe, which spreadsheets read as "this is text" and hide; numbers
(``-3.5``, a longitude west of Greenwich) are written as numbers and never touched.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

from aggregator.api.export_cache import cache_of
from aggregator.api.fields import item_fields, select_fields
from aggregator.api.params import QueryParams
from aggregator.api.problems import ApiError
from aggregator.api.rendering import GZIP_MIN_BYTES, _cache_control, accepts_gzip, etag_matches
from aggregator.api.results import ApiResult
from aggregator.config.licences import licence_url

if TYPE_CHECKING:
    from aggregator.api.routing import ApiRouter
    from aggregator.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[Any]]

CSV_MEDIA_TYPE = "text/csv; charset=utf-8; header=present"
#: At most this many rows in one export: a spreadsheet holds a million, but a municipal export
#: of more than this is a bulk download, which the narrower filters (or the JSON list's cursor
#: pages) serve better than one request holding a process for seconds.
MAX_ROWS = 10_000
#: At most this many bytes (uncompressed) in one export, 16 MB (decimal megabytes, as the
#: problem's ``megabytes`` field and the docs say): the body is built in memory, to give it an
#: ETag and to refuse an oversized export before anything is sent.
MAX_BYTES = 16_000_000
#: Between the items of a list in one cell (categories, keywords, alert ids...).
LIST_SEPARATOR = "|"
#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: A plain decimal number: starts with a trigger (``-3.5``, ``+33``) yet is no formula.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: Query parameters of a JSON list its CSV twin does not take: the twin holds the whole set
#: (no page size or cursor), every column (no ``fields``), and is no sync.
NOT_IN_EXPORT = frozenset({"format", "limit", "cursor", "fields", "sync", "updated_since"})


@dataclass(frozen=True)
class Column:
    """One column: its header and how a row's value is read from a record."""

    name: str
    value: Callable[[Mapping[str, Any]], Any]


def field(name: str, key: str | None = None) -> Column:
    """The column ``name`` holding the record's ``key`` (default: ``name``)."""
    key = key or name

    def read(record: Mapping[str, Any]) -> Any:
        return record.get(key)

    return Column(name, read)


def nested(name: str, *keys: str) -> Column:
    """The column ``name`` holding ``record[k1][k2]...`` (empty when any level is missing)."""

    def read(record: Mapping[str, Any]) -> Any:
        value: Any = record
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return Column(name, read)


def neutralised(text: str) -> str:
    """``text``, with a leading apostrophe when a spreadsheet would run it as a formula."""
    if text.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def cell(value: Any) -> str | int | float:
    """A value as one CSV cell (see the module's documentation for each type)."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: a bool is an int
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, list | tuple):
        return neutralised(LIST_SEPARATOR.join(str(item) for item in value if item is not None))
    return neutralised(str(value))


class ExportTooLarge(ApiError):
    """The filtered set is more than one export holds."""

    def __init__(self) -> None:
        super().__init__(
            400,
            "Export too large",
            "export_too_large",
            kind="export-too-large",
            fields={"maximum": MAX_ROWS, "megabytes": MAX_BYTES // 1_000_000},
        )


@dataclass(frozen=True)
class Terms:
    """A source's terms of reuse, as the rows it contributes name them."""

    licence: str | None
    attribution: str | None


def source_terms(runtime: Runtime, source_ids: Iterable[str]) -> dict[str, Terms]:
    """Each source's licence and attribution, as configured (``meta.sources`` says the same)."""
    terms = {}
    for source_id in source_ids:
        status = runtime.statuses.get(source_id)
        if status is not None:
            terms[source_id] = Terms(status.licence, status.attribution)
    return terms


#: The commune of the row's record, as the JSON list's ``commune`` gives it (INSEE code and
#: name; empty cells outside every commune, or before the communes are loaded). Every export
#: of located records has them, just before the licence columns. The ``commune`` of a record
#: must be resolved on the event loop (it reads the live commune tags), never in the thread.
COMMUNE_COLUMNS = (
    nested("commune_code", "commune", "code"),
    nested("commune_name", "commune", "name"),
)

#: The last two columns of every export: the terms of the row's sources (one, or two for an
#: event merged from two sources), joined with :data:`LIST_SEPARATOR` when they differ. The
#: licence is an SPDX id (ODbL-1.0, etalab-2.0...) or a URL; the attribution is whom to
#: credit, as the source's configuration words it.
LICENCE_COLUMNS = (
    Column("licence", lambda record: _distinct(t.licence for t in record[_TERMS])),
    Column("attribution", lambda record: _distinct(t.attribution for t in record[_TERMS])),
)
_TERMS = "__terms__"


def _distinct(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def write_csv(
    columns: Sequence[Column],
    records: Iterable[Mapping[str, Any]],
    terms: Mapping[str, Terms],
    sources_of: Callable[[Mapping[str, Any]], Sequence[str]],
) -> tuple[bytes, list[Terms]]:
    """The CSV file of ``records`` (header row first), and the terms of the sources it holds.

    Raises :class:`ExportTooLarge` past :data:`MAX_ROWS` rows or :data:`MAX_BYTES` bytes.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n", strict=True)
    writer.writerow([column.name for column in columns])
    used: dict[Terms, None] = {}
    for rows, record in enumerate(records, start=1):
        if rows > MAX_ROWS:
            raise ExportTooLarge()
        row_terms = [terms[s] for s in dict.fromkeys(sources_of(record)) if s in terms]
        used.update(dict.fromkeys(row_terms))
        with_terms = {**record, _TERMS: row_terms}
        writer.writerow([cell(column.value(with_terms)) for column in columns])
        if buffer.tell() > MAX_BYTES:  # characters: at most as many as the UTF-8 bytes
            raise ExportTooLarge()
    # "replace": a lone surrogate (not UTF-8) from a decoder's escape becomes "?", not a 500.
    body = buffer.getvalue().encode("utf-8", "replace")
    if len(body) > MAX_BYTES:
        raise ExportTooLarge()
    return body, list(used)


def single_source(record: Mapping[str, Any]) -> list[str]:
    """The source of a record that has one (its ``source`` field): places, stations..."""
    return [record["source"]]


@dataclass(frozen=True)
class ExportJob:
    """What an export is made of: the route's part (its rows) and how to write them.

    ``rows`` is called in a worker thread (:func:`export_response`): it may only read what
    does not change under it, such as a snapshot's records or an index (both immutable once
    built; a new snapshot brings new objects), and what was resolved on the event loop
    before. It must not look up live data (the loop swaps snapshots and builds indexes).
    """

    name: str
    columns: Sequence[Column]
    rows: Callable[[], Sequence[Mapping[str, Any]]]
    #: The terms of the sources the rows may come from (resolved on the loop).
    terms: Mapping[str, Terms]
    #: The configured sources of the list (for ``Cache-Control``).
    sources: Sequence[str]
    sources_of: Callable[[Mapping[str, Any]], Sequence[str]] = single_source
    #: The negotiated language; None for rows without translated text.
    language: str | None = None
    #: Whether every translated text of the rows is in ``language`` (default: yes).
    all_in_language: Callable[[Sequence[Mapping[str, Any]]], bool] | None = None


@dataclass(frozen=True)
class Export:
    """A finished export: what an answer (200 or 304) needs, without building it again."""

    body: bytes
    #: ``body`` gzipped, when it is large enough for gzip to be worth it.
    gzipped: bytes | None
    etag: str
    used_terms: tuple[Terms, ...]
    content_language: bool

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"")


def build_export(job: ExportJob) -> Export:
    """Rows, CSV, ETag and gzip of ``job``: the CPU-bound part, run off the event loop."""
    rows = job.rows()
    body, used = write_csv(job.columns, rows, job.terms, job.sources_of)
    digest = hashlib.sha256(body)
    digest.update(b"\0" + (job.language or "").encode())
    # zlib releases the GIL while it compresses: the loop runs meanwhile.
    gzipped = gzip.compress(body, compresslevel=5) if len(body) > GZIP_MIN_BYTES else None
    content_language = job.all_in_language(rows) if job.all_in_language else True
    return Export(body, gzipped, digest.hexdigest()[:24], tuple(used), content_language)


async def export_response(request: web.Request, runtime: Runtime, job: ExportJob) -> web.Response:
    """The export ``job`` as an answer, built in a worker thread (or taken from the cache of
    finished exports, :mod:`aggregator.api.export_cache`), so that the event loop goes on
    answering other requests while a large file is made.

    The request's filters are checked before this (a bad one is a problem, on the loop)."""
    cache_control, shareable_s = _cache_control(ApiResult(None, sources=job.sources), runtime)
    query = tuple(sorted(request.query.items()))
    key = (request.path, query, job.language or "", runtime.answer_generation())
    export = await cache_of(runtime.live).get_or_build(
        key, lambda: asyncio.to_thread(build_export, job), shareable_s
    )
    return csv_response(
        request, export, name=job.name, cache_control=cache_control, language=job.language
    )


def csv_response(
    request: web.Request,
    export: Export,
    *,
    name: str,
    cache_control: str,
    language: str | None,
) -> web.Response:
    """The export as an answer, with the conventions of the JSON answers: a weak ETag (304
    on ``If-None-Match``), ``Cache-Control`` from the sources' refresh intervals, gzip above
    1 KB, ``Content-Language``/``Vary``; and one ``Link: rel="license"`` per licence."""
    headers: dict[str, str] = {
        "ETag": f'W/"{export.etag}"',
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding, Accept-Language" if language else "Accept-Encoding",
    }
    if language and export.content_language:
        headers["Content-Language"] = language
    if etag_matches(request.headers.get("If-None-Match"), export.etag):
        response = web.Response(status=304, headers=headers)
        add_licence_links(response, export.used_terms)
        return response
    headers["Content-Type"] = CSV_MEDIA_TYPE
    headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    body = export.body
    if export.gzipped is not None and accepts_gzip(request):
        body = export.gzipped
        headers["Content-Encoding"] = "gzip"
    response = web.Response(body=body, headers=headers)
    add_licence_links(response, export.used_terms)
    return response


def add_licence_links(response: web.StreamResponse, used_terms: Iterable[Terms]) -> None:
    """One ``Link: <url>; rel="license"`` (RFC 8288) per distinct licence of the rows."""
    urls = dict.fromkeys(licence_url(t.licence) for t in used_terms if t.licence)
    for url in urls:
        if url is not None:
            # yarl percent-encodes what a URI may not hold (a ">" would end the reference).
            response.headers.add("Link", f'<{URL(url)}>; rel="license"')


def export_location(request: web.Request) -> str:
    """Where ``format=csv`` on a JSON list redirects: its CSV twin with the same filters. The
    parameters an export does not take (``limit``, ``cursor``, ``fields``, ``sync``: it holds
    every row and column) are left out, once the list has checked them."""
    kept = [(k, v) for k, v in request.query.items() if k not in NOT_IN_EXPORT]
    return str(URL(request.path + ".csv").with_query(kept))


def see_csv(handler: Handler, router: ApiRouter, formats: tuple[str, ...]) -> Handler:
    """``handler`` of a JSON list, answering ``format=csv`` with a 303 to its CSV twin.

    The list first checks the whole request as it would answer it (every filter, ``limit``,
    ``cursor``, ``fields``): a request the JSON list refuses is refused here too, with the
    same problem, rather than sent on. The answer is a response, not a raised redirect, so the
    conventions middleware gives it the CORS and security headers a browser's fetch needs.
    """

    async def json_or_see_csv(request: web.Request) -> Any:
        if QueryParams(request.query).choice("format", formats, "json") != "csv":
            return await handler(request)
        as_json = request.clone(rel_url=request.rel_url.with_query(_without_format(request)))
        result = await handler(as_json)
        resource = request.match_info.route.resource
        route = router.lookup("GET", resource.canonical) if resource is not None else None
        if isinstance(result, ApiResult) and route is not None and "fields" in request.query:
            select_fields(result, as_json.query, item_fields(router, route))
        return web.Response(status=303, headers={"Location": export_location(request)})

    return json_or_see_csv


def _without_format(request: web.Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query.items() if k != "format"]

"""The events endpoints: what's on, the municipal agenda, one occurrence, categories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api import sync
from aggregator.api.communes import COMMUNE_PARAM, add_commune_schema, wanted_commune
from aggregator.api.fields import FIELDS
from aggregator.api.i18n import localize_record, localize_tagged, negotiate_language
from aggregator.api.pagination import MAX_LIMIT
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter, NotFound
from aggregator.api.results import ApiResult
from aggregator.api.routing import CURSOR_PARAM, ApiRouter, Param, limit_param
from aggregator.communes import RecordCommunes
from aggregator.runtime import Runtime, runtime_of

from . import schemas
from .api import EVENT_TYPES, INDEX_NAME
from .csv_export import agenda_csv, events_csv
from .ics_export import agenda_calendar, events_calendar
from .index import EventIndex, EventQuery
from .model import ACCESSIBILITY_CODES, CHANNELS

DEFAULT_SPAN = dt.timedelta(days=7)
MAX_SPAN = dt.timedelta(days=366)
MAX_RADIUS_M = 50_000.0


def _event_sources(runtime: Runtime) -> list[str]:
    return [s.source_id for s in runtime.statuses.values() if s.source_type in EVENT_TYPES]


def _channel_sources(runtime: Runtime, channel: str | None) -> list[str]:
    """The event sources that feed ``channel`` (all of them for None): an agenda list with no
    agenda source says so (``no_source``) rather than naming the events sources."""
    sources = _event_sources(runtime)
    if channel is None:
        return sources
    configured = {c.id: c for c in runtime.config.connectors}
    return [s for s in sources if getattr(configured.get(s), "channel", "events") == channel]


def _index(runtime: Runtime) -> EventIndex | None:
    if not any(runtime.live.snapshot(s) for s in _event_sources(runtime)):
        return None
    return runtime.live.combined(INDEX_NAME)


def _localized(record: dict[str, Any], language: str, runtime: Runtime) -> dict[str, Any]:
    """The record in ``language``; ``text_languages`` names the language of each translated
    text (a French-only title asked in English is answered in French, and says so)."""
    picked: dict[str, str] = {}
    out = localize_record(record, language, runtime.languages, picked)
    price = out.get("price")
    if isinstance(price, dict) and isinstance(price.get("text"), dict):
        text, tag = localize_tagged(price["text"], language, runtime.languages)
        out["price"] = {**price, "text": text}
        if tag is not None:
            picked["price.text"] = tag
    if picked:
        out["text_languages"] = picked
    return out


def _all_in(language: str, records: Iterable[Mapping[str, Any]]) -> bool:
    """Whether every translated text of ``records`` is in ``language`` (then, and only then,
    the answer's ``Content-Language`` may say so)."""
    return all(tag == language for r in records for tag in (r.get("text_languages") or {}).values())


def _query(
    params: QueryParams, runtime: Runtime, channel: str | None, *, sync: bool = False
) -> tuple[EventQuery, str]:
    """The request's filters and the key of what they select (for cursors and sync tokens).

    A sync has no default time window (a window moving with the clock would make records
    come and go without changing): ``from``/``to`` bound it only when given.
    """
    now = runtime.clock.now()
    start = params.datetime("from", now, runtime.timezone)
    end = params.datetime("to", start + DEFAULT_SPAN, runtime.timezone)
    if end <= start:
        raise BadParameter("to", "to_before_from")
    if end - start > MAX_SPAN and not sync:
        raise BadParameter("to", "range_too_long")
    lat, lon = params.point() or (None, None)
    radius = params.number("radius", None, minimum=1.0, maximum=MAX_RADIUS_M)
    if radius is not None and lat is None:
        raise BadParameter("radius", "radius_needs_point")
    sort = params.choice("sort", ("start", "distance"), "start")
    if sort == "distance" and lat is None:
        raise BadParameter("sort", "distance_needs_point")
    accessibility = tuple(params.csv("accessibility"))
    for code in accessibility:
        if code not in ACCESSIBILITY_CODES:
            raise BadParameter(
                "accessibility",
                "not_one_of",
                value=repr(code),
                choices=", ".join(ACCESSIBILITY_CODES),
            )
    free = params.boolean("free", False) if "free" in params else None
    if channel is None:
        asked = params.string("channel")
        if asked is not None and asked not in CHANNELS:
            raise BadParameter(
                "channel", "not_one_of", value=repr(asked), choices=", ".join(CHANNELS)
            )
        channel = asked
    if sync and "sort" in params:
        raise BadParameter("sort", "sync_not_sortable")
    query = EventQuery(
        start=start.timestamp() if "from" in params or not sync else None,
        end=end.timestamp() if "to" in params or not sync else None,
        text=params.string("q"),
        categories=tuple(params.csv("category")),
        channel=channel,
        sources=tuple(params.csv("source")),
        free=free,
        accessibility=accessibility,
        lat=lat,
        lon=lon,
        radius_m=radius,
        sort=sort,
        limit=params.integer("limit", 20, minimum=1, maximum=MAX_LIMIT),
        commune=wanted_commune(params, runtime),
    )
    scope = "|".join(
        str(part)
        for part in (
            "events",
            query.start,
            query.end,
            query.text,
            query.categories,
            query.channel,
            query.sources,
            query.free,
            query.accessibility,
            query.lat,
            query.lon,
            query.radius_m,
            query.sort,
            query.commune,
        )
    )
    return query, scope


def _communes(runtime: Runtime, index: EventIndex) -> RecordCommunes:
    """The commune of each occurrence of ``index``, by position (once per index)."""
    return runtime.communes.of("events", index, lambda: ((), index.lon, index.lat))


def _in_commune(query: EventQuery, runtime: Runtime, index: EventIndex) -> EventQuery:
    """``query`` restricted to its commune's occurrences, when it names one."""
    if query.commune is None:
        return query
    within = _communes(runtime, index).mask(query.commune)
    return EventQuery(**{**query.__dict__, "within": within})


def _commune_of(communes: RecordCommunes, index: EventIndex, record: Mapping[str, Any]) -> Any:
    return communes.at(index.by_id[record["id"]])


async def _list(request: web.Request, channel: str | None) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    language = negotiate_language(request, runtime.languages)
    sources = _event_sources(runtime)
    index = _index(runtime)
    if "updated_since" in params:
        raise BadParameter("updated_since", "updated_since_replaced")
    if "sync" in params:
        return await _sync(runtime, params, language, sources, index, channel)
    query, scope = _query(params, runtime, channel)
    sources = _channel_sources(runtime, query.channel)
    cursor = params.string("cursor")
    if cursor is not None:
        position = runtime.cursors.decode(scope, cursor)
        query = EventQuery(**{**query.__dict__, "after": tuple(position)})
    if index is None:
        return ApiResult([], sources=sources, language=language, paginated=True)
    page = index.query(_in_commune(query, runtime, index))
    fallbacks = runtime.languages

    def render(record: Any) -> dict[str, Any]:
        return _localized(record, language, runtime)

    data = []
    communes = _communes(runtime, index)
    for record, distance in page.items:
        # Localised once per index (snapshot) and language; a copy before adding a key.
        item = dict(index.localized(record, language, fallbacks, render))
        item["commune"] = _commune_of(communes, index, record)
        if distance is not None:
            item["distance_m"] = round(distance, 1)
        data.append(item)
    next_cursor = (
        runtime.cursors.encode(scope, list(page.next_position)) if page.next_position else None
    )
    return ApiResult(
        data,
        sources=sources,
        language=language,
        paginated=True,
        next_cursor=next_cursor,
        meta={"total": page.total},
        content_language=_all_in(language, data),
    )


async def _sync(
    runtime: Runtime,
    params: QueryParams,
    language: str,
    sources: list[str],
    index: EventIndex | None,
    channel: str | None,
) -> ApiResult:
    """A sync page (see aggregator.api.sync): the occurrences changed since the token."""
    query, scope = _query(params, runtime, channel, sync=True)
    if index is None:
        raise sync.SyncNotReady()
    query = _in_commune(query, runtime, index)
    collection = sync.SyncCollection(
        name=INDEX_NAME,
        version=index,
        generation=index.generation,
        hashes=index.content_hashes,
    )
    page = await sync.sync_page(
        runtime,
        params,
        collection,
        scope=scope,
        matching=lambda: index.matching_ids(query),
        limit=query.limit,
    )

    def render(record: Any) -> dict[str, Any]:
        return _localized(record, language, runtime)

    changed = []
    communes = _communes(runtime, index)
    for rid in page.changed:
        record = index.get(rid)
        assert record is not None  # the sync page lists ids of this index
        item = dict(index.localized(record, language, runtime.languages, render))
        item["commune"] = _commune_of(communes, index, record)
        changed.append(item)
    return sync.page_answer(
        page,
        changed,
        sources=sources,
        language=language,
        content_language=_all_in(language, changed),
    )


async def list_events(request: web.Request) -> ApiResult:
    return await _list(request, None)


async def list_agenda(request: web.Request) -> ApiResult:
    return await _list(request, "agenda")


async def get_event(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    language = negotiate_language(request, runtime.languages)
    index = _index(runtime)
    event_id = request.match_info["event_id"]
    record = index.get(event_id) if index is not None else None
    if record is None:
        raise NotFound("no_event", value=repr(event_id))
    data = _localized(record, language, runtime)
    data["commune"] = _commune_of(_communes(runtime, index), index, record)
    data["other_occurrences"] = [
        {"id": other["id"], "start": other["start"], "end": other["end"], "status": other["status"]}
        for other in index.occurrences_of(record["event_id"])
        if other["id"] != record["id"]
    ]
    return ApiResult(
        data,
        sources=_event_sources(runtime),
        language=language,
        content_language=_all_in(language, [data]),
    )


async def list_categories(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    index = _index(runtime)
    query, _scope = _query(params, runtime, None)
    data = index.categories(query) if index is not None else []
    return ApiResult(data, sources=_event_sources(runtime))


FILTERS = [
    Param(
        "from",
        f"Start of the range ({api_schemas.INSTANT_RANGE}; default now).",
        api_schemas.INSTANT,
    ),
    Param(
        "to",
        "End of the range, after from (default from + 7 days; at most 366 days after from).",
        api_schemas.INSTANT,
    ),
    Param(
        "q",
        "Full text: case- and accent-insensitive, French-aware (plurals, elisions).",
        api_schemas.TEXT,
    ),
    Param(
        "category",
        "Only these category keys (comma-separated, at most 50; see /v1/categories).",
        api_schemas.csv(),
    ),
    Param("lat", "Latitude for distance filter/sort; goes with lon.", api_schemas.LATITUDE),
    Param("lon", "Longitude for distance filter/sort; goes with lat.", api_schemas.LONGITUDE),
    Param(
        "radius",
        f"Metres around lat/lon (1-{MAX_RADIUS_M:.0f}); needs lat and lon.",
        api_schemas.number(1, MAX_RADIUS_M),
    ),
    Param(
        "accessibility",
        "Only events accessible for these (comma-separated): " + ", ".join(ACCESSIBILITY_CODES),
        api_schemas.csv(api_schemas.one_of(ACCESSIBILITY_CODES)),
    ),
    Param("free", "true: free events only; false: paying only.", {"type": "boolean"}),
    Param(
        "source",
        "Only these sources (comma-separated source ids, at most 50).",
        api_schemas.csv(),
    ),
]
CHANNEL = Param("channel", "events or agenda.", api_schemas.choice(CHANNELS))
LANG = Param(
    "lang",
    "Response language; overrides Accept-Language (one of the configured languages).",
    api_schemas.language,
)


def register_event_routes(router: ApiRouter) -> None:
    if router.lookup("GET", "/v1/events") is not None:
        return  # another event type registered them already
    add_commune_schema(router)
    refs = {name: router.add_schema(name, schema) for name, schema in schemas.ALL.items()}
    listing = [
        *FILTERS,
        Param(
            "sort",
            "start (default) or distance (needs lat and lon).",
            api_schemas.choice(["start", "distance"]),
        ),
        limit_param("Occurrences", MAX_LIMIT),
        CURSOR_PARAM,
        *sync.PARAMS,
        sync.UPDATED_SINCE_REFUSED,
        LANG,
        FIELDS,
        COMMUNE_PARAM,
    ]
    answer = {"oneOf": [{"type": "array", "items": refs["Event"]}, refs["EventSync"]]}
    router.get(
        "/v1/events",
        list_events,
        summary="What's on: event occurrences by time, text, category, place, accessibility",
        tags=["events"],
        params=[*listing, CHANNEL],
        response=answer,
        csv=events_csv,
    )
    router.get(
        "/v1/agenda",
        list_agenda,
        summary="The local authority's agenda (council sessions, public meetings, consultations)",
        tags=["events"],
        params=listing,
        response=answer,
        csv=agenda_csv,
    )
    calendar_params = [*FILTERS, LANG, COMMUNE_PARAM]
    for path, handler, what in (
        ("/v1/events.ics", events_calendar, "events (every channel, or channel=...)"),
        ("/v1/agenda.ics", agenda_calendar, "the local authority's agenda"),
    ):
        router.get(
            path,
            handler,
            summary=f"A calendar to subscribe to: {what}, with the JSON list's filters",
            description="RFC 5545 iCalendar: one VEVENT per occurrence, its UID stable across "
            "refreshes, LAST-MODIFIED and SEQUENCE from the publisher's update time, cancelled "
            "occurrences as STATUS:CANCELLED, the deployment's VTIMEZONE. Default range: the "
            "past 7 days and the next 90; at most 5,000 occurrences.",
            tags=["events"],
            params=[*calendar_params, CHANNEL] if "events" in path else calendar_params,
            response={"type": "string"},
            media_type="text/calendar",
            enveloped=False,
        )
    router.get(
        "/v1/events/{event_id:.+}",
        get_event,
        summary="One occurrence with its event's full detail and its other occurrences",
        tags=["events"],
        params=[
            Param(
                "event_id",
                "An occurrence id, 'source:uid:recurrence'.",
                api_schemas.NAMESPACED_ID,
                "path",
                required=True,
            ),
            LANG,
        ],
        response=refs["EventDetail"],
        errors=[400, 404],
    )
    router.get(
        "/v1/categories",
        list_categories,
        summary="Categories of the events in a range, with counts (for filter chips)",
        tags=["events"],
        params=[*FILTERS, CHANNEL],
        response={"type": "array", "items": refs["Category"]},
    )

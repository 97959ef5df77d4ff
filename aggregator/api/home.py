"""``GET /v1/home``: what a phone's home screen shows, in one round-trip.

The parts come from the server's own endpoints (whichever source types are installed):
nearby departure boards (with realtime), the alerts on their lines, bike stations, car
parks, the nearest open places of the categories the operator lists (``home_categories`` of
a places source), events today and this weekend nearby, the next items of the local
authority's agenda, the latest municipal news, the next waste collections at the address.
Each part degrades on its own and never fails the call; each says why it shows what it shows
(``reason``: :mod:`aggregator.api.parts`), judged on the same freshness as the answer's
``meta.sources``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiohttp import web

from aggregator.api.answer_freshness import answer_freshness
from aggregator.api.i18n import negotiate_language
from aggregator.api.internal import Unavailable, internal_get
from aggregator.api.messages import UNAVAILABLE
from aggregator.api.params import QueryParams
from aggregator.api.parts import (
    PART_REASON_SCHEMA,
    PartReason,
    part_json,
    part_schema,
    unavailable_part,
)
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Param
from aggregator.api.schemas import (
    LATITUDE,
    LONGITUDE,
    enum,
    language,
    obj,
    ref,
)
from aggregator.runtime import runtime_of

EVENTS_RADIUS_M = 5000
Picker = Callable[[Any], Any] | None
#: Each part and the component schema of its items (they come from the server's own routes).
PART_ITEMS = {
    "departures": "NearbyBoard",
    "alerts": "Alert",
    "bikes": "BikeStation",
    "parkings": "Parking",
    "places": "Place",
    "events_today": "Event",
    "events_weekend": "Event",
    "agenda": "Event",
    "news": "NewsItem",
    "waste": "WasteCollection",
}
UNAVAILABLE_SCHEMA = obj(
    {"code": enum(UNAVAILABLE), "message": {"type": "string"}},
    ["code", "message"],
    title="Unavailable",
)
HOME_SCHEMA: dict[str, Any] = obj(
    {
        name: part_schema(ref(item), title=f"Home{name.title().replace('_', '')}")
        for name, item in PART_ITEMS.items()
    },
    list(PART_ITEMS),
    title="Home",
    description="Each part: {items, reason, unavailable}. reason.code says why the part shows "
    "what it shows (ok, empty, no_source, loading, failing, stale, not_served, failed) with "
    "the sources that decided it; unavailable is the same code and message when the part has "
    "no items, else null.",
)


def _weekend(now: datetime) -> tuple[datetime, datetime]:
    """From Saturday 00:00 (or now, during the weekend) to Monday 00:00, local time."""
    today = now.date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7)
    if today.weekday() >= 5:
        saturday = today - timedelta(days=today.weekday() - 5)
    start = max(now, datetime.combine(saturday, time(), now.tzinfo))
    return start, datetime.combine(saturday + timedelta(days=2), time(), now.tzinfo)


def _zone_of(boards: list[dict[str, Any]]) -> ZoneInfo | None:
    """The zone of the nearest board's service (its timetable's agency zone), if any: a place
    far from the configured city (another feed's region) lives in its own time."""
    for board in boards:
        for departure in map(_readable, board.get("departures", [])):
            name = departure.get("timezone") if isinstance(departure, dict) else None
            if isinstance(name, str):
                try:
                    return ZoneInfo(name)
                except (ValueError, ZoneInfoNotFoundError):
                    continue
    return None


async def home(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    lat, lon = params.required_point()
    language = negotiate_language(request, runtime.languages)
    here = {"lat": lat, "lon": lon}
    sources: set[str] = set()
    parts: dict[str, Any] = {}
    # Judged once, before the parts are fetched: their requests share it, and so does meta.
    judged = answer_freshness(request, runtime)
    exact = [True]

    part_sources: dict[str, set[str]] = {}

    async def part(
        name: str,
        path: str,
        query: dict[str, Any],
        pick: Picker = None,
        within: set[str] | None = None,
    ) -> None:
        """Fetch a part; ``within`` keeps only those of its sources (the rest cannot have
        contributed) for its reason."""
        try:
            result = await internal_get(
                request, f"{path}?{urlencode(query)}", **{"Accept-Language": language}
            )
        except Unavailable as exc:
            parts[name] = unavailable_part(PartReason(exc.code), [], language)
            return
        behind = set(result.sources) if within is None else set(result.sources) & within
        part_sources[name] = behind
        sources.update(behind)
        # Content-Language claims only what every part says is true.
        exact[0] = exact[0] and result.content_language
        items = result.data if pick is None else pick(result.data)
        parts[name] = part_json(items, {s: judged.of(s) for s in behind}, language)

    await part(
        "departures",
        "/v1/departures",
        {**here, "radius": 500, "stops": 3, "per_stop": 4},
    )
    lines = sorted(
        {
            d["line"]["id"]
            for board in parts["departures"]["items"]
            for d in map(_readable, board["departures"])
            if d.get("line")
        }
    )
    # "Today" and "this weekend" are the place's: its transit's zone, else the city's.
    zone = _zone_of(parts["departures"]["items"]) or runtime.timezone
    now = runtime.clock.now().astimezone(zone)
    end_of_day = datetime.combine(now.date() + timedelta(days=1), time(), now.tzinfo)
    weekend_start, weekend_end = _weekend(now)
    # Alerts on the lines of the boards shown: the realtime sources behind those boards
    # decide (another network's stale feed says nothing of them); with no board here,
    # every alert source does.
    boards_sources = part_sources.get("departures", set()) if lines else None
    await part("alerts", "/v1/alerts", {}, lambda alerts: _on_lines(alerts, lines), boards_sources)
    await part("bikes", "/v1/bikes/stations", {**here, "radius": 800, "limit": 3})
    await part("parkings", "/v1/parkings", {**here, "radius": 1500, "limit": 3})
    categories = _home_place_categories(runtime)
    if categories:
        query = {**here, "radius": 2000, "limit": 3, "open_now": "true"}
        await part("places", "/v1/places", {**query, "category": ",".join(categories)})
    else:
        parts["places"] = unavailable_part(PartReason.NO_SOURCE, [], language)
    nearby = {**here, "radius": EVENTS_RADIUS_M, "limit": 5}
    await part(
        "events_today",
        "/v1/events",
        {**nearby, "from": now.isoformat(), "to": end_of_day.isoformat()},
    )
    await part(
        "events_weekend",
        "/v1/events",
        {**nearby, "from": weekend_start.isoformat(), "to": weekend_end.isoformat()},
    )
    await part("agenda", "/v1/agenda", {"limit": 3, "to": (now + timedelta(days=60)).isoformat()})
    await part("news", "/v1/news", {"limit": 3})
    await part("waste", "/v1/waste/collections", here, _next_collections)
    return ApiResult(
        parts,
        sources=sorted(sources),
        language=language,
        content_language=exact[0],
        meta={
            "now": now.isoformat(timespec="seconds"),
            "weekend": [
                weekend_start.isoformat(timespec="seconds"),
                weekend_end.isoformat(timespec="seconds"),
            ],
        },
    )


def _readable(departure: Any) -> dict[str, Any]:
    """A departure as a dict: schedule-only boards hand out pre-serialised JSON fragments."""
    if isinstance(departure, orjson.Fragment):
        loaded: dict[str, Any] = orjson.loads(orjson.dumps(departure))
        return loaded
    return departure  # type: ignore[no-any-return]


def _home_place_categories(runtime: Any) -> list[str]:
    """The place categories the operator lists for the home screen (``home_categories`` of
    the places sources), in the order first listed."""
    listed: dict[str, None] = {}
    for source in runtime.config.connectors:
        listed.update(dict.fromkeys(getattr(source, "home_categories", None) or ()))
    return list(listed)


def _on_lines(alerts: list[dict[str, Any]], lines: list[str]) -> list[dict[str, Any]]:
    wanted = set(lines)
    return [a for a in alerts if wanted & {line["id"] for line in a.get("lines", [])}]


def _next_collections(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The next collection of each stream at the address, soonest first."""
    return [c for c in answer["collections"] if c["next"] is not None]


def register_home(router: ApiRouter) -> None:
    router.get(
        "/v1/home",
        home,
        summary="A home screen in one call: departures, alerts, bikes, car parks, events, agenda",
        tags=["home"],
        params=[
            Param("lat", "Latitude (WGS 84).", LATITUDE, required=True),
            Param("lon", "Longitude (WGS 84).", LONGITUDE, required=True),
            Param(
                "lang",
                "Response language; overrides Accept-Language (one of the configured languages).",
                language,
            ),
        ],
        response=HOME_SCHEMA,
    )
    router.add_schema("Unavailable", UNAVAILABLE_SCHEMA)
    router.add_schema("PartReason", PART_REASON_SCHEMA)

"""``GET /v1/home``: what a phone's home screen shows, in one round-trip.

The parts come from the server's own endpoints (whichever source types are installed):
nearby departure boards (with realtime), the alerts on their lines, bike stations, car
parks, events today and this weekend nearby, the next items of the local authority's
agenda. Each part degrades on its own: a part whose data is missing or failing is empty,
with the reason, and never fails the call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from aggregator.api.i18n import negotiate_language
from aggregator.api.internal import Unavailable, internal_get
from aggregator.api.messages import UNAVAILABLE, coded
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Param
from aggregator.api.schemas import LATITUDE, LONGITUDE, language
from aggregator.runtime import runtime_of

EVENTS_RADIUS_M = 5000
Picker = Callable[[Any], Any] | None
HOME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Each part: {items, unavailable}; unavailable (null when there are items) "
    "says why a part is empty: a stable code and a message in the negotiated language.",
    "properties": {
        name: {
            "type": "object",
            "properties": {
                "items": {"type": "array"},
                "unavailable": {
                    "type": ["object", "null"],
                    "properties": {
                        "code": {"enum": list(UNAVAILABLE)},
                        "message": {"type": "string"},
                    },
                    "required": ["code", "message"],
                },
            },
            "required": ["items", "unavailable"],
        }
        for name in (
            "departures",
            "alerts",
            "bikes",
            "parkings",
            "events_today",
            "events_weekend",
            "agenda",
        )
    },
}


def _weekend(now: datetime) -> tuple[datetime, datetime]:
    """From Saturday 00:00 (or now, during the weekend) to Monday 00:00, local time."""
    today = now.date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7)
    if today.weekday() >= 5:
        saturday = today - timedelta(days=today.weekday() - 5)
    start = max(now, datetime.combine(saturday, time(), now.tzinfo))
    return start, datetime.combine(saturday + timedelta(days=2), time(), now.tzinfo)


async def home(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    lat = params.number("lat", minimum=-90.0, maximum=90.0)
    lon = params.number("lon", minimum=-180.0, maximum=180.0)
    if lat is None or lon is None:
        raise BadParameter("lat" if lat is None else "lon", "lat_lon_required")
    language = negotiate_language(request, runtime.languages)
    now = runtime.clock.now().astimezone(runtime.timezone)
    end_of_day = datetime.combine(now.date() + timedelta(days=1), time(), now.tzinfo)
    weekend_start, weekend_end = _weekend(now)
    here = {"lat": lat, "lon": lon}
    sources: set[str] = set()
    parts: dict[str, Any] = {}
    exact = [True]

    async def part(name: str, path: str, query: dict[str, Any], pick: Picker = None) -> None:
        try:
            result = await internal_get(
                request, f"{path}?{urlencode(query)}", **{"Accept-Language": language}
            )
        except Unavailable as exc:
            parts[name] = {"items": [], "unavailable": unavailable(exc.code, language)}
            return
        sources.update(result.sources)
        # Content-Language claims only what every part says is true.
        exact[0] = exact[0] and result.content_language
        items = result.data if pick is None else pick(result.data)
        parts[name] = {
            "items": items,
            "unavailable": None if items else unavailable(_why_empty(result), language),
        }

    await part(
        "departures",
        "/v1/departures",
        {**here, "radius": 500, "stops": 3, "per_stop": 4},
    )
    lines = sorted(
        {
            d["line"]["id"]
            for board in parts["departures"]["items"]
            for d in board["departures"]
            if d.get("line")
        }
    )
    await part("alerts", "/v1/alerts", {}, lambda alerts: _on_lines(alerts, lines))
    await part("bikes", "/v1/bikes/stations", {**here, "radius": 800, "limit": 3})
    await part("parkings", "/v1/parkings", {**here, "radius": 1500, "limit": 3})
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
    return ApiResult(
        parts,
        sources=sorted(sources),
        language=language,
        content_language=exact[0],
        meta={
            "now": now.isoformat(),
            "weekend": [weekend_start.isoformat(), weekend_end.isoformat()],
        },
    )


def _on_lines(alerts: list[dict[str, Any]], lines: list[str]) -> list[dict[str, Any]]:
    wanted = set(lines)
    return [a for a in alerts if wanted & {line["id"] for line in a.get("lines", [])}]


def _why_empty(result: ApiResult) -> str:
    return "nothing_now" if result.sources else "no_source"


def unavailable(code: str, language: str) -> dict[str, str]:
    """``{code, message}``: why a part is empty, the message in ``language``."""
    return coded(UNAVAILABLE, code, language)


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

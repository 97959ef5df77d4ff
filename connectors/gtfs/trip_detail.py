"""``GET /v1/trips/{trip_id}``: one trip's calls, scheduled and (when known) expected."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from aggregator.api.params import MAX_YEAR, MIN_YEAR, QueryParams
from aggregator.api.problems import BadParameter, NotFound
from aggregator.api.results import ApiResult
from aggregator.runtime import Runtime, runtime_of
from connectors.gtfs_rt.views import (
    namespaced,
    realtime_sources,
    trip_vehicle_json,
    usable_realtime,
)

from .references import References, wants_references
from .timetable import Timetable
from .views import line_summary, split_id, timetables


def _service_date(
    runtime: Runtime, tt: Timetable, trip: int, agency: int, raw: str | None
) -> dt.date:
    """The asked date; by default the service day whose run of this trip is closest to now."""
    if raw is not None:
        try:
            date = dt.date.fromisoformat(raw)
        except ValueError:
            raise BadParameter("date", "not_a_date", value=repr(raw)) from None
        if not MIN_YEAR <= date.year <= MAX_YEAR:
            raise BadParameter("date", "year_out_of_range", minimum=MIN_YEAR, maximum=MAX_YEAR)
        return date
    now = runtime.clock.now()
    today = now.astimezone(tt.zones[agency]).date()
    # Yesterday's service day still runs after midnight (times past 24:00).
    candidates = [today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)]
    running = [d for d in candidates if tt.is_active(int(tt.trip_service[trip]), d)]
    if not running:
        return today
    runs = tt.runs_of_trip(trip)
    if not runs:
        return today
    first = tt.run_stop_times(runs[0])

    def distance(date: dt.date) -> float:
        origin = tt.service_day_origin(agency, date.toordinal())
        start, end = origin + first[0][3], origin + first[-1][2]
        instant = now.timestamp()
        return 0.0 if start <= instant <= end else min(abs(instant - start), abs(instant - end))

    return min(running, key=distance)


def _delay(call: Any) -> int | None:
    """The departure's delay, else the arrival's (a terminus has no departure)."""
    return call.departure_delay if call.departure_delay is not None else call.arrival_delay


def _status(call: Any, threshold: int) -> str:
    """A call's status in the words of departure boards."""
    if call.status != "updated":
        return str(call.status)
    delay = _delay(call)
    return "on_time" if delay is None else _by_delay(delay, threshold)


def _by_delay(delay: int | None, threshold: int) -> str:
    """on_time / delayed / early, as departures say it; scheduled when the delay is unknown."""
    if delay is None:
        return "scheduled"
    if abs(delay) < threshold:
        return "on_time"
    return "delayed" if delay > 0 else "early"


def _trip_delay(calls: list[dict[str, Any]]) -> int | None:
    """The delay at the next call not yet passed, else the last one known."""
    upcoming = [c["delay_s"] for c in calls if not c["passed"] and c["delay_s"] is not None]
    if upcoming:
        return int(upcoming[0])
    known = [c["delay_s"] for c in calls if c["delay_s"] is not None]
    return int(known[-1]) if known else None


def _trip_status(relationship: str | None, delay: int | None, threshold: int) -> str:
    """The trip's status in the words of its departures (the relationship is kept apart)."""
    if relationship in ("cancelled", "deleted"):
        return "cancelled"
    if relationship in ("added", "duplicated"):
        return "added"
    return _by_delay(delay, threshold)


def _iso(posix: float | None, zone: dt.tzinfo) -> str | None:
    return (
        dt.datetime.fromtimestamp(posix, zone).isoformat(timespec="seconds")
        if posix is not None
        else None
    )


async def get_trip(request: web.Request) -> ApiResult:
    runtime = runtime_of(request)
    params = QueryParams(request.query)
    references = References(runtime) if wants_references(params) else None
    trip_id = request.match_info["trip_id"]
    feed, native = split_id(trip_id, "trip")
    tt = timetables(runtime).get(feed)
    trip = tt.trip_index.get(native) if tt is not None else None
    if tt is None or trip is None:
        raise NotFound("no_trip", value=repr(trip_id))
    route = int(tt.trip_route[trip])
    agency = int(tt.route_agency[route])
    zone = tt.zones[agency]
    date = _service_date(runtime, tt, trip, agency, params.string("date"))
    runs = tt.runs_of_trip(trip)
    runs_on_date = tt.is_active(int(tt.trip_service[trip]), date)
    origin = tt.service_day_origin(agency, date.toordinal())
    usable = usable_realtime(request, runtime, feed, tt)
    live = usable.live
    clock = runtime.clock.now()
    now = clock.timestamp()
    realtime = (
        live.data.state.trip(runs[0], date.toordinal(), now) if live is not None and runs else None
    )
    vehicle = (
        live.data.state.vehicle_of(runs[0], date.toordinal(), now)
        if live is not None and runs
        else None
    )
    threshold = live.data.on_time_threshold_s if live is not None else 60
    calls: list[dict[str, Any]] = []
    for seq, stop_id, arrival, departure in tt.run_stop_times(runs[0]) if runs else []:
        stop = tt.stop_index[stop_id]
        call = realtime.call(seq) if realtime is not None else None
        # Expected times when the feed gives them, else the schedule's; a skipped or
        # cancelled call has none and keeps its scheduled slot.
        leaves = origin + departure
        if call is not None:
            leaves = call.expected_departure or call.expected_arrival or leaves
        calls.append(
            {
                "stop": {
                    "id": f"{feed}:{stop_id}",
                    "name": tt.stop_names[stop],
                    "lat": float(tt.stop_lat[stop]),
                    "lon": float(tt.stop_lon[stop]),
                },
                "stop_sequence": seq,
                "scheduled_arrival": _iso(origin + arrival, zone),
                "scheduled_departure": _iso(origin + departure, zone),
                "expected_arrival": _iso(call.expected_arrival, zone) if call else None,
                "expected_departure": _iso(call.expected_departure, zone) if call else None,
                "delay_s": _delay(call) if call else None,
                "status": _status(call, threshold) if call else "scheduled",
                "realtime": call is not None and call.status != "no_data",
                "passed": leaves < now,
            }
        )
    relationship = realtime.relationship if realtime is not None else None
    delay = _trip_delay(calls) if realtime is not None else None
    # The positioned vehicle's id first: it is the one /v1/vehicles lists.
    vehicle_key = vehicle.key if vehicle is not None else None
    if vehicle_key is None and realtime is not None:
        vehicle_key = realtime.vehicle_id
    data = {
        "id": trip_id,
        "line": line_summary(feed, tt, route),
        "headsign": tt.trip_headsigns[trip] or None,
        "direction_id": int(tt.trip_direction[trip]) if tt.trip_direction[trip] >= 0 else None,
        "service_date": date.isoformat(),
        "runs_on_date": runs_on_date,
        "realtime": realtime is not None,
        "status": _trip_status(relationship, delay, threshold),
        "schedule_relationship": relationship or "scheduled",
        "delay_s": delay,
        "vehicle_id": namespaced(feed, vehicle_key),
        "vehicle": trip_vehicle_json(feed, tt, vehicle) if vehicle is not None else None,
        "timezone": tt.agency_timezones[agency],
        "calls": calls,
    }
    extra: dict[str, Any] = {}
    if references is not None:
        data = references.trip(data)
        extra["references"] = references.json()
    # meta.now is the instant the calls were judged passed against, as on boards.
    return ApiResult(
        data,
        **extra,
        sources=[feed, *realtime_sources(runtime, feed)],
        meta={
            "now": clock.astimezone(zone).isoformat(timespec="seconds"),
            "realtime": {feed: usable.meta},
        },
    )

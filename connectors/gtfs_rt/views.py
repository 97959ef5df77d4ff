"""Realtime as phones see it: finding a feed's realtime state, and the JSON of merged
departures, alerts and vehicles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from aggregator.api.answer_freshness import answer_freshness
from aggregator.runtime import Runtime
from connectors.gtfs.timetable import Timetable
from connectors.gtfs.views import WHEELCHAIR, line_summary

from .connector import RealtimeData
from .merge import RealtimeDeparture
from .model import AlertRealtime, VehicleRealtime

#: Source types that add alerts (only) to a feed's realtime state.
ALERT_SOURCE_TYPES = frozenset({"mapped_alerts"})


@dataclass(frozen=True)
class LiveRealtime:
    """The realtime state usable with one feed's current timetable."""

    source_id: str
    data: RealtimeData
    #: Alert-only sources merged into ``data.state`` (``mapped_alerts``).
    alert_sources: tuple[str, ...] = ()
    #: No GTFS-RT feed at all: alerts only, the boards' times are the schedule's.
    alerts_only: bool = False

    @property
    def source_ids(self) -> list[str]:
        return [self.source_id, *self.alert_sources]


def realtime_for(runtime: Runtime, feed: str, timetable: Timetable) -> LiveRealtime | None:
    """The gtfs_rt source merged into ``feed``, when its state matches this timetable, with
    the alerts of the feed's ``mapped_alerts`` sources added.

    Right after a timetable change the state still points into the old one; boards then
    show the schedule until the next realtime poll re-resolves (seconds later).
    """
    base: LiveRealtime | None = None
    extra: list[tuple[str, RealtimeData]] = []
    for source_id, snapshot in runtime.live.snapshots().items():
        if snapshot.source_type != "gtfs_rt" and snapshot.source_type not in ALERT_SOURCE_TYPES:
            continue
        data: RealtimeData = snapshot.data
        if data.feed != feed or data.timetable is not timetable:
            continue
        if snapshot.source_type == "gtfs_rt":
            base = base or LiveRealtime(source_id, data)
        else:
            extra.append((source_id, data))
    if not extra:
        return base
    if base is None:  # alerts without any GTFS-RT feed: the first alert source is the base
        (first_id, first), extra = extra[0], extra[1:]
        base = LiveRealtime(first_id, first, alerts_only=True)
        if not extra:
            return base
    parts = [part for _, data in extra for part in data.state.parts.values()]
    state = base.data.state.with_alert_parts(parts)
    return LiveRealtime(
        base.source_id,
        replace(base.data, state=state),
        (*base.alert_sources, *(source_id for source_id, _ in extra)),
        base.alerts_only,
    )


@dataclass(frozen=True)
class UsableRealtime:
    """The realtime an answer may show for one feed, and what ``meta.realtime`` says of it."""

    live: LiveRealtime | None
    #: ``{available, stale, source?, stale_reason?}``.
    meta: dict[str, Any]


def usable_realtime(
    request: web.Request, runtime: Runtime, feed: str, timetable: Timetable
) -> UsableRealtime:
    """The one place that decides whether predictions are shown as realtime.

    A realtime source the answer judges stale (its polls stopped, or its content is older
    than ``max_age``: :mod:`aggregator.api.answer_freshness`) is not merged: boards and trips
    fall back to the schedule (``realtime: false``, no delays) and say so, as GTFS-realtime's
    best practices ask, instead of showing an old prediction as live. ``meta.realtime`` and
    ``meta.sources`` then both say stale, from the same judgement.
    """
    live = realtime_for(runtime, feed, timetable)
    if live is None:
        return UsableRealtime(None, {"available": False, "stale": None})
    fresh = answer_freshness(request, runtime).of(live.source_id)
    if fresh is not None and fresh["stale"]:
        meta = {
            "available": True,
            "source": live.source_id,
            "stale": True,
            "stale_reason": fresh.get("stale_reason"),
        }
        return UsableRealtime(None, meta)
    # A network whose only realtime is mapped alerts has no predictions: not "available".
    available = not live.alerts_only
    return UsableRealtime(live, {"available": available, "source": live.source_id, "stale": False})


def realtime_sources(runtime: Runtime, feed: str) -> list[str]:
    """Configured gtfs_rt and alert sources of ``feed`` (for meta freshness, loaded or not)."""
    return [
        source.id
        for source in runtime.config.connectors
        if (source.type == "gtfs_rt" or source.type in ALERT_SOURCE_TYPES)
        and getattr(source, "feed", None) == feed
        and source.enabled
    ]


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def realtime_departure_json(
    feed: str, tt: Timetable, departure: RealtimeDeparture
) -> dict[str, Any]:
    static = departure.static
    route = departure.route_index
    frequency = static.frequency if static is not None else None
    return {
        "stop": {"id": f"{feed}:{departure.stop_id}", "name": tt.stop_names[departure.stop_index]},
        "line": line_summary(feed, tt, route) if route is not None else None,
        "trip_id": f"{feed}:{departure.trip_id}",
        "headsign": departure.headsign,
        "direction_id": departure.direction_id,
        "service_date": departure.service_date.isoformat(),
        "scheduled_time": _time(departure.scheduled),
        "expected_time": _time(departure.expected),
        "delay_s": departure.delay_s,
        "realtime": departure.realtime,
        "status": departure.status,
        "uncertainty_s": departure.uncertainty_s,
        "vehicle_id": namespaced(feed, departure.vehicle_id),
        "alert_ids": [f"{feed}:{alert_id}" for alert_id in departure.alert_ids],
        "timezone": static.timezone if static is not None else None,
        "platform": static.platform_code if static is not None else None,
        "wheelchair_accessible": (
            WHEELCHAIR.get(static.wheelchair_accessible) if static is not None else None
        ),
        "frequency": (
            {"headway_s": frequency.headway_s, "exact_times": frequency.exact_times}
            if frequency is not None
            else None
        ),
    }


def _posix(value: int | None, zone: dt.tzinfo) -> str | None:
    return (
        dt.datetime.fromtimestamp(value, zone).isoformat(timespec="seconds")
        if value is not None
        else None
    )


def alert_json(
    feed: str, tt: Timetable, alert: AlertRealtime, languages: Sequence[str]
) -> dict[str, Any]:
    zone = tt.zones[0] if tt.zones else dt.UTC
    lines, stops, trips = {}, {}, {}
    for entity in alert.informed:
        if entity.route_index is not None:
            lines[entity.route_index] = line_summary(feed, tt, entity.route_index)
        if entity.stop_index is not None:
            stops[entity.stop_index] = {
                "id": f"{feed}:{tt.stop_ids[entity.stop_index]}",
                "name": tt.stop_names[entity.stop_index],
            }
        if entity.trip_index is not None:
            trips[entity.trip_index] = {
                "id": f"{feed}:{tt.trip_ids[entity.trip_index]}",
                "headsign": tt.trip_headsigns[entity.trip_index] or None,
            }
    texts, text_languages = {}, {}
    for name, value in (
        ("header", alert.header),
        ("description", alert.description),
        ("url", alert.url),
    ):
        picked = value.pick(languages)
        texts[name] = picked[0] if picked is not None else None
        if picked is not None:
            text_languages[name] = picked[1]
    return {
        "id": f"{feed}:{alert.alert_id}",
        **texts,
        # The language of each text as the feed tags it: a French-only alert asked in
        # English is answered in French, and says so (as an event's text_languages).
        "text_languages": text_languages,
        "cause": alert.cause,
        "effect": alert.effect,
        "severity": alert.severity,
        "active_periods": [
            {"start": _posix(start, zone), "end": _posix(end, zone)}
            for start, end in alert.active_periods
        ],
        "lines": list(lines.values()),
        "stops": list(stops.values()),
        "trips": list(trips.values()),
        "agencies": sorted({e.agency_id for e in alert.informed if e.agency_id}),
    }


def namespaced(feed: str, native: str | None) -> str | None:
    """``feed:native``, the house spelling of every id an answer hands out; None stays None."""
    return f"{feed}:{native}" if native else None


def vehicle_json(feed: str, tt: Timetable, vehicle: VehicleRealtime) -> dict[str, Any]:
    zone = tt.zones[0] if tt.zones else dt.UTC
    return {
        "id": f"{feed}:{vehicle.key}",
        "label": vehicle.label,
        "line": (
            line_summary(feed, tt, vehicle.route_index) if vehicle.route_index is not None else None
        ),
        "trip_id": f"{feed}:{vehicle.trip_id}" if vehicle.trip_id else None,
        "service_date": vehicle.service_date.isoformat() if vehicle.service_date else None,
        "direction_id": vehicle.direction_id,
        "lat": vehicle.lat,
        "lon": vehicle.lon,
        "bearing": vehicle.bearing,
        "speed_m_s": vehicle.speed,
        "status": vehicle.current_status,
        "stop_id": f"{feed}:{vehicle.stop_id}" if vehicle.stop_id else None,
        "occupancy": vehicle.occupancy,
        "occupancy_percentage": vehicle.occupancy_percentage,
        "timestamp": _posix(vehicle.timestamp, zone),
    }


def trip_vehicle_json(feed: str, tt: Timetable, vehicle: VehicleRealtime) -> dict[str, Any]:
    """The position of the vehicle serving a trip, as the trip detail embeds it."""
    zone = tt.zones[0] if tt.zones else dt.UTC
    return {
        "id": f"{feed}:{vehicle.key}",
        "label": vehicle.label,
        "lat": vehicle.lat,
        "lon": vehicle.lon,
        "bearing": vehicle.bearing,
        "speed_m_s": vehicle.speed,
        "timestamp": _posix(vehicle.timestamp, zone),
        "current_stop_sequence": vehicle.current_stop_sequence,
        "stop_id": namespaced(feed, vehicle.stop_id),
        "status": vehicle.current_status,
    }

"""Realtime as phones see it: finding a feed's realtime state, and the JSON of merged
departures, alerts and vehicles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aggregator.runtime import Runtime
from connectors.gtfs.timetable import Timetable
from connectors.gtfs.views import WHEELCHAIR, line_summary

from .connector import RealtimeData
from .merge import RealtimeDeparture
from .model import AlertRealtime, VehicleRealtime


@dataclass(frozen=True)
class LiveRealtime:
    """The realtime state usable with one feed's current timetable."""

    source_id: str
    data: RealtimeData


def realtime_for(runtime: Runtime, feed: str, timetable: Timetable) -> LiveRealtime | None:
    """The gtfs_rt source merged into ``feed``, when its state matches this timetable.

    Right after a timetable change the state still points into the old one; boards then
    show the schedule until the next realtime poll re-resolves (seconds later).
    """
    for source_id, snapshot in runtime.live.snapshots().items():
        if snapshot.source_type != "gtfs_rt":
            continue
        data: RealtimeData = snapshot.data
        if data.feed == feed and data.timetable is timetable:
            return LiveRealtime(source_id, data)
    return None


def realtime_sources(runtime: Runtime, feed: str) -> list[str]:
    """Configured gtfs_rt sources of ``feed`` (for meta freshness, loaded or not)."""
    return [
        source.id
        for source in runtime.config.connectors
        if source.type == "gtfs_rt" and getattr(source, "feed", None) == feed and source.enabled
    ]


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
    return dt.datetime.fromtimestamp(value, zone).isoformat() if value is not None else None


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

"""VehiclePosition entities → :class:`VehicleRealtime`, trips resolved where possible.

Vehicle feeds rarely carry start_date (OTP#4058 rejected them for that); the service day is
inferred from the position's timestamp like for trip updates. A vehicle with a route and no
trip (USF Bull Runner) is kept: the map still shows it on its line.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import numpy as np
from google.transit import gtfs_realtime_pb2 as pb

from .decode import posix
from .matching import MatchError, parse_start_date, parse_start_time, resolve_run
from .model import VehicleRealtime
from .trips import BadEntity

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

    from .counters import FeedCounters

_VP = pb.VehiclePosition
_STATUS = {v: k.lower() for k, v in _VP.VehicleStopStatus.items()}
_OCCUPANCY = {v: k.lower() for k, v in _VP.OccupancyStatus.items()}
#: What a vehicle's status and occupancy are spelled in (GTFS-RT's names, lowercase).
STOP_STATUSES, OCCUPANCIES = tuple(_STATUS.values()), tuple(_OCCUPANCY.values())


def _finite(value: float) -> float | None:
    # Positions are float32 on the wire: 50.64 arrives as 50.63999938964844. The shortest
    # decimal that round-trips the float32 is what the producer wrote, so publish that.
    return float(str(np.float32(value))) if math.isfinite(value) else None


def build_vehicle(
    tt: Timetable,
    entity_id: str,
    vp: pb.VehiclePosition,
    header_ts: int | None,
    source: str,
    counters: FeedCounters,
) -> VehicleRealtime:
    """Resolve one VehiclePosition; raises :class:`BadEntity` when it says nothing usable."""
    ts = posix(vp.timestamp) if vp.HasField("timestamp") else None
    ts = ts or header_ts
    lat = lon = bearing = speed = None
    if vp.HasField("position"):
        p = vp.position
        lat, lon = _finite(p.latitude), _finite(p.longitude)
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise BadEntity(f"position out of range ({lat}, {lon})")
        if lat == 0 and lon == 0:
            # "Null island": a producer's default, not a place a bus can be.
            lat = lon = None
        bearing = _finite(p.bearing) if p.HasField("bearing") else None
        speed = _finite(p.speed) if p.HasField("speed") else None
    td = vp.trip if vp.HasField("trip") else None
    trip_id = td.trip_id if td is not None and td.trip_id else None
    route_id = td.route_id if td is not None and td.route_id else None
    direction = td.direction_id if td is not None and td.HasField("direction_id") else None
    vehicle_id = vp.vehicle.id or None
    if vehicle_id is None and trip_id is None and lat is None:
        raise BadEntity("vehicle without id, trip or position")
    run = trip = ordinal = None
    if trip_id is not None and td is not None:
        trip = tt.trip_index.get(trip_id)
        if trip is not None:
            try:
                match = resolve_run(
                    tt, trip, parse_start_date(td.start_date), parse_start_time(td.start_time), ts
                )
                run, ordinal = match.run, match.ordinal
            except (MatchError, ValueError):
                # Still the right trip; only the day/run is unknown. Keep what we know.
                pass
            route = int(tt.trip_route[trip])
            route_id = route_id or tt.route_ids[route]
            if direction is None and tt.trip_direction[trip] >= 0:
                direction = int(tt.trip_direction[trip])
    stop_id = vp.stop_id or None
    counters.vehicles += 1
    if run is not None:
        counters.vehicles_with_trip += 1
    return VehicleRealtime(
        entity_id=entity_id,
        vehicle_id=vehicle_id,
        label=vp.vehicle.label or None,
        license_plate=vp.vehicle.license_plate or None,
        trip_id=trip_id,
        run=run,
        trip_index=trip,
        service_date=dt.date.fromordinal(ordinal) if ordinal is not None else None,
        route_id=route_id,
        route_index=tt.route_index.get(route_id) if route_id else None,
        direction_id=direction,
        lat=lat,
        lon=lon,
        bearing=bearing,
        speed=speed,
        current_status=_STATUS.get(vp.current_status) if vp.HasField("current_status") else None,
        stop_id=stop_id,
        stop_index=tt.stop_index.get(stop_id) if stop_id else None,
        current_stop_sequence=(
            vp.current_stop_sequence if vp.HasField("current_stop_sequence") else None
        ),
        occupancy=_OCCUPANCY.get(vp.occupancy_status) if vp.HasField("occupancy_status") else None,
        occupancy_percentage=(
            vp.occupancy_percentage if vp.HasField("occupancy_percentage") else None
        ),
        timestamp=ts,
        source=source,
    )

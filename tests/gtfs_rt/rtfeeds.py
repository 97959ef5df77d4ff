"""A small static feed and GTFS-RT FeedMessages built in code, for the realtime rule tests.

The static feed (Europe/Paris, service every day of 2026, route R):

- ``T1``   A 08:00 → B 08:10 → C 08:20 → D 08:30
- ``T2``   A 08:30 → B 08:40 → C 08:50 → D 09:00
- ``LOOP`` A 09:00 → B 09:10 → A 09:20 → C 09:30 (stop A visited twice, sequences 1 and 3)
- ``NIGHT`` A 24:50 → B 25:00 → C 25:10 (after midnight: leaves at 00:50 the next day)
- ``F``    frequency trip A → B → C (+0, +7, +12 min), every 10 min 10:00–11:00, exact times
- ``Q``    on route Q, A 08:05 → B 08:15 (another line at the same stops)
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from google.transit import gtfs_realtime_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gtfs"))
from feeds import simple_feed

from connectors.gtfs import Timetable, compile_feed

PARIS = ZoneInfo("Europe/Paris")
DAY = dt.date(2026, 6, 10)
TD = pb.TripDescriptor
STU = pb.TripUpdate.StopTimeUpdate


def static_timetable() -> Timetable:
    """The feed described in the module docstring, compiled."""
    feed = (
        simple_feed()
        .stop("D", "Delta", 50.66, 3.10)
        .route("Q")
        .trip("T1", [("A", "08:00:00"), ("B", "08:10:00"), ("C", "08:20:00"), ("D", "08:30:00")])
        .trip("T2", [("A", "08:30:00"), ("B", "08:40:00"), ("C", "08:50:00"), ("D", "09:00:00")])
        .trip("LOOP", [("A", "09:00:00"), ("B", "09:10:00"), ("A", "09:20:00"), ("C", "09:30:00")])
        .trip("NIGHT", [("A", "24:50:00"), ("B", "25:00:00"), ("C", "25:10:00")])
        .trip("F", [("A", "00:00:00"), ("B", "00:07:00"), ("C", "00:12:00")])
        .frequency("F", "10:00:00", "11:00:00", 600, 1)
        .trip("Q", [("A", "08:05:00"), ("B", "08:15:00")], route="Q")
    )
    return compile_feed(feed.to_zip())


def local(h: int, m: int, s: int = 0, day: dt.date = DAY) -> dt.datetime:
    """An aware Paris datetime on ``day`` (default the test day)."""
    return dt.datetime(day.year, day.month, day.day, h, m, s, tzinfo=PARIS)


def ts(h: int, m: int, s: int = 0, day: dt.date = DAY) -> int:
    """POSIX seconds of a Paris wall-clock time."""
    return int(local(h, m, s, day).timestamp())


def stu(
    seq: int | None = None,
    stop: str | None = None,
    *,
    arr: int | None = None,
    dep: int | None = None,
    arr_delay: int | None = None,
    dep_delay: int | None = None,
    uncertainty: int | None = None,
    rel: int | None = None,
) -> STU:
    """A StopTimeUpdate; only the given fields are set."""
    u = STU()
    if seq is not None:
        u.stop_sequence = seq
    if stop is not None:
        u.stop_id = stop
    for name, time, delay in (("arrival", arr, arr_delay), ("departure", dep, dep_delay)):
        if time is None and delay is None:
            continue
        ev = getattr(u, name)
        if time is not None:
            ev.time = time
        if delay is not None:
            ev.delay = delay
        if uncertainty is not None:
            ev.uncertainty = uncertainty
    if rel is not None:
        u.schedule_relationship = rel
    return u


def trip_update(
    trip_id: str,
    *updates: STU,
    entity_id: str | None = None,
    start_date: str | None = "20260610",
    start_time: str | None = None,
    rel: int | None = None,
    route_id: str | None = None,
    vehicle_id: str | None = None,
    delay: int | None = None,
    properties: dict[str, str] | None = None,
) -> pb.FeedEntity:
    """A FeedEntity holding one TripUpdate."""
    e = pb.FeedEntity(id=entity_id or trip_id)
    tu = e.trip_update
    tu.trip.trip_id = trip_id
    if start_date:
        tu.trip.start_date = start_date
    if start_time:
        tu.trip.start_time = start_time
    if rel is not None:
        tu.trip.schedule_relationship = rel
    if route_id:
        tu.trip.route_id = route_id
    if vehicle_id:
        tu.vehicle.id = vehicle_id
    if delay is not None:
        tu.delay = delay
    for key, value in (properties or {}).items():
        setattr(tu.trip_properties, key, value)
    tu.stop_time_update.extend(updates)
    return e


def vehicle(
    entity_id: str,
    *,
    trip_id: str | None = None,
    route_id: str | None = None,
    start_date: str | None = None,
    lat: float = 50.64,
    lon: float = 3.08,
    timestamp: int | None = None,
    **fields: object,
) -> pb.FeedEntity:
    """A FeedEntity holding one VehiclePosition (extra ``fields`` set on it directly)."""
    e = pb.FeedEntity(id=entity_id)
    v = e.vehicle
    v.vehicle.id = entity_id
    if trip_id:
        v.trip.trip_id = trip_id
    if route_id:
        v.trip.route_id = route_id
    if start_date:
        v.trip.start_date = start_date
    v.position.latitude, v.position.longitude = lat, lon
    if timestamp is not None:
        v.timestamp = timestamp
    for key, value in fields.items():
        setattr(v, key, value)
    return e


def alert(
    entity_id: str,
    *,
    header: list[tuple[str, str]] = (),  # type: ignore[assignment]
    route_id: str | None = None,
    stop_id: str | None = None,
    trip_id: str | None = None,
    periods: list[tuple[int | None, int | None]] = (),  # type: ignore[assignment]
) -> pb.FeedEntity:
    """A FeedEntity holding one Alert; ``header`` is (language, text) pairs."""
    e = pb.FeedEntity(id=entity_id)
    a = e.alert
    for lang, text in header:
        t = a.header_text.translation.add(text=text)
        if lang:
            t.language = lang
    sel = a.informed_entity.add()
    if route_id:
        sel.route_id = route_id
    if stop_id:
        sel.stop_id = stop_id
    if trip_id:
        sel.trip.trip_id = trip_id
    for start, end in periods:
        p = a.active_period.add()
        if start is not None:
            p.start = start
        if end is not None:
            p.end = end
    a.cause = pb.Alert.CONSTRUCTION
    a.effect = pb.Alert.DETOUR
    return e


def message(
    *entities: pb.FeedEntity, timestamp: int | None = None, differential: bool = False
) -> pb.FeedMessage:
    """A FeedMessage (version 2.0) with the entities, default timestamp 08:00 on DAY."""
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = ts(8, 0) if timestamp is None else timestamp
    if differential:
        m.header.incrementality = pb.FeedHeader.DIFFERENTIAL
    m.entity.extend(entities)
    return m

"""Cancelled trips and skipped stops as notices, for the hour before they were due.

A producer often cancels a trip hours ahead; a rider following the line wants to hear of it
when it matters, not at the moment of the poll. So a trip the feed marks CANCELED becomes a
notice when its first scheduled departure is less than :data:`WINDOW_S` away (and until its
last scheduled arrival), whether or not the feed changed since: the notifier asks again at
the next instant one enters its window (:class:`~aggregator.notify.notice.TimedNotices`).

A stop the feed marks SKIPPED on a trip that runs is told the same way to the followers of
that stop (and of its station) only, in the hour before the trip was due there: the line
runs, so its followers are not told.

One cancellation is one notice: its key is the trip and its service day, not the poll nor the
update's content, so a feed that keeps repeating (or re-timestamping) the cancellation is
told once. Trips the feed DELETED are not announced: the producer removed them from what
riders should see.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.api.messages import MESSAGE_LANGUAGES
from aggregator.notify.notice import MAX_BODY, MAX_TITLE, DeepLink, Notice, TimedNotices, shorten

from .model import COL_STATUS, SKIPPED, BlockCalls

if TYPE_CHECKING:
    from connectors.gtfs.timetable import Timetable

    from .connector import RealtimeData
    from .model import TripRealtime

#: How long before its first departure a cancelled trip is announced.
WINDOW_S = 3600
#: What rides a line, by GTFS route_type (extended types by their hundreds), per language.
_VEHICLE = {
    0: {"fr": "tram", "en": "tram"},
    1: {"fr": "métro", "en": "metro"},
    2: {"fr": "train", "en": "train"},
    3: {"fr": "bus", "en": "bus"},
    4: {"fr": "ferry", "en": "ferry"},
    5: {"fr": "tram", "en": "cable tram"},
    6: {"fr": "cabine", "en": "gondola"},
    7: {"fr": "funiculaire", "en": "funicular"},
    11: {"fr": "trolleybus", "en": "trolleybus"},
    12: {"fr": "monorail", "en": "monorail"},
}
_EXTENDED = {1: 2, 2: 2, 4: 1, 7: 3, 8: 3, 9: 0, 10: 1, 11: 11, 12: 12, 13: 6, 14: 7}
_DEFAULT_VEHICLE = {"fr": "service", "en": "service"}


def cancellation_notices(data: RealtimeData, now: datetime) -> TimedNotices:
    """The cancelled trips and skipped stops whose window holds ``now``, and when the next
    one opens."""
    at = now.timestamp()
    notices: list[Notice] = []
    opening: list[float] = []
    tt = data.timetable
    for trip in data.state.trips.values():
        if trip.route_id is None:
            continue
        if trip.relationship == "cancelled":
            span = _span(trip)
            if span is None:
                continue
            first, last = span
            if at < first - WINDOW_S:
                opening.append(first - WINDOW_S)
            elif at <= last:
                notices.append(_notice(data.feed, tt, trip, first))
        elif trip.relationship == "scheduled" and _skips(trip):
            for call in trip.calls:
                when = call.scheduled_departure or call.scheduled_arrival
                if call.status != "skipped" or call.stop_index < 0 or when is None:
                    continue
                if at < when - WINDOW_S:
                    opening.append(when - WINDOW_S)
                elif at <= when:
                    notices.append(_skip_notice(data.feed, tt, trip, call.stop_index, when))
    return TimedNotices(notices, min(opening, default=None))


def _skips(trip: TripRealtime) -> bool:
    """Whether a call of the trip is SKIPPED, read from the call table's status column (a big
    feed has ~100,000 calls: building each call to look would cost more than the poll)."""
    calls = trip.calls
    if isinstance(calls, BlockCalls) and calls.block is not None:
        statuses = calls.block.table[calls.lo : calls.hi, COL_STATUS]
        return bool((statuses == SKIPPED).any())
    return any(call.status == "skipped" for call in calls)


def _span(trip: TripRealtime) -> tuple[int, int] | None:
    """(first scheduled departure, last scheduled arrival) of the trip, POSIX seconds."""
    times = [
        t
        for call in trip.calls
        for t in (call.scheduled_departure, call.scheduled_arrival)
        if t is not None
    ]
    return (min(times), max(times)) if times else None


def _vehicle(tt: Timetable, route: int) -> dict[str, str]:
    kind = int(tt.route_type[route])
    if kind >= 100:
        kind = _EXTENDED.get(kind // 100, -1)
    return _VEHICLE.get(kind, _DEFAULT_VEHICLE)


def _stops(tt: Timetable, trip: TripRealtime) -> list[str]:
    """The trip's stops and their stations (a station's followers hear of its platforms)."""
    stops: set[str] = set()
    for call in trip.calls:
        if call.stop_index < 0:
            continue
        stops.add(call.stop_id)
        parent = int(tt.stop_parent[call.stop_index])
        if parent >= 0:
            stops.add(tt.stop_ids[parent])
    return sorted(stops)


def _describe(tt: Timetable, trip: TripRealtime, first: int) -> dict[str, str]:
    """What a message says of a trip: its line, vehicle words, number, first departure
    (local time), origin and destination."""
    route = tt.route_index[trip.route_id] if trip.route_id is not None else -1
    zone = tt.zones[int(tt.run_zone[trip.run])] if trip.run is not None and tt.zones else None
    calls = [c for c in trip.calls if c.stop_index >= 0]
    vehicle = _vehicle(tt, route)
    return {
        "line": tt.route_short_names[route] or tt.route_long_names[route],
        "departure": datetime.fromtimestamp(first, zone).strftime("%H:%M"),
        "number": tt.trip_short_names[trip.trip_index] if trip.trip_index is not None else "",
        "origin": tt.stop_names[calls[0].stop_index] if calls else "",
        "destination": trip.headsign or (tt.stop_names[calls[-1].stop_index] if calls else ""),
        **{f"vehicle_{language}": vehicle[language] for language in MESSAGE_LANGUAGES},
    }


def _skip_notice(feed: str, tt: Timetable, trip: TripRealtime, stop: int, when: int) -> Notice:
    span = _span(trip)
    about = _describe(tt, trip, span[0] if span else when)
    name = tt.stop_names[stop]
    texts: dict[str, tuple[str, str]] = {}
    for language in MESSAGE_LANGUAGES:
        what = f"{about[f'vehicle_{language}']} {about['number']}".strip()
        route = f"{about['origin']} {about['departure']} → {about['destination']}"
        if language == "fr":
            title = f"{about['line']} : {what} de {about['departure']} ne s'arrête pas à {name}"
            body = f"{route} : pas d'arrêt à {name}."
        else:
            title = f"{about['line']}: {what} at {about['departure']} does not stop at {name}"
            body = f"{route}: no stop at {name}."
        texts[language] = (shorten(title, MAX_TITLE), shorten(body, MAX_BODY))
    stops = {tt.stop_ids[stop]}
    parent = int(tt.stop_parent[stop])
    if parent >= 0:
        stops.add(tt.stop_ids[parent])
    key = f"skipped:{feed}:{trip.trip_id}:{trip.service_date.isoformat()}:{tt.stop_ids[stop]}"
    return Notice(
        key=key,
        kind="cancellation",
        # The stop's followers only: the line runs, a stop of it does not.
        topics=tuple(f"stop:{feed}:{s}" for s in sorted(stops)),
        collapse=key,
        urgency="high",
        texts=texts,
        links=(_trip_link(feed, trip), DeepLink("stop", f"{feed}:{tt.stop_ids[stop]}")),
        subject=f"{feed}:{trip.trip_id}",
    )


def _notice(feed: str, tt: Timetable, trip: TripRealtime, first: int) -> Notice:
    about = _describe(tt, trip, first)
    line, departure, number = about["line"], about["departure"], about["number"]
    origin, destination = about["origin"], about["destination"]
    texts: dict[str, tuple[str, str]] = {}
    for language in MESSAGE_LANGUAGES:
        what = f"{about[f'vehicle_{language}']} {number}".strip()
        if language == "fr":
            title = f"{line} : {what} de {departure} supprimé"
            body = f"{origin} {departure} → {destination} : ne circule pas aujourd'hui."
        else:
            title = f"{line}: {what} at {departure} cancelled"
            body = f"{origin} {departure} → {destination}: not running today."
        texts[language] = (shorten(title, MAX_TITLE), shorten(body, MAX_BODY))
    day = trip.service_date.isoformat()
    subject = f"{feed}:{trip.trip_id}"
    return Notice(
        key=f"cancellation:{feed}:{trip.trip_id}:{day}",
        kind="cancellation",
        topics=tuple(
            [f"line:{feed}:{trip.route_id}"] + [f"stop:{feed}:{s}" for s in _stops(tt, trip)]
        ),
        collapse=f"cancellation:{feed}:{trip.trip_id}:{day}",
        urgency="high",
        texts=texts,
        links=(_trip_link(feed, trip), DeepLink("line", f"{feed}:{trip.route_id}")),
        subject=subject,
    )


def _trip_link(feed: str, trip: TripRealtime) -> DeepLink:
    return DeepLink("trip", f"{feed}:{trip.trip_id}", trip.service_date.isoformat())

"""Alert entities → :class:`AlertRealtime`, and the queries boards and lines need.

Translations: an empty language tag means "the feed's language" (Bibus Brest sends only
untagged French), so the caller passes the default language (agency_lang, else config).
An informed entity's set fields narrow each other: route R + stop S is "R at S", not
"all of R and all of S" (GTFS-RT EntitySelector).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from google.transit import gtfs_realtime_pb2 as pb

from .decode import posix
from .model import AlertRealtime, InformedEntity, TranslatedText
from .trips import BadEntity

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

    from .counters import FeedCounters

_CAUSE = {v: k.lower() for k, v in pb.Alert.Cause.items()}
_EFFECT = {v: k.lower() for k, v in pb.Alert.Effect.items()}
_SEVERITY = {v: k.lower() for k, v in pb.Alert.SeverityLevel.items()}
#: The vocabularies an alert's cause, effect and severity are spelled in (GTFS-RT's, lowercase).
CAUSES, EFFECTS, SEVERITIES = (tuple(names.values()) for names in (_CAUSE, _EFFECT, _SEVERITY))


def translated(ts: pb.TranslatedString, default_language: str) -> TranslatedText:
    """Language → text pairs, untagged ones under ``default_language``, empty texts dropped."""
    pairs: list[tuple[str, str]] = []
    for t in ts.translation:
        if t.text:
            pairs.append((t.language or default_language, t.text))
    return TranslatedText(tuple(pairs))


def _informed(tt: Timetable, sel: pb.EntitySelector) -> InformedEntity | None:
    trip_id = sel.trip.trip_id if sel.HasField("trip") and sel.trip.trip_id else None
    route_id = sel.route_id or (sel.trip.route_id if sel.HasField("trip") else "") or None
    entity = InformedEntity(
        agency_id=sel.agency_id or None,
        route_id=route_id,
        route_type=sel.route_type if sel.HasField("route_type") else None,
        direction_id=(
            sel.direction_id
            if sel.HasField("direction_id")
            else (
                sel.trip.direction_id
                if sel.HasField("trip") and sel.trip.HasField("direction_id")
                else None
            )
        ),
        trip_id=trip_id,
        stop_id=sel.stop_id or None,
        agency_index=tt.agency_index.get(sel.agency_id) if sel.agency_id else None,
        route_index=tt.route_index.get(route_id) if route_id else None,
        trip_index=tt.trip_index.get(trip_id) if trip_id else None,
        stop_index=tt.stop_index.get(sel.stop_id) if sel.stop_id else None,
    )
    if entity == InformedEntity():
        return None  # an empty selector (the spec requires at least one field)
    return entity


def build_alert(
    tt: Timetable,
    entity_id: str,
    alert: pb.Alert,
    header_ts: int | None,
    source: str,
    default_language: str,
    counters: FeedCounters,
) -> AlertRealtime:
    """One Alert; raises :class:`BadEntity` when it has neither text nor target."""
    informed = tuple(e for e in (_informed(tt, s) for s in alert.informed_entity) if e)
    header = translated(alert.header_text, default_language)
    if not informed and not header.texts:
        raise BadEntity("alert with no informed entity and no header text")
    periods = tuple(
        (
            posix(p.start) if p.HasField("start") else None,
            posix(p.end) if p.HasField("end") else None,
        )
        for p in alert.active_period
    )
    counters.alerts += 1
    return AlertRealtime(
        alert_id=entity_id,
        header=header,
        description=translated(alert.description_text, default_language),
        url=translated(alert.url, default_language),
        cause=_CAUSE.get(alert.cause) if alert.HasField("cause") else None,
        effect=_EFFECT.get(alert.effect) if alert.HasField("effect") else None,
        severity=_SEVERITY.get(alert.severity_level) if alert.HasField("severity_level") else None,
        active_periods=periods,
        informed=informed,
        timestamp=header_ts,
        source=source,
    )


def entity_matches(
    e: InformedEntity,
    *,
    agency_id: str | None = None,
    route_id: str | None = None,
    route_type: int | None = None,
    direction_id: int | None = None,
    trip_id: str | None = None,
    stop_ids: Iterable[str] = (),
) -> bool:
    """Whether every field the selector sets matches the given call (unset ones match all).

    A selector naming a field the caller did not give fails: asking "alerts of route R" does
    not return an alert about one trip of route S.
    """
    stops = set(stop_ids)
    checks = (
        (e.agency_id, agency_id),
        (e.route_id, route_id),
        (e.route_type, route_type),
        (e.direction_id, direction_id),
        (e.trip_id, trip_id),
    )
    for wanted, given in checks:
        if wanted is not None and wanted != given:
            return False
    return e.stop_id is None or e.stop_id in stops


def filter_alerts(
    alerts: Iterable[AlertRealtime],
    *,
    active_at: float | None = None,
    route_id: str | None = None,
    stop_id: str | None = None,
    trip_id: str | None = None,
) -> list[AlertRealtime]:
    """Alerts active at ``active_at`` (if given) touching the route / stop / trip (any given).

    Looser than :func:`entity_matches` on purpose: a line page lists every alert that names
    the line, even one limited to a stop of it; a stop page every alert naming the stop.
    """
    out = []
    for a in alerts:
        if active_at is not None and not a.active_at(active_at):
            continue
        if route_id is not None and not any(e.route_id == route_id for e in a.informed):
            continue
        if stop_id is not None and not any(e.stop_id == stop_id for e in a.informed):
            continue
        if trip_id is not None and not any(e.trip_id == trip_id for e in a.informed):
            continue
        out.append(a)
    return out

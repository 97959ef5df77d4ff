"""Alerts (translations, active periods, informed entities) and vehicle positions."""

from __future__ import annotations

from google.transit import gtfs_realtime_pb2 as pb
from rtfeeds import DAY, alert, message, ts, vehicle

from connectors.gtfs_rt import (
    InformedEntity,
    TranslatedText,
    entity_matches,
    state_from_messages,
)


def test_translations_with_and_without_language(tt):
    """Tagged texts keep their tag; an untagged one takes the feed's default language."""
    m = message(alert("a1", header=[("", "Travaux rue Nationale"), ("en", "Roadworks")]))
    state = state_from_messages(tt, [m], default_language="fr")
    header = state.alerts["a1"].header
    assert header.as_dict() == {"fr": "Travaux rue Nationale", "en": "Roadworks"}
    assert header.get("en-GB") == "Roadworks"
    assert header.get(["de", "fr-FR"]) == "Travaux rue Nationale"
    assert header.get("de") == "Travaux rue Nationale"  # first text when nothing matches


def test_untagged_translation_defaults_to_the_agency_language(tt):
    """With no default given and no agency_lang, the tag stays empty but the text is served."""
    state = state_from_messages(tt, [message(alert("a1", header=[("", "Travaux")]))])
    assert state.alerts["a1"].header.get("fr") == "Travaux"


def test_active_periods(tt):
    """Start inclusive, end exclusive, open ends allowed, several periods, none = always."""
    m = message(
        alert("windowed", header=[("fr", "x")], route_id="R", periods=[(ts(8, 0), ts(9, 0))]),
        alert("open", header=[("fr", "x")], route_id="R", periods=[(ts(12, 0), None)]),
        alert(
            "two",
            header=[("fr", "x")],
            route_id="R",
            periods=[(ts(7, 0), ts(7, 30)), (ts(10, 0), ts(11, 0))],
        ),
        alert("always", header=[("fr", "x")], route_id="R"),
    )
    alerts = state_from_messages(tt, [m]).alerts

    def active(when: int) -> list[str]:
        return [a for a, v in alerts.items() if v.active_at(when)]

    assert active(ts(8, 0)) == ["windowed", "always"]
    assert active(ts(9, 0)) == ["always"]
    assert active(ts(10, 30)) == ["two", "always"]
    assert active(ts(23, 0)) == ["open", "always"]


def test_alert_fields_and_resolved_entities(tt):
    """Cause, effect, severity, url and informed entities resolved to static indices."""
    e = alert("a1", header=[("fr", "Déviation")], route_id="R", stop_id="B")
    e.alert.severity_level = pb.Alert.WARNING
    e.alert.url.translation.add(text="https://example.org/a1")
    sel = e.alert.informed_entity.add()
    sel.trip.trip_id = "T1"
    sel = e.alert.informed_entity.add()
    sel.route_type = 3
    sel.direction_id = 1
    a = state_from_messages(tt, [message(e)], default_language="fr").alerts["a1"]
    assert (a.cause, a.effect, a.severity) == ("construction", "detour", "warning")
    assert a.url.get("fr") == "https://example.org/a1"
    route_at_stop, trip, mode = a.informed
    assert (route_at_stop.route_index, route_at_stop.stop_index) == (
        tt.route_index["R"],
        tt.stop_index["B"],
    )
    assert (trip.trip_id, trip.trip_index) == ("T1", tt.trip_index["T1"])
    assert (mode.route_type, mode.direction_id) == (3, 1)


def test_alert_queries_by_route_stop_trip(tt):
    """active_alerts filters by route, stop and trip among fresh, active alerts."""
    m = message(
        alert("route-R", header=[("fr", "x")], route_id="R"),
        alert("stop-B", header=[("fr", "x")], stop_id="B"),
        alert("trip-T1", header=[("fr", "x")], trip_id="T1"),
        alert("route-Q-later", header=[("fr", "x")], route_id="Q", periods=[(ts(9, 0), None)]),
    )
    state = state_from_messages(tt, [m])
    now = ts(8, 0)

    def ids(**kw: str) -> list[str]:
        return [a.alert_id for a in state.active_alerts(now, **kw)]

    assert ids(route_id="R") == ["route-R"]
    assert ids(stop_id="B") == ["stop-B"]
    assert ids(trip_id="T1") == ["trip-T1"]
    assert ids(route_id="Q") == []
    assert [a.alert_id for a in state.active_alerts(now, at=ts(9, 30), route_id="Q")] == [
        "route-Q-later"
    ]


def test_informed_entity_fields_narrow_each_other():
    """Route R at stop B matches a call of R at B, not R elsewhere nor Q at B."""
    e = InformedEntity(route_id="R", stop_id="B")
    assert entity_matches(e, route_id="R", stop_ids=["B"])
    assert not entity_matches(e, route_id="R", stop_ids=["A"])
    assert not entity_matches(e, route_id="Q", stop_ids=["B"])
    assert entity_matches(InformedEntity(agency_id="A"), agency_id="A", route_id="Q")


def test_alert_without_text_or_target_is_a_bad_entity(tt):
    """An empty alert is skipped and counted."""
    state = state_from_messages(tt, [message(pb.FeedEntity(id="empty", alert=pb.Alert()))])
    assert (state.counters.bad_entities, state.alerts) == (1, {})


def test_vehicle_fields_and_trip_resolution(tt):
    """A vehicle on T1 (no start_date) resolves to today's run; its fields are kept."""
    e = vehicle(
        "bus-7",
        trip_id="T1",
        timestamp=ts(8, 5),
        current_status=pb.VehiclePosition.STOPPED_AT,
        stop_id="B",
        occupancy_status=pb.VehiclePosition.FEW_SEATS_AVAILABLE,
    )
    e.vehicle.position.bearing = 90
    e.vehicle.position.speed = 8.5
    e.vehicle.vehicle.label = "Bus 7"
    state = state_from_messages(tt, [message(e)])
    v = state.vehicles["bus-7"]
    assert (v.trip_id, v.run, v.service_date, v.route_id) == (
        "T1",
        tt.runs_of_trip(tt.trip_index["T1"])[0],
        DAY,
        "R",
    )
    assert (v.lat, v.lon, v.bearing, v.speed) == (50.64, 3.08, 90, 8.5)
    assert (v.current_status, v.stop_id, v.occupancy, v.label) == (
        "stopped_at",
        "B",
        "few_seats_available",
        "Bus 7",
    )
    assert state.counters.vehicles_with_trip == 1


def test_vehicle_with_route_only_is_kept(tt):
    """A vehicle that names only its route stays on the map, without a trip."""
    state = state_from_messages(tt, [message(vehicle("shuttle", route_id="Q"))])
    v = state.vehicles["shuttle"]
    assert (v.route_id, v.route_index, v.trip_id, v.run) == ("Q", tt.route_index["Q"], None, None)


def test_vehicles_not_updated_recently_are_dropped(tt):
    """fresh_vehicles drops a vehicle whose own timestamp is older than the limit."""
    m = message(
        vehicle("recent", timestamp=ts(7, 59, 50)),
        vehicle("old", timestamp=ts(7, 50)),
        timestamp=ts(8, 0),
    )
    state = state_from_messages(tt, [m])
    assert [v.key for v in state.fresh_vehicles(ts(8, 0), max_age_s=120)] == ["recent"]
    assert state.fresh_vehicles(ts(8, 5)) == []  # the whole source is stale by then


def test_vehicle_with_impossible_position_is_skipped(tt):
    """Latitude 123 is a bad entity; the other vehicle is kept."""
    state = state_from_messages(tt, [message(vehicle("bad", lat=123.0), vehicle("good"))])
    assert list(state.vehicles) == ["good"]
    assert state.counters.bad_examples == ["bad: position out of range (123.0, 3.08)"]


def test_translated_text_without_texts():
    """An absent TranslatedString gives None in any language."""
    assert TranslatedText(()).get("fr") is None

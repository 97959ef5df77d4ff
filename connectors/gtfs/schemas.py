"""JSON schemas of the transit answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aggregator.api.communes import COMMUNE_FIELD
from aggregator.api.messages import EXPLANATIONS
from aggregator.api.schemas import array_of, enum, extend, nullable, obj, ref
from connectors.gtfs_rt.vehicles import STOP_STATUSES

from .modes import MODES
from .references import SCHEMA as REFERENCES
from .views import LOCATION_TYPES

DATE_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
INT_OR_NULL: dict[str, Any] = {"type": ["integer", "null"]}
COLOR: dict[str, Any] = {"type": ["string", "null"], "pattern": "^#[0-9A-F]{6}$"}
#: What include=references puts in place of a whole line or stop (connectors/gtfs/references.py).
LINE_ID = {
    "type": ["string", "null"],
    "description": "With include=references, instead of line: its key in references.lines.",
}
STOP_ID = {
    "type": "string",
    "description": "With include=references, instead of stop: its key in references.stops.",
}
BY_REFERENCE = " Absent with include=references (see line_id / stop_id)."

ALERT_IDS = array_of(
    {"type": "string"}, description="Ids of the alerts active now that name it (/v1/alerts)."
)

#: A departure's status: its delay against the source's on-time threshold, or what the
#: realtime feed says of it.
DEPARTURE_STATUSES = (
    "scheduled",
    "on_time",
    "delayed",
    "early",
    "cancelled",
    "skipped",
    "added",
    "no_data",
)
TRIP_STATUSES = ("scheduled", "on_time", "delayed", "early", "cancelled", "added")
CALL_STATUSES = ("scheduled", "on_time", "delayed", "early", "cancelled", "skipped", "no_data")
SCHEDULE_RELATIONSHIPS = ("scheduled", "cancelled", "deleted", "added", "duplicated")

LINE_SUMMARY = obj(
    {
        "id": {"type": "string"},
        "short_name": TEXT_OR_NULL,
        "long_name": TEXT_OR_NULL,
        "mode": ref("LineMode"),
        "color": COLOR,
        "text_color": COLOR,
    },
    ["id", "short_name", "long_name", "mode", "color", "text_color"],
    title="LineSummary",
)

AGENCY = obj(
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "url": TEXT_OR_NULL,
        "timezone": {"type": "string"},
    },
    ["id", "name", "url", "timezone"],
    title="Agency",
)

LINE = extend(
    LINE_SUMMARY,
    {"agency": ref("Agency"), "alert_ids": ALERT_IDS},
    ["agency", "alert_ids"],
    title="Line",
)

STOP = obj(
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "code": TEXT_OR_NULL,
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "location_type": ref("LocationType"),
        "parent_station": TEXT_OR_NULL,
        "platform_code": TEXT_OR_NULL,
        "wheelchair_boarding": {"type": ["boolean", "null"]},
        "lines": array_of(ref("LineSummary")),
        "line_ids": array_of(
            {"type": "string"},
            description="With include=references, instead of lines: keys in references.lines.",
        ),
        "alert_ids": ALERT_IDS,
        "distance_m": {"type": "number"},
        # In /v1/stops and /v1/stops/{id} (the stops of a line or a board leave it out).
        "commune": COMMUNE_FIELD,
    },
    ["id", "name", "lat", "lon", "location_type", "parent_station"],
    title="Stop",
)

STOP_DETAIL = extend(
    STOP,
    {"platforms": array_of(ref("Stop"))},
    ["lines", "alert_ids", "platforms"],
    title="StopDetail",
    description="One stop with its platforms (a station's children).",
)

DIRECTION = obj(
    {
        "direction_id": INT_OR_NULL,
        "headsign": TEXT_OR_NULL,
        "trips": {"type": "integer"},
        "stops": array_of(ref("Stop")),
    },
    ["direction_id", "headsign", "trips", "stops"],
    title="LineDirection",
)

LINE_DETAIL = extend(
    LINE,
    {"directions": array_of(ref("LineDirection"))},
    ["directions"],
    title="LineDetail",
    description="One line with its directions, each with its ordered stops.",
)

_BBOX = array_of({"type": "number"}, minItems=4, maxItems=4)

LINE_GEOMETRY = obj(
    {
        "type": {"type": "string", "const": "FeatureCollection"},
        "bbox": _BBOX,
        "features": array_of(
            obj(
                {
                    "type": {"type": "string", "const": "Feature"},
                    "bbox": _BBOX,
                    "geometry": nullable(
                        obj(
                            {
                                "type": {"type": "string", "const": "LineString"},
                                "coordinates": array_of(
                                    array_of({"type": "number"}, minItems=2, maxItems=2),
                                    minItems=2,
                                ),
                            },
                            ["type", "coordinates"],
                        )
                    ),
                    "properties": obj(
                        {
                            "line_id": {"type": "string"},
                            "direction_id": INT_OR_NULL,
                            "headsigns": array_of({"type": "string"}),
                            "shape_id": TEXT_OR_NULL,
                            "trips": {"type": "integer"},
                            "geometry_source": enum(["shapes.txt", "stops"]),
                        },
                        [
                            "line_id",
                            "direction_id",
                            "headsigns",
                            "shape_id",
                            "trips",
                            "geometry_source",
                        ],
                    ),
                },
                ["type", "geometry", "properties"],
                title="LineGeometryFeature",
            )
        ),
        "meta": ref("Meta"),
    },
    ["type", "features", "meta"],
    title="LineGeometry",
    description="RFC 7946 FeatureCollection: per direction, one LineString per shape its "
    "trips use ([lon, lat]); trips without a shape are drawn through their stops.",
)

DEPARTURE = obj(
    {
        "stop": obj(
            {"id": {"type": "string"}, "name": {"type": "string"}},
            ["id", "name"],
            title="DepartureStop",
            description="The platform (or stop) the vehicle leaves from." + BY_REFERENCE,
        ),
        "stop_id": STOP_ID,
        "line": nullable(ref("LineSummary")),
        "line_id": LINE_ID,
        "trip_id": {"type": "string"},
        "headsign": TEXT_OR_NULL,
        "direction_id": INT_OR_NULL,
        "service_date": {"type": "string", "format": "date"},
        "scheduled_time": TIME_OR_NULL,
        "expected_time": TIME_OR_NULL,
        "delay_s": INT_OR_NULL,
        "realtime": {"type": "boolean"},
        "uncertainty_s": INT_OR_NULL,
        "vehicle_id": {
            "type": ["string", "null"],
            "description": "'feed:vehicle_id', the id /v1/vehicles gives the vehicle.",
        },
        "alert_ids": array_of({"type": "string"}),
        "status": ref("DepartureStatus"),
        "timezone": {"type": "string"},
        "platform": TEXT_OR_NULL,
        "wheelchair_accessible": {"type": ["boolean", "null"]},
        "frequency": nullable(
            obj(
                {"headway_s": {"type": "integer"}, "exact_times": {"type": "boolean"}},
                ["headway_s", "exact_times"],
                title="Frequency",
            )
        ),
    },
    ["trip_id", "service_date", "scheduled_time", "status"],
    title="Departure",
    description="stop and line are given whole, or by id with include=references.",
)

EXPLANATION = obj(
    {
        "code": enum(EXPLANATIONS),
        "message": {
            "type": "string",
            "description": "For people, in the negotiated language (fr or en; en otherwise).",
        },
    },
    ["code", "message"],
    title="Explanation",
    description="Why a board is empty: a stable code to branch on, and a message to show.",
)

BOARD = obj(
    {
        "stop": ref("Stop"),
        "departures": array_of(ref("Departure")),
        "groups": array_of(
            obj(
                {
                    "line": nullable(ref("LineSummary")),
                    "line_id": LINE_ID,
                    "direction_id": INT_OR_NULL,
                    "headsign": TEXT_OR_NULL,
                    "departures": array_of(ref("Departure")),
                },
                ["direction_id", "headsign", "departures"],
                title="DepartureGroup",
            ),
            description="With group=line_direction, instead of departures.",
        ),
        "explanation": nullable(ref("Explanation")),
    },
    ["stop", "explanation"],
    title="Board",
)

NEARBY_BOARD = obj(
    {
        "stop": ref("Stop"),
        "departures": array_of(ref("Departure")),
        "explanation": nullable(ref("Explanation")),
    },
    ["stop", "departures", "explanation"],
    title="NearbyBoard",
)

TRIP_VEHICLE = obj(
    {
        "id": {"type": "string"},
        "label": TEXT_OR_NULL,
        "lat": {"type": ["number", "null"]},
        "lon": {"type": ["number", "null"]},
        "bearing": {"type": ["number", "null"]},
        "speed_m_s": {"type": ["number", "null"]},
        "timestamp": TIME_OR_NULL,
        "current_stop_sequence": INT_OR_NULL,
        "stop_id": TEXT_OR_NULL,
        "status": nullable(ref("VehicleStopStatus")),
    },
    ["id", "lat", "lon", "timestamp", "current_stop_sequence", "status"],
    title="TripVehicle",
)

CALL = obj(
    {
        "stop": obj(
            {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "lat": {"type": "number"},
                "lon": {"type": "number"},
            },
            ["id", "name", "lat", "lon"],
            title="CallStop",
            description="Absent with include=references (see stop_id).",
        ),
        "stop_id": STOP_ID,
        "stop_sequence": {"type": "integer"},
        "scheduled_arrival": DATE_TIME,
        "scheduled_departure": DATE_TIME,
        "expected_arrival": TIME_OR_NULL,
        "expected_departure": TIME_OR_NULL,
        "delay_s": INT_OR_NULL,
        "status": enum(CALL_STATUSES),
        "realtime": {"type": "boolean"},
        "passed": {
            "type": "boolean",
            "description": "Its expected (else scheduled) time is before now.",
        },
    },
    [
        "stop_sequence",
        "scheduled_arrival",
        "scheduled_departure",
        "expected_arrival",
        "expected_departure",
        "delay_s",
        "status",
        "realtime",
        "passed",
    ],
    title="Call",
)

TRIP = obj(
    {
        "id": {"type": "string"},
        "line": ref("LineSummary"),
        "line_id": LINE_ID,
        "headsign": TEXT_OR_NULL,
        "direction_id": INT_OR_NULL,
        "service_date": {"type": "string", "format": "date"},
        "runs_on_date": {"type": "boolean"},
        "realtime": {"type": "boolean"},
        # In the words of departures: the delay against the source's on-time threshold.
        "status": enum(
            TRIP_STATUSES,
            "From the trip's delay_s and schedule_relationship; 'scheduled' when no delay is "
            "known.",
        ),
        # One spelling across the API: "cancelled", as calls, departures and events say it.
        "schedule_relationship": enum(SCHEDULE_RELATIONSHIPS),
        "delay_s": {
            "type": ["integer", "null"],
            "description": "Delay at the next call not yet passed, else the last one known.",
        },
        "vehicle_id": {
            "type": ["string", "null"],
            "description": "'feed:vehicle_id', the id /v1/vehicles gives the vehicle.",
        },
        "vehicle": nullable(ref("TripVehicle")),
        "timezone": {"type": "string"},
        "calls": array_of(ref("Call")),
    },
    [
        "id",
        "service_date",
        "runs_on_date",
        "realtime",
        "status",
        "schedule_relationship",
        "delay_s",
        "vehicle_id",
        "vehicle",
        "calls",
    ],
    title="Trip",
)

ALL = {
    "References": REFERENCES,
    "LineMode": enum(MODES, "From the GTFS route_type (basic and extended codes)."),
    "LocationType": enum(LOCATION_TYPES.values(), "From the GTFS location_type."),
    "DepartureStatus": enum(DEPARTURE_STATUSES),
    "VehicleStopStatus": enum(STOP_STATUSES, "Where the vehicle is, against its stop_id."),
    "Trip": TRIP,
    "TripVehicle": TRIP_VEHICLE,
    "Call": CALL,
    "LineSummary": LINE_SUMMARY,
    "Agency": AGENCY,
    "Line": LINE,
    "LineDirection": DIRECTION,
    "LineDetail": LINE_DETAIL,
    "LineGeometry": LINE_GEOMETRY,
    "Stop": STOP,
    "StopDetail": STOP_DETAIL,
    "Departure": DEPARTURE,
    "Explanation": EXPLANATION,
    "Board": BOARD,
    "NearbyBoard": NEARBY_BOARD,
}

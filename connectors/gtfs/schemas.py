"""JSON schemas of the transit answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

DATE_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
COLOR: dict[str, Any] = {"type": ["string", "null"], "pattern": "^#[0-9A-F]{6}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


LINE_SUMMARY = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "short_name": TEXT_OR_NULL,
        "long_name": TEXT_OR_NULL,
        "mode": {"type": "string"},
        "color": COLOR,
        "text_color": COLOR,
    },
    "required": ["id", "short_name", "long_name", "mode", "color", "text_color"],
}

LINE = {
    "type": "object",
    "allOf": [_ref("LineSummary")],
    "properties": {
        "agency": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "url": TEXT_OR_NULL,
                "timezone": {"type": "string"},
            },
        }
    },
}

STOP = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "code": TEXT_OR_NULL,
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "location_type": {"enum": ["stop", "station", "entrance", "generic_node", "boarding_area"]},
        "parent_station": TEXT_OR_NULL,
        "platform_code": TEXT_OR_NULL,
        "wheelchair_boarding": {"type": ["boolean", "null"]},
        "lines": {"type": "array", "items": _ref("LineSummary")},
        "distance_m": {"type": "number"},
    },
    "required": ["id", "name", "lat", "lon", "location_type", "parent_station"],
}

STOP_DETAIL = {
    "type": "object",
    "allOf": [_ref("Stop")],
    "properties": {"platforms": {"type": "array", "items": _ref("Stop")}},
    "required": ["platforms"],
}

LINE_DETAIL = {
    "type": "object",
    "allOf": [_ref("Line")],
    "properties": {
        "directions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "direction_id": {"type": ["integer", "null"]},
                    "headsign": TEXT_OR_NULL,
                    "trips": {"type": "integer"},
                    "stops": {"type": "array", "items": _ref("Stop")},
                },
            },
        }
    },
    "required": ["directions"],
}

_BBOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}

LINE_GEOMETRY = {
    "type": "object",
    "description": "RFC 7946 FeatureCollection: per direction, one LineString per shape its "
    "trips use ([lon, lat]); trips without a shape are drawn through their stops.",
    "properties": {
        "type": {"const": "FeatureCollection"},
        "bbox": _BBOX,
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"const": "Feature"},
                    "bbox": _BBOX,
                    "geometry": {
                        "type": ["object", "null"],
                        "properties": {
                            "type": {"const": "LineString"},
                            "coordinates": {
                                "type": "array",
                                "minItems": 2,
                                "items": {
                                    "type": "array",
                                    "items": {"type": "number"},
                                    "minItems": 2,
                                    "maxItems": 2,
                                },
                            },
                        },
                        "required": ["type", "coordinates"],
                    },
                    "properties": {
                        "type": "object",
                        "properties": {
                            "line_id": {"type": "string"},
                            "direction_id": {"type": ["integer", "null"]},
                            "headsigns": {"type": "array", "items": {"type": "string"}},
                            "shape_id": TEXT_OR_NULL,
                            "trips": {"type": "integer"},
                            "geometry_source": {"enum": ["shapes.txt", "stops"]},
                        },
                        "required": [
                            "line_id",
                            "direction_id",
                            "headsigns",
                            "shape_id",
                            "trips",
                            "geometry_source",
                        ],
                    },
                },
                "required": ["type", "geometry", "properties"],
            },
        },
    },
    "required": ["type", "features"],
}

DEPARTURE = {
    "type": "object",
    "properties": {
        "stop": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
        },
        "line": {"oneOf": [_ref("LineSummary"), {"type": "null"}]},
        "trip_id": {"type": "string"},
        "headsign": TEXT_OR_NULL,
        "direction_id": {"type": ["integer", "null"]},
        "service_date": {"type": "string", "format": "date"},
        "scheduled_time": {"type": ["string", "null"], "format": "date-time"},
        "expected_time": {"type": ["string", "null"], "format": "date-time"},
        "delay_s": {"type": ["integer", "null"]},
        "realtime": {"type": "boolean"},
        "uncertainty_s": {"type": ["integer", "null"]},
        "vehicle_id": {
            "type": ["string", "null"],
            "description": "'feed:vehicle_id', the id /v1/vehicles gives the vehicle.",
        },
        "alert_ids": {"type": "array", "items": {"type": "string"}},
        "status": {
            "enum": [
                "scheduled",
                "on_time",
                "delayed",
                "early",
                "cancelled",
                "skipped",
                "added",
                "no_data",
            ]
        },
        "timezone": {"type": "string"},
        "platform": TEXT_OR_NULL,
        "wheelchair_accessible": {"type": ["boolean", "null"]},
        "frequency": {
            "type": ["object", "null"],
            "properties": {
                "headway_s": {"type": "integer"},
                "exact_times": {"type": "boolean"},
            },
        },
    },
    "required": ["stop", "line", "trip_id", "service_date", "scheduled_time", "status"],
}

EXPLANATION = {
    "type": ["object", "null"],
    "description": "Why a board is empty (null when it is not): a stable code to branch "
    "on, and a message to show.",
    "properties": {
        "code": {
            "enum": [
                "outside_feed_validity",
                "no_service_that_day",
                "terminus",
                "no_more_departures_in_window",
            ]
        },
        "message": {
            "type": "string",
            "description": "For people, in the negotiated language (fr or en; en otherwise).",
        },
    },
}

BOARD = {
    "type": "object",
    "properties": {
        "stop": _ref("Stop"),
        "departures": {"type": "array", "items": _ref("Departure")},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "line": _ref("LineSummary"),
                    "direction_id": {"type": ["integer", "null"]},
                    "headsign": TEXT_OR_NULL,
                    "departures": {"type": "array", "items": _ref("Departure")},
                },
            },
        },
        "explanation": _ref("Explanation"),
    },
    "required": ["stop", "explanation"],
}

NEARBY_BOARD = {
    "type": "object",
    "properties": {
        "stop": _ref("Stop"),
        "departures": {"type": "array", "items": _ref("Departure")},
        "explanation": _ref("Explanation"),
    },
    "required": ["stop", "departures", "explanation"],
}

TRIP = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "line": _ref("LineSummary"),
        "headsign": TEXT_OR_NULL,
        "direction_id": {"type": ["integer", "null"]},
        "service_date": {"type": "string", "format": "date"},
        "runs_on_date": {"type": "boolean"},
        "realtime": {"type": "boolean"},
        # In the words of departures: the delay against the source's on-time threshold.
        "status": {
            "enum": ["scheduled", "on_time", "delayed", "early", "cancelled", "added"],
            "description": "From the trip's delay_s and schedule_relationship; 'scheduled' "
            "when no delay is known.",
        },
        # One spelling across the API: "cancelled", as calls, departures and events say it.
        "schedule_relationship": {
            "enum": ["scheduled", "cancelled", "deleted", "added", "duplicated"]
        },
        "delay_s": {
            "type": ["integer", "null"],
            "description": "Delay at the next call not yet passed, else the last one known.",
        },
        "vehicle_id": {
            "type": ["string", "null"],
            "description": "'feed:vehicle_id', the id /v1/vehicles gives the vehicle.",
        },
        "vehicle": {
            "type": ["object", "null"],
            "properties": {
                "id": {"type": "string"},
                "label": TEXT_OR_NULL,
                "lat": {"type": ["number", "null"]},
                "lon": {"type": ["number", "null"]},
                "bearing": {"type": ["number", "null"]},
                "speed_m_s": {"type": ["number", "null"]},
                "timestamp": {"type": ["string", "null"], "format": "date-time"},
                "current_stop_sequence": {"type": ["integer", "null"]},
                "stop_id": TEXT_OR_NULL,
                "status": {"enum": ["incoming_at", "stopped_at", "in_transit_to", None]},
            },
            "required": ["id", "lat", "lon", "timestamp", "current_stop_sequence", "status"],
        },
        "timezone": {"type": "string"},
        "calls": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "stop": {"type": "object"},
                    "stop_sequence": {"type": "integer"},
                    "scheduled_arrival": DATE_TIME,
                    "scheduled_departure": DATE_TIME,
                    "expected_arrival": {"type": ["string", "null"], "format": "date-time"},
                    "expected_departure": {"type": ["string", "null"], "format": "date-time"},
                    "delay_s": {"type": ["integer", "null"]},
                    "status": {
                        "enum": [
                            "scheduled",
                            "on_time",
                            "delayed",
                            "early",
                            "cancelled",
                            "skipped",
                            "no_data",
                        ]
                    },
                    "realtime": {"type": "boolean"},
                    "passed": {
                        "type": "boolean",
                        "description": "Its expected (else scheduled) time is before now.",
                    },
                },
            },
        },
    },
    "required": [
        "id",
        "line",
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
}

ALL = {
    "Trip": TRIP,
    "LineSummary": LINE_SUMMARY,
    "Line": LINE,
    "LineDetail": LINE_DETAIL,
    "LineGeometry": LINE_GEOMETRY,
    "Stop": STOP,
    "StopDetail": STOP_DETAIL,
    "Departure": DEPARTURE,
    "Explanation": EXPLANATION,
    "Board": BOARD,
    "NearbyBoard": NEARBY_BOARD,
}

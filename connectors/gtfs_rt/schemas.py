"""JSON schemas of the realtime answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
NAMED = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}

ALERT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "header": TEXT_OR_NULL,
        "description": TEXT_OR_NULL,
        "url": TEXT_OR_NULL,
        "cause": TEXT_OR_NULL,
        "effect": TEXT_OR_NULL,
        "severity": TEXT_OR_NULL,
        "active_periods": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"start": TIME_OR_NULL, "end": TIME_OR_NULL},
            },
        },
        "lines": {"type": "array", "items": {"$ref": "#/components/schemas/LineSummary"}},
        "stops": {"type": "array", "items": NAMED},
        "trips": {"type": "array", "items": {"type": "object"}},
        "agencies": {"type": "array", "items": {"type": "string"}},
        "text_languages": {
            "type": "object",
            "description": "The language tag of header, description and url as the feed "
            "gives them: a text the feed has only in its own language is answered in it "
            "whatever was asked.",
            "properties": {
                "header": {"type": "string"},
                "description": {"type": "string"},
                "url": {"type": "string"},
            },
            "additionalProperties": False,
        },
    },
    "required": ["id", "header", "effect", "active_periods", "lines", "stops", "text_languages"],
}

VEHICLE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "label": TEXT_OR_NULL,
        "line": {"oneOf": [{"$ref": "#/components/schemas/LineSummary"}, {"type": "null"}]},
        "trip_id": TEXT_OR_NULL,
        "service_date": TEXT_OR_NULL,
        "direction_id": {"type": ["integer", "null"]},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "bearing": {"type": ["number", "null"]},
        "speed_m_s": {"type": ["number", "null"]},
        "status": {"enum": ["incoming_at", "stopped_at", "in_transit_to", None]},
        "stop_id": TEXT_OR_NULL,
        "occupancy": TEXT_OR_NULL,
        "occupancy_percentage": {"type": ["integer", "null"]},
        "timestamp": TIME_OR_NULL,
    },
    "required": ["id", "lat", "lon", "line", "trip_id", "timestamp"],
}

ALL = {"Alert": ALERT, "Vehicle": VEHICLE}

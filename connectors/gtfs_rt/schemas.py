"""JSON schemas of the realtime answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aggregator.api.schemas import array_of, enum, nullable, obj, point_features, ref
from connectors.gtfs.references import SCHEMA as REFERENCES

from .alerts import CAUSES, EFFECTS, SEVERITIES
from .vehicles import OCCUPANCIES

TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}

ALERT = obj(
    {
        "id": {"type": "string"},
        "header": TEXT_OR_NULL,
        "description": TEXT_OR_NULL,
        "url": TEXT_OR_NULL,
        "cause": enum([*CAUSES, None], "GTFS-RT's cause, lowercase; null when not given."),
        "effect": enum([*EFFECTS, None], "GTFS-RT's effect, lowercase; null when not given."),
        "severity": enum(
            [*SEVERITIES, None], "GTFS-RT's severity level, lowercase; null when not given."
        ),
        "active_periods": array_of(
            obj({"start": TIME_OR_NULL, "end": TIME_OR_NULL}, ["start", "end"], title="Period")
        ),
        "lines": array_of(ref("LineSummary"), description="Absent with include=references."),
        "line_ids": array_of(
            {"type": "string"},
            description="With include=references, instead of lines: keys in references.lines.",
        ),
        "stop_ids": array_of(
            {"type": "string"},
            description="With include=references, instead of stops: keys in references.stops.",
        ),
        "stops": array_of(
            obj(
                {"id": {"type": "string"}, "name": {"type": "string"}},
                ["id", "name"],
                title="AlertStop",
            )
        ),
        "trips": array_of(
            obj(
                {"id": {"type": "string"}, "headsign": TEXT_OR_NULL},
                ["id", "headsign"],
                title="AlertTrip",
            )
        ),
        "agencies": array_of({"type": "string"}),
        "text_languages": obj(
            {
                "header": {"type": "string"},
                "description": {"type": "string"},
                "url": {"type": "string"},
            },
            title="AlertTextLanguages",
            description="The language tag of header, description and url as the feed gives "
            "them: a text the feed has only in its own language is answered in it whatever "
            "was asked.",
        ),
    },
    [
        "id",
        "header",
        "effect",
        "active_periods",
        "trips",
        "agencies",
        "text_languages",
    ],
    title="Alert",
)

VEHICLE = obj(
    {
        "id": {"type": "string"},
        "label": TEXT_OR_NULL,
        "line": nullable(ref("LineSummary")),
        "line_id": {
            "type": ["string", "null"],
            "description": "With include=references, instead of line: its key in references.lines.",
        },
        "trip_id": TEXT_OR_NULL,
        "service_date": TEXT_OR_NULL,
        "direction_id": {"type": ["integer", "null"]},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "bearing": {"type": ["number", "null"]},
        "speed_m_s": {"type": ["number", "null"]},
        "status": nullable(ref("VehicleStopStatus")),
        "stop_id": TEXT_OR_NULL,
        "occupancy": enum([*OCCUPANCIES, None], "GTFS-RT's occupancy status, lowercase."),
        "occupancy_percentage": {"type": ["integer", "null"]},
        "timestamp": TIME_OR_NULL,
    },
    ["id", "lat", "lon", "trip_id", "timestamp"],
    title="Vehicle",
)

VEHICLE_COLLECTION = point_features(VEHICLE, "VehicleCollection")
# With include=references, one more member beside meta (as the JSON answer's envelope has it).
VEHICLE_COLLECTION["properties"]["references"] = ref("References")

ALL = {
    "Alert": ALERT,
    "Vehicle": VEHICLE,
    "VehicleCollection": VEHICLE_COLLECTION,
    "References": REFERENCES,
}

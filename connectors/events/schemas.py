"""JSON schemas of the events answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aggregator.api import sync
from aggregator.api.communes import COMMUNE_FIELD
from aggregator.api.schemas import array_of, dictionary, enum, extend, obj, ref

from .model import ACCESSIBILITY_CODES, ATTENDANCE_MODES, CHANNELS, LOCATION_KEYS, STATUSES

TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
INT_OR_NULL: dict[str, Any] = {"type": ["integer", "null"]}

LOCATION = obj(
    {
        "name": TEXT_OR_NULL,
        "address": TEXT_OR_NULL,
        "city": TEXT_OR_NULL,
        "postal_code": TEXT_OR_NULL,
        "lat": {"type": ["number", "null"]},
        "lon": {"type": ["number", "null"]},
    },
    list(LOCATION_KEYS),
    title="EventLocation",
    description="Where it takes place: always every member, null when the source does not "
    "give it (the location itself is null when nothing is known).",
)

PRICE = obj(
    {
        "free": {
            "type": ["boolean", "null"],
            "description": "true: free of charge; false: paying; null: the source does not say.",
        },
        "text": {
            "type": ["string", "null"],
            "description": "The conditions as the source words them (text_languages['price.text'] "
            "says in which language).",
        },
    },
    ["free", "text"],
    title="EventPrice",
)

REGISTRATION = obj(
    {
        "type": {"type": "string", "description": "How to register: link, email, phone..."},
        "value": {"type": "string"},
    },
    ["type", "value"],
    title="EventRegistration",
)

AGE = obj(
    {"min": INT_OR_NULL, "max": INT_OR_NULL},
    title="EventAge",
    description="The ages the event is meant for, in years (either bound may be null).",
)

IMAGE = obj(
    {"url": {"type": "string"}, "thumb_url": TEXT_OR_NULL, "credits": TEXT_OR_NULL},
    ["url"],
    title="EventImage",
)

PROVENANCE = obj(
    {"source": {"type": "string"}, "uid": {"type": "string"}, "url": TEXT_OR_NULL},
    ["source", "uid", "url"],
    title="EventProvenance",
    description="A source the occurrence comes from (two after a merge of duplicates).",
)


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


EVENT = obj(
    {
        "id": {"type": "string"},
        "event_id": {"type": "string"},
        "source": {"type": "string"},
        "uid": {"type": "string"},
        "recurrence_id": {"type": "string"},
        "channel": enum(CHANNELS),
        "title": TEXT_OR_NULL,
        "description": TEXT_OR_NULL,
        "description_html": TEXT_OR_NULL,
        "start": {"type": "string", "format": "date-time"},
        "end": TIME_OR_NULL,
        "all_day": {"type": "boolean"},
        "start_date": TEXT_OR_NULL,
        "end_date": TEXT_OR_NULL,
        "timezone": {"type": "string"},
        "status": ref("EventStatus"),
        "previous_start": TIME_OR_NULL,
        "location": _or_null(ref("EventLocation")),
        "attendance_mode": enum(ATTENDANCE_MODES),
        "online_url": TEXT_OR_NULL,
        "categories": array_of({"type": "string"}),
        "keywords": {
            "type": ["array", "null"],
            "items": {"type": "string"},
            "description": "In the negotiated language (null when the source gives none).",
        },
        "accessibility": array_of(enum(ACCESSIBILITY_CODES)),
        "price": _or_null(ref("EventPrice")),
        "registration": array_of(ref("EventRegistration")),
        "age": _or_null(ref("EventAge")),
        "image": _or_null(ref("EventImage")),
        "url": TEXT_OR_NULL,
        "updated_at": TIME_OR_NULL,
        "sources": array_of(ref("EventProvenance")),
        "distance_m": {"type": ["number", "null"]},
        "commune": COMMUNE_FIELD,
        "text_languages": dictionary(
            {"type": "string"},
            "The language each translated text is actually in, by field name "
            "(price.text for the price's): a text that exists only in its source's language "
            "is answered in it whatever was asked.",
        ),
    },
    ["id", "event_id", "source", "channel", "title", "start", "status", "commune"],
    title="Event",
    description="One occurrence; translated texts are in the negotiated language.",
)

EVENT_DETAIL = extend(
    EVENT,
    {
        "other_occurrences": array_of(
            obj(
                {
                    "id": {"type": "string"},
                    "start": {"type": "string", "format": "date-time"},
                    "end": TIME_OR_NULL,
                    "status": ref("EventStatus"),
                },
                ["id", "start", "end", "status"],
                title="OtherOccurrence",
            )
        )
    },
    ["other_occurrences"],
    title="EventDetail",
    description="One occurrence with the dates of the event's other occurrences.",
)

#: A sync answer (aggregator.api.sync): occurrences changed since the token, tombstones.
EVENT_SYNC = sync.answer_schema(
    {"$ref": "#/components/schemas/Event"}, {"$ref": "#/components/schemas/SyncRemoved"}
)

CATEGORY = obj(
    {
        "key": {"type": "string"},
        "label": {"type": "string"},
        "count": {"type": "integer"},
        "events": {"type": "integer"},
    },
    ["key", "label", "count", "events"],
    title="Category",
)

ALL = {
    "EventStatus": enum(STATUSES),
    "Event": EVENT,
    "EventDetail": EVENT_DETAIL,
    "EventSync": EVENT_SYNC,
    "SyncRemoved": sync.REMOVED_SCHEMA,
    "EventLocation": LOCATION,
    "EventPrice": PRICE,
    "EventRegistration": REGISTRATION,
    "EventAge": AGE,
    "EventImage": IMAGE,
    "EventProvenance": PROVENANCE,
    "Category": CATEGORY,
}

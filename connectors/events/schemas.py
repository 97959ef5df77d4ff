"""JSON schemas of the events answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from .model import ACCESSIBILITY_CODES, CHANNELS, LOCATION_KEYS, STATUSES

TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}

EVENT = {
    "type": "object",
    "description": "One occurrence; translated texts are in the negotiated language.",
    "properties": {
        "id": {"type": "string"},
        "event_id": {"type": "string"},
        "source": {"type": "string"},
        "uid": {"type": "string"},
        "recurrence_id": {"type": "string"},
        "channel": {"enum": list(CHANNELS)},
        "title": TEXT_OR_NULL,
        "description": TEXT_OR_NULL,
        "description_html": TEXT_OR_NULL,
        "start": {"type": "string", "format": "date-time"},
        "end": TIME_OR_NULL,
        "all_day": {"type": "boolean"},
        "start_date": TEXT_OR_NULL,
        "end_date": TEXT_OR_NULL,
        "timezone": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "previous_start": TIME_OR_NULL,
        "location": {
            "type": ["object", "null"],
            "properties": {
                "name": TEXT_OR_NULL,
                "address": TEXT_OR_NULL,
                "city": TEXT_OR_NULL,
                "postal_code": TEXT_OR_NULL,
                "lat": {"type": ["number", "null"]},
                "lon": {"type": ["number", "null"]},
            },
            "required": list(LOCATION_KEYS),
        },
        "attendance_mode": {"type": "string"},
        "online_url": TEXT_OR_NULL,
        "categories": {"type": "array", "items": {"type": "string"}},
        "keywords": {"type": ["array", "object", "null"]},
        "accessibility": {"type": "array", "items": {"enum": list(ACCESSIBILITY_CODES)}},
        "price": {"type": ["object", "null"]},
        "registration": {"type": "array", "items": {"type": "object"}},
        "age": {"type": ["object", "null"]},
        "image": {"type": ["object", "null"]},
        "url": TEXT_OR_NULL,
        "updated_at": TIME_OR_NULL,
        "sources": {"type": "array", "items": {"type": "object"}},
        "distance_m": {"type": "number"},
        "text_languages": {
            "type": "object",
            "description": "The language each translated text is actually in, by field name "
            "(price.text for the price's): a text that exists only in its source's language "
            "is answered in it whatever was asked.",
            "additionalProperties": {"type": "string"},
        },
    },
    "required": ["id", "event_id", "source", "channel", "title", "start", "status"],
}

EVENT_DETAIL = {
    "type": "object",
    "allOf": [{"$ref": "#/components/schemas/Event"}],
    "properties": {
        "other_occurrences": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "start": {"type": "string"},
                    "end": TIME_OR_NULL,
                    "status": {"type": "string"},
                },
            },
        }
    },
    "required": ["other_occurrences"],
}

EVENT_CHANGES = {
    "type": "object",
    "description": "Answer to updated_since: what changed, and tombstones of what was removed. "
    "When complete is false the client must reload everything.",
    "properties": {
        "complete": {"type": "boolean"},
        "changed": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
        "removed": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["complete", "changed", "removed"],
}

CATEGORY = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "label": {"type": "string"},
        "count": {"type": "integer"},
        "events": {"type": "integer"},
    },
    "required": ["key", "label", "count", "events"],
}

ALL = {
    "Event": EVENT,
    "EventDetail": EVENT_DETAIL,
    "EventChanges": EVENT_CHANGES,
    "Category": CATEGORY,
}

"""Component schemas shared by the core endpoints (and by connector types' endpoints)."""

from __future__ import annotations

from typing import Any

NULLABLE_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}

FRESHNESS = {
    "type": "object",
    "description": "How fresh the data of one contributing source is.",
    "properties": {
        "state": {"enum": ["never_loaded", "ok", "degraded", "stale", "failing"]},
        "stale": {"type": "boolean"},
        "last_success": NULLABLE_TIME,
        "age_s": {"type": ["number", "null"]},
        "version": {"type": ["integer", "null"]},
    },
    "required": ["state", "stale", "last_success", "age_s", "version"],
}

META = {
    "type": "object",
    "properties": {
        "generated_at": {"type": "string", "format": "date-time"},
        "sources": {
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/Freshness"},
        },
        "language": {"type": "string"},
        "next_cursor": {"type": ["string", "null"]},
    },
    "required": ["generated_at", "sources"],
}

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"parameter": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}

SOURCE_STATUS = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string"},
        "title": {"type": ["string", "null"]},
        "state": {"enum": ["never_loaded", "ok", "degraded", "stale", "failing"]},
        "stale": {"type": "boolean"},
        "required": {"type": "boolean"},
        "refresh": {"type": "string"},
        "stale_after_s": {"type": "number"},
        "last_attempt": NULLABLE_TIME,
        "last_success": NULLABLE_TIME,
        "last_change": NULLABLE_TIME,
        "last_error": {"type": ["string", "null"]},
        "waiting_for": {"type": ["string", "null"]},
        "polled_by": {"type": ["string", "null"]},
        "last_error_at": NULLABLE_TIME,
        "consecutive_failures": {"type": "integer"},
        "next_run": NULLABLE_TIME,
        "last_duration_s": {"type": ["number", "null"]},
        "record_count": {"type": ["integer", "null"]},
        "version": {"type": ["integer", "null"]},
        "issues": {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "examples": {"type": "array", "items": {"type": "string"}},
            },
        },
        "polls": {
            "type": "object",
            "properties": {"total": {"type": "integer"}, "failed": {"type": "integer"}},
        },
        "stats": {"type": "object"},
    },
    "required": ["id", "type", "state", "stale", "last_success", "last_error", "record_count"],
}

RECORD = {
    "type": "object",
    "description": "A record mapped by the source's field mapping; translated fields are "
    "reduced to the negotiated language.",
    "properties": {"id": {"type": "string"}},
    "required": ["id"],
    "additionalProperties": True,
}

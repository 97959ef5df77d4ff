"""Component schemas shared by the core endpoints (and by connector types' endpoints)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aggregator.api.i18n import language_pattern
from aggregator.api.params import MAX_PARAM_LENGTH, MAX_YEAR, MIN_YEAR
from aggregator.api.problem_texts import REASONS, TYPE_DESCRIPTIONS
from aggregator.failures import FailureCode

if TYPE_CHECKING:
    from aggregator.runtime import Runtime

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
        "type": {
            "type": "string",
            "description": "A URI reference to this server's page about the problem "
            "(/problems/{code}); resolve it against the request's URL.",
        },
        "code": {
            "type": "string",
            "enum": list(TYPE_DESCRIPTIONS),
            "description": "Stable code to branch on (invalid_parameter, not_found...).",
        },
        "title": {"type": "string", "description": "In the negotiated language."},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "detail_code": {
            "type": ["string", "null"],
            "enum": [*REASONS, None],
            "description": "The stable code of detail (null: a text from outside the catalogue).",
        },
        "detail_language": {
            "type": "string",
            "description": "The language detail is in: the negotiated one (en where the "
            "server does not write that language).",
        },
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "parameter": {"type": "string"},
                    "code": {"type": ["string", "null"], "enum": [*REASONS, None]},
                    "detail": {"type": "string"},
                    "detail_language": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "code", "title", "status", "detail", "detail_code", "detail_language"],
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
        "last_error_code": {"enum": [None, *(code.value for code in FailureCode)]},
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
    "properties": {
        "id": {"type": "string"},
        "text_languages": {
            "type": "object",
            "description": "The language each translated field is actually in, by field "
            "name (absent when the record has no translated field).",
            "additionalProperties": {"type": "string"},
        },
    },
    "required": ["id"],
    "additionalProperties": True,
}


# --- Parameter schemas: what the handlers' QueryParams accept, said in JSON Schema -----------
# Patterns are ECMA-262, spelled so that Python's re and Rust's regex (the validators) read them
# the same way: whitespace is spelled out rather than \s, digits are [0-9] rather than \d.

#: The characters str.strip() removes, so "non-blank" means what the server means by it.
SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BLANK = f"[{SPACE}]*"
_YEARS = "(19[0-9]{2}|2[01][0-9]{2}|2200)"

#: A free-text value: not blank once trimmed, at most MAX_PARAM_LENGTH characters.
TEXT: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PARAM_LENGTH,
    "pattern": f"[^{SPACE}]",
}
#: An RFC 3339 instant; the server takes the years MIN_YEAR to MAX_YEAR only.
INSTANT: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "maxLength": MAX_PARAM_LENGTH,
    "pattern": f"^{_YEARS}-",
}
INSTANT_RANGE = f"RFC 3339, years {MIN_YEAR}-{MAX_YEAR}"
#: An ISO 8601 calendar date, years MIN_YEAR to MAX_YEAR.
DATE: dict[str, Any] = {"type": "string", "format": "date", "pattern": f"^{_YEARS}-"}


def language(runtime: Runtime) -> dict[str, Any]:
    """``?lang=``: a tag whose primary subtag is one of the configured languages."""
    return {
        "type": "string",
        "maxLength": MAX_PARAM_LENGTH,
        "pattern": language_pattern(runtime.languages),
    }


def configured(
    ids_of: Callable[[Runtime], Sequence[str]],
) -> Callable[[Runtime], dict[str, Any] | None]:
    """One of the configured ids ``ids_of`` lists (the handler checks with ``ids_of`` too).

    With none configured no value is accepted: the parameter is left out of the document (an
    empty enum would say the same, but generators such as schemathesis ignore it).
    """

    def schema(runtime: Runtime) -> dict[str, Any] | None:
        ids = list(ids_of(runtime))
        return {"type": "string", "enum": ids} if ids else None

    return schema


#: A source id as the configuration spells them (aggregator.config.types).
SOURCE_ID: dict[str, Any] = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}
#: A namespaced id in a path, 'feed:native_id'.
NAMESPACED_ID: dict[str, Any] = {"type": "string", "pattern": "^[^:]+:.+$"}
#: A namespaced id in a query string ('feed:native_id', trimmed).
NAMESPACED_ID_PARAM: dict[str, Any] = {
    **TEXT,
    "pattern": f"^{_BLANK}[^{SPACE}:][^:]*:[\\S\\s]*[^{SPACE}]",
}
#: A cursor the server issued (URL-safe base64); any other is a 400.
CURSOR: dict[str, Any] = {**TEXT, "pattern": f"^{_BLANK}[A-Za-z0-9_-]+=*{_BLANK}$"}


def up_to(n: int) -> str:
    """A pattern for the integers 1 to ``n``, without leading zeros."""
    digits = str(n)
    alternatives = [_digits(1, 9) + _any_digits(0, len(digits) - 2)] if len(digits) > 1 else []
    alternatives.append(digits)
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(digits) - i - 1
            alternatives.append(digits[:i] + _digits(low, int(digit) - 1) + _any_digits(rest, rest))
    return "(" + "|".join(alternatives) + ")"


def _digits(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _any_digits(least: int, most: int) -> str:
    if most == 0:
        return ""
    if least == most:
        return "[0-9]" if most == 1 else f"[0-9]{{{most}}}"
    return f"[0-9]{{{least},{most}}}"


def degrees(limit: int) -> str:
    """A pattern for a plain decimal between -``limit`` and ``limit`` (no exponent, no blanks)."""
    return f"-?((0|{up_to(limit - 1)})(\\.[0-9]+)?|{limit}(\\.0+)?)"


def window_duration(max_s: int) -> dict[str, Any]:
    """A duration of at least a minute and at most ``max_s`` seconds, in the forms a pattern
    can bound: whole seconds (90), minutes (90m), hours (2h), hours and minutes (1h30m), days.

    The server reads more spellings (250ms, 1.5h, 1h30m15s: any sum of amounts with units); a
    regular expression cannot bound a sum, so the document promises only these, all accepted.
    """
    hours, days = max_s // 3600, max_s // 86400
    units = [f"{up_to(max_s // 60)}m", f"{up_to(hours)}h"]
    if hours > 1:
        units.append(f"{up_to(hours - 1)}h[1-5]?[0-9]m")
    if days:
        units.append(f"{up_to(days)}d")
    return {
        "anyOf": [
            {"type": "integer", "minimum": 60, "maximum": max_s},
            {"type": "string", "pattern": "^(" + "|".join(units) + ")$"},
        ]
    }


def integer(minimum: int, maximum: int, default: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    return schema


def number(minimum: float, maximum: float, default: float | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    return schema


LATITUDE = number(-90, 90)
LONGITUDE = number(-180, 180)


def choice(values: Iterable[str], default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    if default is not None:
        schema["default"] = default
    return schema


def csv(item: str | None = None) -> dict[str, Any]:
    """A comma-separated list: blank items are skipped, at least one must remain; ``item`` is
    the pattern of one trimmed item (default: anything without a comma)."""
    if item is None:
        return {**TEXT, "pattern": f"[^,{SPACE}]"}
    one = f"{_BLANK}({item}){_BLANK}"
    return {**TEXT, "pattern": f"^({_BLANK},)*{one}(,({one}|{_BLANK}))*$"}


def one_of(values: Iterable[str]) -> str:
    """A pattern matching exactly one of ``values``."""
    return "|".join(re.escape(value) for value in values)

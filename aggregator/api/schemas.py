"""Component schemas shared by the core endpoints (and by connector types' endpoints)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aggregator.api.i18n import language_pattern
from aggregator.api.messages import HINTS
from aggregator.api.params import MAX_PARAM_LENGTH, MAX_YEAR, MIN_YEAR
from aggregator.api.problem_texts import REASONS, TYPE_DESCRIPTIONS
from aggregator.failures import FailureCode
from aggregator.freshness import CONTENT_REASONS, StaleReason

if TYPE_CHECKING:
    from aggregator.runtime import Runtime

NULLABLE_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}


# --- Typed-schema helpers --------------------------------------------------------------------
# Clients are generated from /v1/openapi.json (openapi-python-client, openapi-typescript): an
# object without typed properties becomes an empty record, an array without items an unknown[],
# and a schema that extends another through allOf is read as its base by some generators. These
# helpers spell schemas the way every generator reads them; tests/openapi_lint.py holds every
# schema of the document to the same rules.


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` or null: a type list for a plain type, a oneOf for a reference."""
    if "$ref" in schema:
        return {"oneOf": [dict(schema), {"type": "null"}]}
    kind = schema.get("type")
    if kind is None:
        raise ValueError(f"nullable() needs a type or a $ref: {schema}")
    kinds = [kind] if isinstance(kind, str) else list(kind)
    out = {**schema, "type": [*kinds, "null"] if "null" not in kinds else kinds}
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def array_of(items: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """An array of ``items``."""
    return {"type": "array", "items": dict(items), **extra}


def enum(values: Iterable[str | None], description: str | None = None) -> dict[str, Any]:
    """One of a fixed vocabulary (with None among ``values``: or null)."""
    listed = list(values)
    kinds = ["string", "null"] if None in listed else "string"
    schema: dict[str, Any] = {"type": kinds, "enum": listed}
    if description:
        schema["description"] = description
    return schema


def obj(
    properties: Mapping[str, Any],
    required: Iterable[str] = (),
    *,
    title: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """An object with typed ``properties`` (``required`` among them)."""
    needed = list(required)
    unknown = set(needed) - set(properties)
    if unknown:
        raise ValueError(f"required properties not declared: {sorted(unknown)}")
    schema: dict[str, Any] = {"type": "object"}
    if title:
        schema["title"] = title
    if description:
        schema["description"] = description
    schema["properties"] = dict(properties)
    if needed:
        schema["required"] = needed
    return schema


def extend(
    base: Mapping[str, Any],
    properties: Mapping[str, Any],
    required: Iterable[str] = (),
    *,
    title: str,
    description: str | None = None,
) -> dict[str, Any]:
    """``base`` with more properties, written out whole rather than as an allOf: generators
    (openapi-python-client) read ``allOf: [Base]`` plus properties as Base alone. ``title`` and
    the added required properties keep the two apart in every generator."""
    return obj(
        {**base["properties"], **properties},
        [*base.get("required", ()), *required],
        title=title,
        description=description or base.get("description"),
    )


def dictionary(values: Mapping[str, Any], description: str | None = None) -> dict[str, Any]:
    """An object keyed by ids or names, every value of the schema ``values``."""
    schema: dict[str, Any] = {"type": "object", "additionalProperties": dict(values)}
    if description:
        schema["description"] = description
    return schema


STATES = ["never_loaded", "ok", "degraded", "stale", "failing"]

SOURCE_STATE = enum(
    STATES,
    "never_loaded: no poll finished yet; ok; degraded: served, but the last poll failed or "
    "skipped broken records; stale: served, but too old; failing: nothing was ever loaded.",
)

#: A source's terms of reuse, as meta.sources and /v1/sources carry them.
LICENCE_TERMS: dict[str, Any] = {
    "licence": {
        "type": ["string", "null"],
        "description": "The licence of the source's data: an SPDX identifier (etalab-2.0, "
        "ODbL-1.0, CC-BY-4.0...) or a URL; null when the operator named none.",
    },
    "licence_url": {"type": ["string", "null"], "format": "uri"},
    "attribution": {
        "type": ["string", "null"],
        "description": 'The credit to show with the data, e.g. "© Ilévia".',
    },
    "share_alike": {
        "type": "boolean",
        "description": "Whether what is derived from it must be shared under the same licence "
        "(ODbL, CC BY-SA).",
    },
}

STALE_REASON = enum(
    [None, *(reason.value for reason in StaleReason)],
    "Why the data is stale, null when it is not: repeated_failures, no_recent_success "
    "(polls), content_outdated, content_expired (the content itself), store_unreachable "
    "(this process cannot see the shared store).",
)

FRESHNESS = obj(
    {
        "state": ref("SourceState"),
        "stale": {"type": "boolean"},
        "stale_reason": STALE_REASON,
        "last_success": NULLABLE_TIME,
        "age_s": {
            "type": ["number", "null"],
            "description": "Seconds since the last successful poll (real time).",
        },
        "version": {"type": ["integer", "null"]},
        "store": enum(["unreachable"], "Present when the store is down."),
        **LICENCE_TERMS,
    },
    ["state", "stale", "stale_reason", "last_success", "age_s", "version", "licence"],
    description="How fresh the data of one contributing source is, and its terms of reuse.",
)

#: A feed's realtime state on a departure board (``meta.realtime``, by GTFS source id).
REALTIME_STATE = obj(
    {
        "available": {
            "type": "boolean",
            "description": "A realtime source of this feed is configured and loaded.",
        },
        "source": {"type": "string", "description": "That realtime source's id."},
        "stale": {
            "type": ["boolean", "null"],
            "description": "Its data is too old to be merged (null when none is available).",
        },
        "stale_reason": STALE_REASON,
    },
    ["available", "stale"],
)

#: A bike feed's own freshness as its publisher states it (``meta.feeds``, by source id).
FEED_STATE = obj(
    {
        "last_updated": NULLABLE_TIME,
        "age_s": {"type": ["number", "null"]},
        "stale": {"type": "boolean"},
    },
    ["last_updated", "age_s", "stale"],
)

#: Every member an answer's ``meta`` may carry; each route says in its description which.
META = obj(
    {
        "generated_at": {"type": "string", "format": "date-time"},
        "sources": dictionary(
            ref("Freshness"), "The freshness of every source the answer comes from, by id."
        ),
        "language": {"type": "string", "description": "The negotiated language."},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Paged lists: the cursor of the next page, null on the last.",
        },
        "sync_token": {
            "type": ["string", "null"],
            "description": "On a sync's last page: the token of the next sync (else null).",
        },
        "today": {
            "type": "string",
            "format": "date",
            "description": "Waste collections: the local date the next collections count from.",
        },
        "at": {
            "type": "string",
            "format": "date-time",
            "description": "Places: the instant opening hours were evaluated at (open_at, or "
            "the first page's now for every page of a list).",
        },
        "now": {
            "type": "string",
            "format": "date-time",
            "description": "Boards, trips and home: the instant the answer is computed for, "
            "with its local offset (what a countdown starts from).",
        },
        "realtime": dictionary(
            ref("RealtimeState"), "Departure boards: each feed's realtime state, by feed id."
        ),
        "total": {
            "type": "integer",
            "description": "Lists: how many items match, all pages together.",
        },
        "truncated": {
            "type": "boolean",
            "description": "true when the server stopped counting at its bound: total is a floor.",
        },
        "window": obj(
            {
                "start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
                "duration_s": {"type": "integer"},
            },
            ["start", "end", "duration_s"],
            title="BoardWindow",
            description="The time window a departure board looked at.",
        ),
        "hint": obj(
            {
                "code": enum(list(HINTS)),
                "parameter": {"type": "string"},
                "message": {"type": "string"},
            },
            ["code", "parameter", "message"],
            title="Hint",
            description="How to get more than this answer holds: a stable code, the parameter "
            "to change and a text in the negotiated language.",
        ),
        "weekend": array_of(
            {"type": "string", "format": "date-time"},
            minItems=2,
            maxItems=2,
            description="Home: the start and end of the weekend its events_weekend cover.",
        ),
        "feeds": dictionary(
            ref("FeedState"), "Bike stations: each feed's age as its publisher states it."
        ),
    },
    ["generated_at", "sources"],
)

PROBLEM = obj(
    {
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
        "errors": array_of(
            {
                "anyOf": [
                    obj(
                        {
                            "parameter": {"type": "string"},
                            "code": enum([*REASONS, None]),
                            "detail": {"type": "string"},
                            "detail_language": {"type": "string"},
                        },
                        title="ProblemError",
                    ),
                    {"type": "string"},
                ]
            },
            description="invalid_parameter: each parameter refused and why; invalid_config: "
            "each problem of the configuration file, as text.",
        ),
    },
    ["type", "code", "title", "status", "detail", "detail_code", "detail_language"],
    description="RFC 9457 problem details.",
)

_SCALAR = {"type": ["string", "number", "boolean", "null"]}

#: A JSON value whose shape the server does not fix (a record field mapped with ``type: json``,
#: a connector's statistic): a scalar, an object of such values (the JsonObject component) or an
#: array of scalars and objects. Spelled without a self-referencing union, which
#: openapi-python-client cannot read; the one shape left out is an array right inside an array.
JSON_VALUE = {
    "anyOf": [
        _SCALAR,
        array_of({"anyOf": [_SCALAR, ref("JsonObject")]}),
        ref("JsonObject"),
    ]
}
JSON_OBJECT = {
    **dictionary(JSON_VALUE, "A JSON object whose members the server does not fix."),
    "title": "JsonObject",
}

SOURCE_STATUS = obj(
    {
        "id": {"type": "string"},
        "type": {"type": "string"},
        "title": {"type": ["string", "null"]},
        "state": ref("SourceState"),
        "stale": {"type": "boolean"},
        "stale_reason": STALE_REASON,
        "content": {
            "type": "object",
            "description": "Whether the content itself is out of date, whatever the polls do.",
            "properties": {
                "stale": {"type": "boolean"},
                "reason": enum([None, *sorted(r.value for r in CONTENT_REASONS)]),
                "detail": {"type": ["string", "null"]},
                "since": NULLABLE_TIME,
            },
            "required": ["stale", "reason", "detail", "since"],
        },
        "required": {"type": "boolean"},
        **LICENCE_TERMS,
        "refresh": {"type": "string"},
        "stale_after_s": {"type": "number"},
        "last_attempt": NULLABLE_TIME,
        "last_success": NULLABLE_TIME,
        "last_change": NULLABLE_TIME,
        "last_error": {"type": ["string", "null"]},
        "last_error_code": enum([None, *(code.value for code in FailureCode)]),
        "waiting_for": {"type": ["string", "null"]},
        "polled_by": {"type": ["string", "null"]},
        "last_error_at": NULLABLE_TIME,
        "consecutive_failures": {"type": "integer"},
        "next_run": {
            **NULLABLE_TIME,
            "description": "The next attempt the scheduler will make (UTC); null while a "
            "poll is under way, or when this process does not know it.",
        },
        "polling_since": {
            **NULLABLE_TIME,
            "description": "When the poll under way started; null when none is.",
        },
        "overruns": {
            "type": "integer",
            "description": "Scheduled runs skipped because the previous poll was still running.",
        },
        "last_duration_s": {"type": ["number", "null"]},
        "record_count": {"type": ["integer", "null"]},
        "version": {"type": ["integer", "null"]},
        "issues": obj(
            {"count": {"type": "integer"}, "examples": array_of({"type": "string"})},
            ["count", "examples"],
        ),
        "polls": obj(
            {"total": {"type": "integer"}, "failed": {"type": "integer"}}, ["total", "failed"]
        ),
        "stats": dictionary(
            JSON_VALUE, "The connector's own figures of its last load (they vary by type)."
        ),
    },
    ["id", "type", "state", "stale", "last_success", "last_error", "record_count"],
)

RECORD = {
    **obj(
        {
            "id": {"type": "string"},
            "text_languages": dictionary(
                {"type": "string"},
                "The language each translated field is actually in, by field name (absent "
                "when the record has no translated field).",
            ),
        },
        ["id"],
        description="A record mapped by the source's field mapping; translated fields are "
        "reduced to the negotiated language.",
    ),
    "additionalProperties": JSON_VALUE,
}


#: The admin view of a source: its status with what the public one leaves out.
SOURCE_DETAIL = extend(
    SOURCE_STATUS,
    {
        "issues": obj(
            {
                "count": {"type": "integer"},
                "examples": array_of({"type": "string"}),
                "all_kept": array_of({"type": "string"}),
            },
            ["count", "examples", "all_kept"],
        ),
        "recent_errors": array_of(
            obj(
                {
                    "at": {"type": "string", "format": "date-time"},
                    "code": enum(code.value for code in FailureCode),
                    "error": {"type": "string"},
                },
                ["at", "code", "error"],
            )
        ),
    },
    ["recent_errors"],
    title="SourceDetail",
)

REFRESH_OUTCOME = obj(
    {
        "outcome": enum(["changed", "unchanged", "failed", "waiting"]),
        "error": {"type": ["string", "null"]},
        "status": ref("SourceDetail"),
    },
    ["outcome", "error", "status"],
    title="RefreshOutcome",
)

RELOAD_REPORT = obj(
    {
        name: array_of({"type": "string"})
        for name in ("added", "removed", "changed", "unchanged", "restart_needed")
    },
    ["added", "removed", "changed", "unchanged", "restart_needed"],
    title="ReloadReport",
    description="Source ids by what the reload did to them; restart_needed lists sections.",
)


#: /v1/openapi.json itself, as far as a client reads it.
OPENAPI_DOCUMENT = obj(
    {
        "openapi": {"type": "string"},
        "info": obj(
            {
                "title": {"type": "string"},
                "version": {"type": "string"},
                "description": {"type": "string"},
            },
            ["title", "version"],
        ),
        "paths": dictionary(ref("JsonObject")),
        "components": dictionary(ref("JsonObject")),
    },
    ["openapi", "info", "paths"],
    title="OpenApiDocument",
)


def point_features(item: Mapping[str, Any], title: str) -> dict[str, Any]:
    """The RFC 7946 FeatureCollection of ``item`` records (connectors.places.geo's
    feature_collection): a Point at [lon, lat] each, the other fields as its properties, and
    the answer's meta as one more member."""
    others = {k: v for k, v in item["properties"].items() if k not in ("lat", "lon")}
    needed = [k for k in item.get("required", ()) if k in others]
    feature = obj(
        {
            "type": {"type": "string", "const": "Feature"},
            "id": {"type": "string"},
            "geometry": obj(
                {
                    "type": {"type": "string", "const": "Point"},
                    "coordinates": array_of({"type": "number"}, minItems=2, maxItems=2),
                },
                ["type", "coordinates"],
            ),
            "properties": obj(others, needed, title=f"{item['title']}Properties"),
        },
        ["type", "id", "geometry", "properties"],
        title=f"{item['title']}Feature",
    )
    return obj(
        {
            "type": {"type": "string", "const": "FeatureCollection"},
            "features": array_of(feature),
            "meta": ref("Meta"),
        },
        ["type", "features", "meta"],
        title=title,
        description=f"RFC 7946 FeatureCollection of {item['title']} points ([lon, lat]); "
        "the other fields are each feature's properties.",
    )


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

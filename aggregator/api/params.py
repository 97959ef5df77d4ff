"""Query-parameter parsing: every bad value becomes a 400 naming the parameter and why."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from aggregator.api.problems import BadParameter
from aggregator.config.types import parse_duration

#: No client-supplied string is longer than this (search terms, ids, cursors).
MAX_PARAM_LENGTH = 512
#: The longest time window a board or the stream takes (``duration=``).
MAX_WINDOW_S = 24 * 3600
#: Instants a client may ask about.
MIN_YEAR, MAX_YEAR = 1900, 2200


class QueryParams:
    """Typed access to a request's query string."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self._query = query

    def __contains__(self, name: object) -> bool:
        return name in self._query

    def _raw(self, name: str) -> str | None:
        value = self._query.get(name)
        if value is None:
            return None
        if len(value) > MAX_PARAM_LENGTH:
            raise BadParameter(name, "too_long", maximum=MAX_PARAM_LENGTH)
        return value

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self._raw(name)
        if value is None:
            return default
        value = value.strip()
        if not value:
            raise BadParameter(name, "empty")
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise BadParameter(name, "not_an_integer", value=repr(value)) from None
        if not minimum <= number <= maximum:
            raise BadParameter(name, "out_of_range", minimum=minimum, maximum=maximum, value=number)
        return number

    def number(
        self, name: str, default: float | None = None, *, minimum: float, maximum: float
    ) -> float | None:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise BadParameter(name, "not_a_number", value=repr(value)) from None
        if not math.isfinite(number) or not minimum <= number <= maximum:
            raise BadParameter(name, "out_of_range", minimum=minimum, maximum=maximum, value=value)
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise BadParameter(name, "not_a_boolean", value=repr(value))

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._raw(name)
        if value is None:
            return default
        if value not in choices:
            raise BadParameter(name, "not_one_of", value=repr(value), choices=", ".join(choices))
        return value

    def member(self, name: str, members: Sequence[str], what: str) -> str | None:
        """One of ``members`` exactly as spelled (a configured source id...), None when absent.

        No trimming: the OpenAPI document lists the members as an enum, and must say the truth.
        """
        value = self._raw(name)
        if value is None:
            return None
        if value not in members:
            raise BadParameter(name, "not_configured_source", value=repr(value))
        return value

    def point(self, *, required: bool = False) -> tuple[float, float] | None:
        """``lat`` and ``lon`` (WGS 84), which go together: None when both are absent and
        the point is optional; a 400 naming the missing one otherwise."""
        lat = self.number("lat", minimum=-90.0, maximum=90.0)
        lon = self.number("lon", minimum=-180.0, maximum=180.0)
        if lat is not None and lon is not None:
            return lat, lon
        if lat is None and lon is None and not required:
            return None
        missing = "lat" if lat is None else "lon"
        if required:
            raise BadParameter(missing, "lat_lon_required")
        raise BadParameter(missing, "lat_lon_together")

    def required_point(self) -> tuple[float, float]:
        point = self.point(required=True)
        assert point is not None  # point(required=True) raises rather than answer None
        return point

    def matching(self, name: str, pattern: re.Pattern[str], reason: str) -> str | None:
        """A value ``pattern`` matches whole, None when absent; the OpenAPI document carries
        ``pattern.pattern`` itself, so the schema and this check are one rule. ``reason``: the
        code of the problem text (in each language) that says which form is expected."""
        value = self._raw(name)
        if value is None:
            return None
        if pattern.fullmatch(value) is None:
            raise BadParameter(name, reason, value=repr(value))
        return value

    def datetime(self, name: str, default: datetime, zone: ZoneInfo) -> datetime:
        """An RFC 3339 / ISO 8601 instant; a value without offset is read in ``zone``."""
        value = self._raw(name)
        if value is None:
            return default
        try:
            parsed = datetime.fromisoformat(value.replace(" ", "+") if "T" in value else value)
        except ValueError:
            raise BadParameter(name, "not_a_datetime", value=repr(value)) from None
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            # Far dates overflow date arithmetic (a window after 9999-12-31) and mean nothing.
            raise BadParameter(name, "year_out_of_range", minimum=MIN_YEAR, maximum=MAX_YEAR)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)

    def csv(self, name: str, *, max_items: int = 50) -> list[str]:
        value = self._raw(name)
        if value is None:
            return []
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items:
            raise BadParameter(name, "list_empty")
        if len(items) > max_items:
            raise BadParameter(name, "list_too_long", maximum=max_items)
        return items


def window_seconds(raw: str) -> int:
    """``duration=``: whole seconds between 1m and 24h (the document's schema is a subset)."""
    try:
        seconds = int(parse_duration(raw))
    except ValueError:
        raise BadParameter("duration", "not_a_duration", value=repr(raw)) from None
    if not 60 <= seconds <= MAX_WINDOW_S:
        raise BadParameter("duration", "duration_out_of_range")
    return seconds

"""Value types an operator writes in YAML: durations, byte sizes, schedules and source ids.

Each is a pydantic ``Annotated`` type whose parser raises :class:`PydanticCustomError` (a
``ValueError``), so the message reaches the operator as written here, without pydantic's
``Value error,`` prefix, and the parsers work on their own outside pydantic too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import AfterValidator, BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "ByteSize",
    "Duration",
    "Schedule",
    "SourceId",
    "format_duration",
    "parse_byte_size",
    "parse_duration",
    "parse_schedule",
]

DURATION_EXAMPLES = "30s, 5m, 1h"
BYTE_SIZE_EXAMPLES = "512KB, 50MB, 1GiB"
CRON_EXAMPLE = "*/10 6-22 * * *"

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

# Decimal units are SI (1 MB = 10^6 bytes) and the IEC ones binary, as their names say; that
# is what `ls --si`, browsers and HTTP tooling show, so a limit reads the way it is written.
_BYTE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_BYTE_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")

_SOURCE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def _not_a(kind: str, value: object, examples: str) -> PydanticCustomError:
    return PydanticCustomError(
        f"{kind.replace(' ', '_')}_parsing",
        "'{value}' is not a {kind} (examples: {examples})",
        {"value": str(value), "kind": kind, "examples": examples},
    )


def _number(value: object) -> float | None:
    """A YAML number as a float; ``None`` for anything else (bools included, YAML has no 1=yes)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # a 400-digit YAML integer: too big to be any duration or size
        return math.inf


def parse_duration(value: object) -> float:
    """Seconds from ``30s``, ``5m``, ``1h30m``, ``250ms``, ``2d`` or a bare number of seconds."""
    seconds = _number(value)
    if seconds is None and isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif _DURATION.fullmatch(text):
            seconds = sum(
                float(amount) * _DURATION_UNITS[unit]
                for amount, unit in _DURATION_PART.findall(text)
            )
    if seconds is None or not math.isfinite(seconds):
        raise _not_a("duration", value, DURATION_EXAMPLES)
    if seconds <= 0:
        raise PydanticCustomError(
            "duration_not_positive", "must be longer than zero (got '{value}')", {"value": value}
        )
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest duration string for ``seconds`` (``90`` → ``1m30s``, ``0.25`` → ``250ms``)."""
    remaining = round(seconds * 1000)
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    if remaining:
        parts.append(f"{remaining}ms")
    return "".join(parts)


def parse_byte_size(value: object) -> int:
    """Bytes from ``512KB``, ``50MB``, ``1GiB`` or a bare number of bytes."""
    size = _number(value)
    if size is None and isinstance(value, str):
        match = _BYTE_SIZE.fullmatch(value.strip())
        if match and match.group(2).lower() in (*_BYTE_UNITS, ""):
            size = float(match.group(1)) * _BYTE_UNITS.get(match.group(2).lower(), 1)
    if size is None or not math.isfinite(size):
        raise _not_a("byte size", value, BYTE_SIZE_EXAMPLES)
    if size < 1:
        raise PydanticCustomError(
            "byte_size_not_positive", "must be at least 1 byte (got '{value}')", {"value": value}
        )
    return int(size)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a source is polled: every ``seconds``, or on a 5-field ``cron`` expression."""

    seconds: float | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.seconds is None) == (self.cron is None):
            raise ValueError("a Schedule has either seconds or cron, not both or neither")

    @classmethod
    def every(cls, seconds: float) -> Schedule:
        """An interval schedule."""
        return cls(seconds=float(seconds))

    @classmethod
    def from_cron(cls, expression: str) -> Schedule:
        """A cron schedule; raises ``ValueError`` with APScheduler's reason when invalid."""
        expression = " ".join(expression.split())
        CronTrigger.from_crontab(expression, timezone=UTC)
        return cls(cron=expression)

    def trigger(self, timezone: tzinfo | str = UTC) -> BaseTrigger:
        """The APScheduler trigger for this schedule (no jitter: that is the poller's call)."""
        if self.cron is not None:
            return CronTrigger.from_crontab(self.cron, timezone=timezone)
        assert self.seconds is not None
        return IntervalTrigger(seconds=self.seconds, timezone=timezone)

    def nominal_interval(
        self, *, now: datetime | None = None, timezone: tzinfo | str = UTC
    ) -> float:
        """Seconds between polls; for cron, the gap between the next two fire times from now."""
        if self.seconds is not None:
            return self.seconds
        trigger = self.trigger(timezone)
        now = now or datetime.now(UTC)
        first = trigger.get_next_fire_time(None, now)
        second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
        if first is None or second is None:  # pragma: no cover - a crontab always fires again
            return math.inf
        return (second - first).total_seconds()

    def describe(self) -> str:
        """A phrase for humans: ``every 5m`` or ``cron '*/10 6-22 * * *'``."""
        if self.cron is not None:
            return f"cron '{self.cron}'"
        assert self.seconds is not None
        return f"every {format_duration(self.seconds)}"

    def __str__(self) -> str:
        # The YAML spelling, so a dumped config reads back to the same schedule.
        if self.cron is not None:
            return self.cron
        assert self.seconds is not None
        return format_duration(self.seconds)

    # The dataclass is its own pydantic type, so a field is simply annotated `Schedule`.
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            parse_schedule,
            serialization=core_schema.to_string_ser_schema(),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": ["string", "number"], "description": "a duration or a 5-field crontab"}


def parse_schedule(value: object) -> Schedule:
    """A :class:`Schedule` from a duration (``5m``, ``300``) or a 5-field cron string."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str) and len(value.split()) == 5:
        try:
            return Schedule.from_cron(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "cron_invalid",
                "'{value}' is not a valid cron expression: {reason}",
                {"value": value, "reason": str(exc)},
            ) from exc
    try:
        return Schedule.every(parse_duration(value))
    except PydanticCustomError as exc:
        if exc.type != "duration_parsing":
            raise
        raise PydanticCustomError(
            "schedule_parsing",
            "'{value}' is neither a duration (examples: {examples}) "
            "nor a 5-field cron expression (e.g. '{cron}')",
            {"value": str(value), "examples": DURATION_EXAMPLES, "cron": CRON_EXAMPLE},
        ) from None


def _check_source_id(value: str) -> str:
    if not _SOURCE_ID.fullmatch(value):
        raise PydanticCustomError(
            "source_id_invalid",
            "'{value}' is not a valid id: use 1 to 63 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit",
            {"value": value},
        )
    return value


#: A positive number of seconds, written ``30s``, ``5m``, ``1h30m``, ``250ms``, ``2d`` or ``300``.
Duration = Annotated[float, BeforeValidator(parse_duration)]
#: A positive number of bytes, written ``512KB``, ``50MB``, ``1GiB`` or ``100``.
ByteSize = Annotated[int, BeforeValidator(parse_byte_size)]
#: A source id: what URLs, namespaced record ids and Redis keys are built from.
SourceId = Annotated[str, AfterValidator(_check_source_id)]

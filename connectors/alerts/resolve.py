"""Lines and stops named in a disruption document, found in a GTFS timetable.

Publishers name lines and stops their own way: Ilévia's disruptions say
``ILEVIA:LineRef::ME1:LOC`` where the timetable has a route; another portal writes a line's
short name, or a stop's name in capitals. A :class:`ReferenceRule` says how to read the
field (an optional regular expression, a separator, a value map) and which timetable column
the reference is compared with; what matches nothing is counted, with examples, never
guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.gtfs.search import normalize_words

if TYPE_CHECKING:
    from connectors.gtfs import Timetable

LineKey = Literal["short_name", "id", "long_name"]
StopKey = Literal["name", "id", "code"]
#: Examples of unresolved references kept per kind (the count goes on).
MAX_EXAMPLES = 10
#: A reference longer than this is not a line or stop name: refused, not looked up.
MAX_REFERENCE_CHARS = 200


class ReferenceRule(BaseModel):
    """How the values of ``lines`` / ``stops`` become timetable lines or stops."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Which timetable column a reference is compared with.
    match: str
    #: A regular expression; its group ``ref`` (else the whole match) is the reference. A
    #: value the expression does not match is unresolved.
    pattern: str | None = None
    #: Splits one value naming several lines or stops (``","``, ``";"``).
    separator: str | None = Field(default=None, min_length=1)
    #: Publisher's spelling → timetable's (``{ME1: "1"}``), applied after ``pattern``.
    values: dict[str, str] = Field(default_factory=dict)

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        return value


class LineRule(ReferenceRule):
    match: LineKey = "short_name"


class StopRule(ReferenceRule):
    match: StopKey = "name"


def _name_key(text: str) -> str:
    return " ".join(normalize_words(text))


@dataclass
class Unresolved:
    """References that matched nothing: how many, and a few examples."""

    total: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, reference: str) -> None:
        self.total += 1
        if reference not in self.examples and len(self.examples) < MAX_EXAMPLES:
            self.examples.append(reference)


class Resolver:
    """One rule compiled against one timetable: reference text → timetable indices."""

    def __init__(self, rule: ReferenceRule, keys: Sequence[str], by_name: bool) -> None:
        self.rule = rule
        self._pattern = re.compile(rule.pattern) if rule.pattern else None
        self._normalise = _name_key if by_name else str.strip
        self._index: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key:
                self._index.setdefault(self._normalise(key), []).append(i)
        self.unresolved = Unresolved()

    def references(self, value: Any) -> list[str]:
        """The references a mapped value holds (a string, maybe split, or a list)."""
        if value is None:
            return []
        items: Iterable[Any] = value if isinstance(value, list) else [value]
        out: list[str] = []
        for item in items:
            if item is None or isinstance(item, dict | list):
                continue
            text = str(item)
            parts = text.split(self.rule.separator) if self.rule.separator else [text]
            out.extend(p.strip() for p in parts if p.strip())
        return out

    def resolve(self, reference: str) -> list[int]:
        """The indices ``reference`` names; none (and counted) when it matches nothing."""
        if len(reference) > MAX_REFERENCE_CHARS:
            self.unresolved.add(reference[:40] + "…")
            return []
        ref = reference
        if self._pattern is not None:
            found = self._pattern.search(ref)
            if found is None:
                self.unresolved.add(reference)
                return []
            ref = found.group("ref") if "ref" in found.re.groupindex else found.group(0)
        ref = self.rule.values.get(ref, ref)
        hits = self._index.get(self._normalise(ref), [])
        if not hits:
            self.unresolved.add(reference)
        return hits


def line_resolver(rule: LineRule, tt: Timetable) -> Resolver:
    keys = {
        "short_name": tt.route_short_names,
        "id": tt.route_ids,
        "long_name": tt.route_long_names,
    }[rule.match]
    return Resolver(rule, keys, by_name=rule.match != "id")


def stop_resolver(rule: StopRule, tt: Timetable) -> Resolver:
    keys = {"name": tt.stop_names, "id": tt.stop_ids, "code": tt.stop_codes}[rule.match]
    return Resolver(rule, keys, by_name=rule.match == "name")

"""Field mappings written in YAML: how an operator turns someone else's records into ours.

A mapping names, for each output field, where to find it in an input record::

    fields:
      name: nom                                   # a path
      capacity: {path: capacity, type: int}
      lat: {path: "geometry.coordinates[1]", type: float, required: true}
      title: {translations: {fr: titre_fr, en: titre_en}}

Paths are dotted keys with ``[n]`` list indexes. Paths are compiled when the config is
validated, so a typo in a path is a config error with a line number, not a runtime surprise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
FieldType = Literal["str", "int", "float", "bool", "datetime", "json"]
Step = str | int


class MappingProblem(ValueError):
    """A value in a record could not be mapped; the record is skipped or the field left empty."""


def compile_path(path: str) -> tuple[Step, ...]:
    """``"a.b[2].c"`` → ``("a", "b", 2, "c")``; raises ValueError on bad syntax."""
    if not path or path.strip() != path:
        raise ValueError(f"{path!r} is not a field path (examples: name, fields.nom, geo[0])")
    steps: list[Step] = []
    position = 0
    for match in _STEP.finditer(path):
        gap = path[position : match.start()]
        key, index = match.groups()
        # A key follows a dot (or starts the path); an index follows its list directly.
        expected = "" if index is not None or not steps else "."
        if gap != expected:
            break
        steps.append(int(index) if index is not None else key)
        position = match.end()
    if position != len(path) or not steps:
        raise ValueError(f"{path!r} is not a field path (examples: name, fields.nom, geo[0])")
    return tuple(steps)


def lookup(record: Any, steps: tuple[Step, ...]) -> Any:
    """The value at ``steps`` in ``record``, or None when any step is absent."""
    value = record
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
        if value is None:
            return None
    return value


def _convert(value: Any, kind: FieldType | None) -> Any:
    if value is None or kind is None or kind == "json":
        return value
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    try:
        if kind == "str":
            return str(value)
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind == "float":
            return float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
        if kind == "bool":
            return _to_bool(value)
        if kind == "datetime":
            return datetime.fromisoformat(str(value)).isoformat()
    except (TypeError, ValueError):
        pass
    raise MappingProblem(f"{value!r} is not a valid {kind}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "oui", "y", "t"}:
        return True
    if text in {"0", "false", "no", "non", "n", "f"}:
        return False
    raise ValueError(text)


class FieldSpec(BaseModel):
    """Where one output field comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    translations: dict[str, str] | None = None
    type: FieldType | None = None
    required: bool = False
    default: Any = None

    @field_validator("path")
    @classmethod
    def _path_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_path(value)
        return value

    @field_validator("translations")
    @classmethod
    def _translations_compile(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for path in (value or {}).values():
            compile_path(path)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.path is None) == (self.translations is None):
            raise ValueError("give exactly one of 'path' or 'translations'")
        return self


def _as_spec(value: str | FieldSpec) -> FieldSpec:
    return FieldSpec(path=value) if isinstance(value, str) else value


class RecordMapping:
    """A compiled set of field specs, applied to each input record."""

    def __init__(self, fields: Mapping[str, str | FieldSpec]) -> None:
        self._fields: list[tuple[str, FieldSpec, Any]] = []
        for name, raw in fields.items():
            spec = _as_spec(raw)
            if spec.translations is not None:
                compiled: Any = {lang: compile_path(p) for lang, p in spec.translations.items()}
            else:
                compiled = compile_path(spec.path or "")
            self._fields.append((name, spec, compiled))

    def apply(self, record: Any) -> tuple[dict[str, Any], list[str]]:
        """The mapped record and the problems of optional fields (left empty).

        Raises :class:`MappingProblem` when a required field is absent or invalid.
        """
        out: dict[str, Any] = {}
        problems: list[str] = []
        for name, spec, compiled in self._fields:
            try:
                if isinstance(compiled, dict):
                    texts = {
                        lang: _convert(lookup(record, steps), spec.type or "str")
                        for lang, steps in compiled.items()
                    }
                    value: Any = {lang: t for lang, t in texts.items() if t is not None} or None
                else:
                    value = _convert(lookup(record, compiled), spec.type)
            except MappingProblem as exc:
                if spec.required:
                    raise MappingProblem(f"field {name!r}: {exc}") from None
                problems.append(f"field {name!r}: {exc}")
                value = None
            if value is None:
                if spec.required and spec.default is None:
                    raise MappingProblem(f"required field {name!r} is missing")
                value = spec.default
            out[name] = value
        return out, problems


#: Row-level problems kept per parse; past this only the count grows.
MAX_ISSUES_KEPT = 50


class NothingMapped(ValueError):
    """A document had rows and not one of them could be mapped: the mapping is wrong.

    Publishing zero records in place of the last good ones would empty every answer built on
    the source while its status said "ok": the poll fails instead, with the first reasons.
    """


@dataclass
class MappedRows:
    """What mapping a document's rows gave: the records, and what was wrong with the rest."""

    records: list[dict[str, Any]] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    issue_total: int = 0
    row_total: int = 0

    def report(self, message: str) -> None:
        self.issue_total += 1
        if len(self.issues) < MAX_ISSUES_KEPT:
            self.issues.append(message)


def map_rows(
    source_id: str,
    rows: Iterable[Any],
    id_field: str,
    apply: Callable[[Any], tuple[dict[str, Any], list[str]]],
) -> MappedRows:
    """Map each row with ``apply``; a row without id, a duplicate id or a required field
    missing is reported and skipped, an optional field's problem reported and left empty.

    Records get the namespaced id ``"{source_id}:{native id}"``.
    """
    id_steps = compile_path(id_field)
    seen: set[str] = set()
    out = MappedRows()
    for number, row in enumerate(rows, start=1):
        out.row_total = number
        native = lookup(row, id_steps)
        if native is None or str(native).strip() == "":
            out.report(f"record {number}: id field {id_field!r} is missing")
            continue
        native_id = str(native).strip()
        if native_id in seen:
            out.report(f"record {number}: duplicate id {native_id!r}, first one kept")
            continue
        try:
            mapped, problems = apply(row)
        except MappingProblem as exc:
            out.report(f"record {number} (id {native_id!r}): {exc}, record skipped")
            continue
        for problem in problems:
            out.report(f"record {number} (id {native_id!r}): {problem}, left empty")
        seen.add(native_id)
        out.records.append({"id": f"{source_id}:{native_id}", **mapped})
    if out.row_total and not out.records:
        examples = "; ".join(out.issues[:3])
        raise NothingMapped(
            f"none of the {out.row_total} rows could be mapped (check id_field and fields), "
            f"e.g. {examples}"
        )
    return out

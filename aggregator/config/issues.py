"""Config problems, located in the file and put in plain words.

pydantic reports a loc such as ``fields.lat.FieldSpec.x`` with its own wording; an operator
editing YAML wants ``config/lille.yaml:14 connectors[2].fields.lat: must be a number``.
:class:`IssueReport` collects the problems of one file, maps each pydantic error back to the
data path and line it is about, rewrites its message, and hides values that came from the
environment (they may be secrets).
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from aggregator.config.yaml_source import KeyPath, YamlDocument

__all__ = ["ConfigError", "ConfigIssue", "IssueReport", "format_path", "unknown_key"]

_FROM_ENV = "(value from environment)"

# Pydantic messages that read badly to someone editing YAML, by error type.
_PLAIN_MESSAGES = {
    "missing": "required key is missing",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value lines)",
    "model_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
}


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: where it is (file, line, key path) and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config file has problems; :attr:`issues` lists all of them, in file order."""

    def __init__(self, issues: Sequence[ConfigIssue], *, file: str | None = None) -> None:
        self.issues = list(issues)
        self.file = file if file is not None else (self.issues[0].file if self.issues else "")
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in {self.file}"
        return "\n".join([head, *(str(issue) for issue in self.issues)])


def format_path(path: Iterable[Any]) -> str:
    """``("connectors", 2, "refresh")`` → ``connectors[2].refresh``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def unknown_key(key: Any, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}' (did you mean '{close[0]}'?)"
    return f"unknown key '{key}' (allowed keys: {', '.join(allowed)})"


class IssueReport:
    """Collects issues for one file, turning pydantic errors into located plain messages."""

    def __init__(self, filename: str, doc: YamlDocument) -> None:
        self.filename = filename
        self.doc = doc
        self.issues: list[ConfigIssue] = []

    def add(
        self, path: KeyPath, message: str, *, line: int | None = None, value: Any = None
    ) -> None:
        message = self._hide_env_values(path, message, value)
        line = line if line is not None else self.doc.line_of(path)
        self.issues.append(ConfigIssue(self.filename, line, format_path(path), message))

    def error(self) -> ConfigError:
        # Stable sort: issues on one line keep the order they were found in.
        return ConfigError(sorted(self.issues, key=lambda i: i.line or 0), file=self.filename)

    def validate(self, model: type[BaseModel], data: Any, prefix: KeyPath) -> Any:
        """``model`` validated from ``data``, or ``None`` after reporting why it is not valid."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            found = []
            for error in exc.errors(include_url=False):
                path, union_at = _locate(model, data, tuple(error["loc"]), error["type"])
                message = _plain_message(model, path, error)
                found.append(_Found(path, union_at, error["type"], message, error.get("input")))
            for item in _without_union_noise(found):
                full = (*prefix, *item.path)
                # The YAML layer already said why this value is unusable (unset variable...).
                if any(full[:end] in self.doc.unresolved for end in range(len(full) + 1)):
                    continue
                self.add(full, item.message, value=item.input)
            return None

    def _hide_env_values(self, path: KeyPath, message: str, value: Any) -> str:
        """Replace values that came from the environment (maybe secrets) in ``message``."""
        hidden: set[str] = set()
        if path in self.doc.env_values and isinstance(value, str):
            hidden.add(value)
        for env_path, values in self.doc.env_values.items():
            if env_path[: len(path)] == path or path[: len(env_path)] == env_path:
                hidden.update(values)
        for secret in sorted(filter(None, hidden), key=len, reverse=True):
            message = message.replace(f"'{secret}'", _FROM_ENV).replace(secret, _FROM_ENV)
        return message


def _plain_message(model: type[BaseModel], loc: KeyPath, error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        if parent is None:
            return f"unknown key '{loc[-1]}'"
        return unknown_key(loc[-1], list(parent.model_fields))
    if kind == "literal_error":
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))
        if choices:
            return "must be one of: " + ", ".join(choices)
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind]
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message.replace("Input should be ", "must be ")


@dataclass(frozen=True)
class _Found:
    """A pydantic error located in the data and put into words."""

    path: KeyPath
    union_at: KeyPath | None  # where a union's member tags were dropped from the loc
    kind: str
    message: str
    input: Any


# Errors that only say "this member of a union does not fit the value's type".
_MISMATCHES = {"int_parsing", "float_parsing", "bool_parsing", "int_from_float"}


def _locate(model: Any, data: Any, loc: KeyPath, kind: str) -> tuple[KeyPath, KeyPath | None]:
    """The data path of a pydantic ``loc``, without the member tags unions insert into it.

    For ``str | FieldSpec`` pydantic reports ``fields.lat.str`` and ``fields.lat.FieldSpec.x``;
    a part is kept when it is a key or index of the data, or a field of the model at that
    point (a default that failed validation, or the last part of a missing key).
    """
    path: list[Any] = []
    union_at: KeyPath | None = None
    value, annotation, present = data, model, True
    for index, part in enumerate(loc):
        if present and _has(value, part):
            value = value[part]
        elif (index == len(loc) - 1 and kind == "missing") or _field_of(annotation, part):
            present = False
        else:
            union_at = tuple(path) if union_at is None else union_at
            continue
        path.append(part)
        annotation = _child(annotation, part)
    return tuple(path), union_at


def _without_union_noise(found: list[_Found]) -> list[_Found]:
    """One useful error per union: the specific ones, or a single "must be A or B"."""
    kept = [item for item in found if item.union_at is None]
    groups: dict[KeyPath, list[_Found]] = {}
    for item in found:
        if item.union_at is not None:
            groups.setdefault(item.union_at, []).append(item)
    for base, items in groups.items():
        specific = [i for i in items if not (i.kind.endswith("_type") or i.kind in _MISMATCHES)]
        if specific:
            kept.extend(specific)
            continue
        wanted = list(dict.fromkeys(i.message.removeprefix("must be ") for i in items))
        message = "must be " + " or ".join(wanted)
        kept.append(_Found(base, None, "union", message, items[0].input))
    return kept


def _has(value: Any, part: Any) -> bool:
    if isinstance(value, dict):
        return part in value
    return isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)


def _field_of(annotation: Any, part: Any) -> bool:
    model = _unwrap(annotation)
    return isinstance(model, type) and issubclass(model, BaseModel) and part in model.model_fields


def _child(annotation: Any, part: Any) -> Any:
    """The annotation validating ``part`` of a value annotated ``annotation`` (or ``None``)."""
    current = _unwrap(annotation)
    origin = get_origin(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        field = current.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    if origin in (list, tuple, set, frozenset) and isinstance(part, int):
        return next(iter(get_args(current)), None)
    if origin is dict:
        args = get_args(current)
        return args[1] if len(args) == 2 else None
    return None


def _model_at(model: Any, loc: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` inside ``model``, if one does."""
    current = model
    for part in loc:
        current = _child(current, part)
        if current is None:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` down to the type that validates the value."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            if len(members) == 1:
                annotation = members[0]
            elif len(models) == 1:
                annotation = models[0]
            else:
                return annotation
        else:
            return annotation

"""Reading the deployment files the way a container engine does, for tests/test_deployment.py.

A Dockerfile line is an instruction and its arguments, with ``\\`` continuing a line and ``#``
starting a comment; the exec form (``["a", "b"]``) is JSON. That is all the tests need, so a
few lines here rather than a Dockerfile library as a new test dependency. compose.yaml is
YAML (merge keys included), read with PyYAML; its ``${VAR}`` references are resolved the way
Compose does for the three forms it uses.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class Stage:
    """One ``FROM`` and the instructions after it."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str | None:
        found = self.all(instruction)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The ``ENV key=value ...`` settings of this stage (later ones win)."""
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for word in shlex.split(args):
                key, _, value = word.partition("=")
                values[key] = value
        return values


def dockerfile_stages(path: Path) -> list[Stage]:
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((instruction, args))
    return stages


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form ``CMD``/``ENTRYPOINT``/``HEALTHCHECK ... CMD``."""
    return json.loads(args[args.index("[") :])


def dockerignore_allows(path: Path) -> set[str]:
    """The names an allowlist-style .dockerignore (``*`` then ``!name``) lets through."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    assert "*" in lines, ".dockerignore is expected to start from nothing (`*`)"
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


_REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


class MissingVariable(LookupError):
    """A ``${VAR:?message}`` whose variable is unset or empty (Compose refuses to start)."""


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    def resolve(match: re.Match[str]) -> str:
        found = environ.get(match["name"], "")
        if found:
            return found
        if match["op"] == ":?":
            raise MissingVariable(f"{match['name']}: {match['arg']}")
        return match["arg"] or ""

    return _REFERENCE.sub(resolve, value)


def compose_services(path: Path) -> dict[str, dict]:
    return yaml.safe_load(path.read_text())["services"]

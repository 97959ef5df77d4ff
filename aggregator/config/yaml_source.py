"""Read YAML into plain Python values while remembering where every key came from.

``yaml.safe_load`` throws line numbers away, yet an operator needs ``lille.yaml:14`` to fix a
typo. So the document is composed into nodes (which keep their marks) and the values are built
here, recording the line of every key path, interpolating ``${VAR}`` from the environment and
noting which paths got environment values (they may be secrets and must never be echoed).

Problems that leave the rest of the document usable (a duplicate key, an unset variable) are
collected in :attr:`YamlDocument.problems`, so the loader can report them with everything else;
only a syntax error, after which there is no document, raises :class:`YamlSyntaxError`.

Composing keeps an alias as a second reference to its anchor's node, so a 600-byte "billion
laughs" document composes in microseconds; it is building values that copies each alias out,
nine times nine times nine... So before building, the nodes that building would visit are
counted (each distinct node once, remembering its expanded size), and a document that would
expand past :data:`MAX_NODES` is refused with :class:`YamlTooLarge`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

__all__ = [
    "MAX_NODES",
    "InterpolationError",
    "KeyPath",
    "YamlDocument",
    "YamlProblem",
    "YamlSyntaxError",
    "YamlTooLarge",
    "interpolate",
    "load_yaml",
]

#: The most nodes (keys, values, list items) a document may expand to once its aliases are
#: copied out. The demo and Lille configs have about 200; building 100,000 takes about a second.
MAX_NODES = 100_000

#: A key path into the document, e.g. ``("connectors", 2, "refresh")``.
KeyPath = tuple[Any, ...]

_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"

# One alternative per token, tried left to right: the escape first (so `$${X}` is never read
# as `$` + `${X}`), then a well-formed reference, then any other `${` (malformed, reported).
_TOKEN = re.compile(
    r"\$\$\{"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}"
    r"|\$\{"
)


class YamlSyntaxError(Exception):
    """The text is not YAML (or not a single document); nothing could be built."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class YamlTooLarge(YamlSyntaxError):
    """The document's aliases would expand it past the node budget (an alias bomb?)."""


class InterpolationError(ValueError):
    """A ``${...}`` reference could not be resolved."""


@dataclass(frozen=True)
class YamlProblem:
    """Something wrong in the document that does not stop the rest being read."""

    line: int
    path: KeyPath
    message: str


@dataclass(frozen=True)
class YamlDocument:
    """Plain values plus, for each key path, its line and whether it came from the environment."""

    data: Any
    lines: Mapping[KeyPath, int]
    #: Paths whose scalar used environment variables, and the variables' values.
    env_values: Mapping[KeyPath, tuple[str, ...]]
    #: Paths whose value could not be resolved; their value is left as written.
    unresolved: frozenset[KeyPath]
    problems: tuple[YamlProblem, ...]

    @property
    def env_paths(self) -> frozenset[KeyPath]:
        """Key paths whose value was (at least partly) read from the environment."""
        return frozenset(self.env_values)

    def line_of(self, path: KeyPath) -> int:
        """The line of ``path``, or of its nearest ancestor present in the document."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def interpolate(text: str, environ: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """Expand ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` and ``$${`` in ``text``.

    Returns the expanded text and the environment values that went into it.
    """
    used: list[str] = []

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        name = match.group("name")
        if name is None:
            raise InterpolationError(
                f"invalid reference {_snippet(text, match.start())!r}: "
                "use ${VAR}, ${VAR:-default} or ${VAR:?message} (write $${ for a literal ${)"
            )
        op, arg = match.group("op"), match.group("arg")
        value = environ.get(name)
        if op == ":-" and not value:
            return arg
        if op == ":?" and not value:
            raise InterpolationError(arg or f"environment variable {name} is not set or empty")
        if value is None:
            raise InterpolationError(f"environment variable {name} is not set")
        if "\n" in value or "\r" in value:
            # A newline would silently change what the YAML means (or forge a header line).
            raise InterpolationError(f"environment variable {name} contains a newline")
        used.append(value)
        return value

    return _TOKEN.sub(replace, text), tuple(used)


def load_yaml(
    text: str, *, environ: Mapping[str, str] | None = None, max_nodes: int = MAX_NODES
) -> YamlDocument:
    """Build a :class:`YamlDocument` from YAML text, interpolating from ``environ``.

    Raises :class:`YamlTooLarge` when its aliases would expand it past ``max_nodes`` nodes.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, _syntax_message(exc)) from exc
    except ReaderError as exc:
        # Raised for bytes YAML forbids (control characters); it has a position, not a mark.
        line = text.count("\n", 0, exc.position) + 1
        raise YamlSyntaxError(line, f"invalid YAML: {exc.reason}") from exc
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error above has a subclass
        raise YamlSyntaxError(1, f"invalid YAML: {exc}") from exc
    except RecursionError:
        # PyYAML composes recursively: a few thousand `[` are enough to exhaust the stack.
        raise YamlSyntaxError(1, "invalid YAML: lists or mappings nested too deeply") from None

    if root is not None:
        _NodeBudget(max_nodes).expanded_size(root)
    builder = _Builder(os.environ if environ is None else environ)
    data = None
    if root is not None:
        builder.lines[()] = root.start_mark.line + 1
        data = builder.build(root, ())
    return YamlDocument(
        data=data,
        lines=builder.lines,
        env_values=builder.env_values,
        unresolved=frozenset(builder.unresolved),
        problems=tuple(builder.problems),
    )


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    if exc.context:
        return f"invalid YAML ({exc.context}): {exc.problem}"
    return f"invalid YAML: {exc.problem}"


def _snippet(text: str, start: int) -> str:
    end = text.find("}", start)
    return text[start : end + 1] if end != -1 else text[start:]


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _NodeBudget:
    """Counts the nodes building a composed document would visit, aliases copied out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # Expanded size of each node already counted: an alias to it costs that much again,
        # without counting it again (the count stays linear in the document's size).
        self._sizes: dict[int, int] = {}

    def expanded_size(self, node: Node) -> int:
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        # A node that contains an alias to itself: the builder reports it and builds it once.
        self._sizes[id(node)] = 1
        size = 1
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                size += self.expanded_size(key_node) + self.expanded_size(value_node)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                size += self.expanded_size(item)
        if size > self.limit:
            raise YamlTooLarge(
                _line(node),
                f"YAML aliases expand to more than {self.limit:,} nodes (alias bomb?)",
            )
        self._sizes[id(node)] = size
        return size


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, taking notes on the way."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.lines: dict[KeyPath, int] = {}
        self.env_values: dict[KeyPath, tuple[str, ...]] = {}
        self.unresolved: set[KeyPath] = set()
        self.problems: list[YamlProblem] = []
        self._constructor = SafeConstructor()
        # Nodes being built right now: an alias to one of them would recurse forever.
        self._building: set[int] = set()

    def problem(self, node: Node, path: KeyPath, message: str) -> None:
        self.problems.append(YamlProblem(_line(node), path, message))

    def build(self, node: Node, path: KeyPath) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._building:
            self.problem(node, path, "an alias refers to a node that contains it")
            self.unresolved.add(path)
            return None
        self._building.add(id(node))
        try:
            if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
                return self._mapping(node, path)
            if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
                return self._sequence(node, path)
            self.problem(node, path, f"unsupported YAML tag {node.tag!r}")
            self.unresolved.add(path)
            return None
        finally:
            self._building.discard(id(node))

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        if node.tag == _STR_TAG and "${" in node.value:
            # Interpolated values stay strings: the model's lax validation turns "8080" into
            # 8080 where an int is wanted, and keeps "0012" intact where a string is.
            try:
                value, used = interpolate(node.value, self.environ)
            except InterpolationError as exc:
                self.problem(node, path, str(exc))
                self.unresolved.add(path)
                return node.value
            if used:
                self.env_values[path] = used
            return value
        return self._construct(node, path)

    def _construct(self, node: ScalarNode, path: KeyPath) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.problem(node, path, exc.problem or str(exc))
            self.unresolved.add(path)
            return node.value

    def _sequence(self, node: SequenceNode, path: KeyPath) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.lines[(*path, index)] = _line(item)
            items.append(self.build(item, (*path, index)))
        return items

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        # Keys are resolved first and values built once, so a merged (`<<: *base`) key that
        # an explicit key overrides leaves no stray line, env note or problem behind.
        entries: dict[Any, tuple[Node, Node]] = {}
        for key_node, value_node in self._merged_pairs(node, path):
            key = self._key(key_node, path)
            if key is not _INVALID:
                entries[key] = (key_node, value_node)
        explicit_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node, path)
            if key is _INVALID:
                continue
            if key in explicit_lines:
                self.problem(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r} (first defined on line {explicit_lines[key]})",
                )
            explicit_lines[key] = _line(key_node)
            entries[key] = (key_node, value_node)

        result: dict[Any, Any] = {}
        for key, (key_node, value_node) in entries.items():
            self.lines[(*path, key)] = _line(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, node: Node, path: KeyPath) -> Any:
        if not isinstance(node, ScalarNode):
            self.problem(node, path, "a mapping key must be a plain value, not a list or mapping")
            return _INVALID
        try:
            return self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.problem(node, path, exc.problem or str(exc))
            return _INVALID

    def _merged_pairs(self, node: MappingNode, path: KeyPath) -> list[tuple[Node, Node]]:
        """The pairs that ``<<`` merge keys bring in, lowest precedence first (as PyYAML)."""
        pairs: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                continue
            if isinstance(value_node, MappingNode):
                sources = [value_node]
            elif isinstance(value_node, SequenceNode) and all(
                isinstance(item, MappingNode) for item in value_node.value
            ):
                # In `<<: [*a, *b]` the first mapping wins, so it is applied last.
                sources = list(reversed(value_node.value))
            else:
                self.problem(value_node, path, "'<<' must merge a mapping or a list of mappings")
                continue
            for source in sources:
                if id(source) in self._building:
                    self.problem(source, path, "a merge refers to a mapping that contains it")
                    continue
                self._building.add(id(source))
                try:
                    pairs.extend(self._merged_pairs(source, path))
                finally:
                    self._building.discard(id(source))
                pairs.extend((k, v) for k, v in source.value if k.tag != _MERGE_TAG)
        return pairs


class _Invalid:
    """Marks a key that could not be built (already reported)."""


_INVALID = _Invalid()

"""Load and validate a config file, reporting every problem in it at once.

An operator fixing a config wants the whole list, each with file, line and key path::

    3 problems in config/lille.yaml
    config/lille.yaml:14 connectors[2].refresh: '5 minutes' is not a duration (examples: ...)
    ...

so nothing stops at the first error: the YAML layer collects what it can, each section and
each connector entry is validated on its own, and pydantic's errors are mapped back to lines
and rewritten in plain words (:mod:`.issues`). Values read from the environment are never
echoed.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel

from aggregator.config.issues import ConfigError, ConfigIssue, IssueReport, unknown_key
from aggregator.config.models import (
    BeffroiConfig,
    CatalogConfig,
    ClockConfig,
    ConnectorConfig,
    DefaultsConfig,
    ServerConfig,
    StoreConfig,
)
from aggregator.config.notifications import NotificationsConfig
from aggregator.config.yaml_source import KeyPath, YamlDocument, YamlSyntaxError, load_yaml

__all__ = ["load_config", "parse_config"]

_SECTIONS: dict[str, type[BaseModel]] = {
    "server": ServerConfig,
    "store": StoreConfig,
    "defaults": DefaultsConfig,
    "clock": ClockConfig,
    "catalog": CatalogConfig,
    "notifications": NotificationsConfig,
}
_TOP_LEVEL_KEYS = (*_SECTIONS, "connectors")
_SECRET_PARAMS = frozenset(
    {"key", "apikey", "api_key", "token", "access_token", "secret", "password", "signature", "sig"}
)
# Connector fields whose values are secrets whatever the type (api_key, client_secret...). Only
# top-level fields count: nested mappings (field specs) use words like "key" for other things.
_SECRET_FIELD = re.compile(r"(?:^|_)(?:api_?key|token|secret|password|passwd)$", re.I)
# Env values and header values shorter than this are not treated as secrets: the redactor masks
# every occurrence, and masking "fr", "8080" or "2" would garble every log line; no real key
# or token is that short. Values named as secrets (tokens, passwords) count whatever their length.
_MIN_IMPLICIT_SECRET = 6


def load_config(
    path: str | Path,
    *,
    connector_types: Mapping[str, type[ConnectorConfig]],
    environ: Mapping[str, str] | None = None,
    require_sources: bool = False,
) -> BeffroiConfig:
    """Read and validate the config file at ``path``; raise :class:`ConfigError` on problems.

    With ``require_sources``, a file with no enabled source is a problem too: ``beffroi check``
    and a reload refuse it (a reload would otherwise take every running source offline).
    """
    path = Path(path)
    filename = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        issue = ConfigIssue(filename, None, "", f"cannot read the file: {reason}")
        raise ConfigError([issue]) from None
    source_path = path.resolve()
    return _parse(
        text,
        filename,
        connector_types,
        environ,
        source_path.parent,
        source_path,
        require_sources=require_sources,
    )


def parse_config(
    text: str,
    *,
    filename: str,
    connector_types: Mapping[str, type[ConnectorConfig]],
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> BeffroiConfig:
    """Validate config ``text`` (named ``filename`` in messages); raise :class:`ConfigError`."""
    return _parse(text, filename, connector_types, environ, base_dir, None)


def _parse(
    text: str,
    filename: str,
    connector_types: Mapping[str, type[ConnectorConfig]],
    environ: Mapping[str, str] | None,
    base_dir: Path | None,
    source_path: Path | None,
    *,
    require_sources: bool = False,
) -> BeffroiConfig:
    try:
        doc = load_yaml(text, environ=environ)
    except YamlSyntaxError as exc:
        raise ConfigError([ConfigIssue(filename, exc.line, "", exc.message)]) from None

    report = IssueReport(filename, doc)
    for problem in doc.problems:
        report.add(problem.path, problem.message, line=problem.line)

    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        report.add((), "the file must be a mapping with keys " + ", ".join(_TOP_LEVEL_KEYS))
        raise report.error()
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            report.add((key,), unknown_key(key, _TOP_LEVEL_KEYS))

    sections = {
        name: report.validate(model, {} if data.get(name) is None else data[name], (name,))
        for name, model in _SECTIONS.items()
    }
    connectors = _validate_connectors(report, data.get("connectors"), connector_types)
    if require_sources:
        _require_a_source(report, doc.data, connectors)

    defaults = sections["defaults"]
    if isinstance(defaults, DefaultsConfig) and not defaults.allow_file_urls:
        for index, connector in connectors:
            for key, url in connector.source_urls().items():
                if url.lower().startswith("file:"):
                    report.add(
                        ("connectors", index, *key),
                        "file: URLs are disabled; set `defaults.allow_file_urls: true` "
                        "to read local files",
                    )
    _check_references(report, connectors)
    _require_shared_cursor_secret(report, sections)

    if report.issues:
        raise report.error()
    entries = [connector for _, connector in connectors]
    return BeffroiConfig(
        **sections,
        connectors=entries,
        source_path=source_path,
        base_dir=base_dir,
        secrets=_collect_secrets(sections, entries, doc),
    )


def _require_a_source(
    report: IssueReport, data: Any, connectors: list[tuple[int, ConnectorConfig]]
) -> None:
    """Report a file that would serve nothing."""
    if data is None:
        report.add((), "the file is empty (or only comments): no source is configured")
        return
    raw = data.get("connectors")
    if not raw:
        report.add(
            ("connectors",) if "connectors" in data else (),
            "no source is configured: list at least one under `connectors`",
        )
    elif (
        isinstance(raw, list)
        and len(connectors) == len(raw)  # else the entries with problems are reported
        and not any(connector.enabled for _, connector in connectors)
    ):
        report.add(("connectors",), "every source is disabled (`enabled: false`)")


def _require_shared_cursor_secret(report: IssueReport, sections: Mapping[str, Any]) -> None:
    """Several processes share a Redis store: each must sign cursors with the same key.

    Without one, every process draws its own random key, and a page cursor issued by one API
    process is refused (400) by the next request's process. ``serve --workers`` needs the
    Redis store, so this covers it too.
    """
    server, store = sections.get("server"), sections.get("store")
    if not isinstance(server, ServerConfig) or not isinstance(store, StoreConfig):
        return
    if store.backend == "redis" and not server.cursor_secret:
        report.add(
            ("server", "cursor_secret"),
            "required with the redis store: every process must sign page cursors with the same "
            "secret (set it from the environment, e.g. ${BEFFROI_CURSOR_SECRET})",
        )


def _check_references(report: IssueReport, connectors: list[tuple[int, ConnectorConfig]]) -> None:
    """Each source another one names exists, with the type it must have."""
    types = {connector.id: connector.type for _, connector in connectors}
    for index, connector in connectors:
        for key, (source_id, wanted) in connector.referenced_sources().items():
            if source_id not in types:
                known = sorted(i for i, t in types.items() if t == wanted)
                report.add(
                    ("connectors", index, key),
                    f"no source {source_id!r} is configured"
                    + (f" ({wanted} sources: {', '.join(known)})" if known else ""),
                )
            elif types[source_id] != wanted:
                report.add(
                    ("connectors", index, key),
                    f"source {source_id!r} is a {types[source_id]} source, not {wanted}",
                )


def _validate_connectors(
    report: IssueReport, raw: Any, connector_types: Mapping[str, type[ConnectorConfig]]
) -> list[tuple[int, ConnectorConfig]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        report.add(("connectors",), "must be a list of connector entries (each starting with '- ')")
        return []
    valid: list[tuple[int, ConnectorConfig]] = []
    first_use: dict[str, int] = {}
    for index, entry in enumerate(raw):
        path: KeyPath = ("connectors", index)
        if not isinstance(entry, dict):
            report.add(path, "must be a mapping (a connector entry with id, type, ...)")
            continue
        connector = None
        type_name = entry.get("type")
        if "type" not in entry:
            report.add((*path, "type"), "required key is missing")
        elif not isinstance(type_name, str) or type_name not in connector_types:
            report.add((*path, "type"), _unknown_type(type_name, connector_types))
        else:
            connector = report.validate(connector_types[type_name], entry, path)
            if connector is not None:
                valid.append((index, connector))

        source_id = connector.id if connector is not None else entry.get("id")
        if not isinstance(source_id, str):
            continue
        if source_id in first_use:
            first = first_use[source_id]
            report.add(
                (*path, "id"),
                f"duplicate id '{source_id}' (already used by connectors[{first}] "
                f"on line {report.doc.line_of(('connectors', first))})",
            )
        else:
            first_use[source_id] = index
    return valid


def _unknown_type(name: Any, connector_types: Mapping[str, Any]) -> str:
    known = sorted(connector_types)
    hint = ""
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    if close:
        hint = f" (did you mean '{close[0]}'?)"
    return f"unknown connector type '{name}'{hint}; known types: {', '.join(known) or '(none)'}"


def _collect_secrets(
    sections: Mapping[str, Any], connectors: Sequence[ConnectorConfig], doc: YamlDocument
) -> frozenset[str]:
    found: set[str] = set()
    server = sections["server"]
    found.update(s for s in (server.admin_token, server.cursor_secret) if s)
    notifications = sections["notifications"]
    found.add(notifications.vapid_private_key)
    found.update(_url_secrets(notifications.database))  # a PostgreSQL URL's password
    if notifications.fcm is not None:
        found.add(notifications.fcm.service_account)
        with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
            found.add(json.loads(notifications.fcm.service_account)["private_key"])
    for connector in connectors:
        found.update(v for v in connector.headers.values() if len(v) >= _MIN_IMPLICIT_SECRET)
    for values in doc.env_values.values():
        found.update(v for v in values if len(v) >= _MIN_IMPLICIT_SECRET)
    dumps = [sections["store"].model_dump(), *(c.model_dump() for c in connectors)]
    for dump in dumps:
        found.update(v for k, v in dump.items() if isinstance(v, str) and _SECRET_FIELD.search(k))
    # Any URL anywhere (a type may have several: trip_updates_url, alerts_url...).
    for value in _strings(dumps):
        if "://" in value or value.lower().startswith("file:"):
            found.update(_url_secrets(value))
    found.discard("")
    return frozenset(found)


def _strings(value: Any) -> Iterator[str]:
    """Every string in nested dicts and lists."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _url_secrets(url: str) -> set[str]:
    """The userinfo password and secret-looking query values of ``url``, raw and decoded."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return found
    if password:
        found.update({password, unquote(password)})
    for pair in parts.query.split("&"):
        name, sep, raw = pair.partition("=")
        if sep and raw and unquote(name).lower() in _SECRET_PARAMS:
            found.add(raw)
    found.update(
        value
        for name, value in parse_qsl(parts.query, keep_blank_values=False)
        if name.lower() in _SECRET_PARAMS
    )
    return found

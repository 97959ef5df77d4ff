"""Finds connector types through the ``beffroi.connectors`` entry-point group."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from aggregator.config.models import ConnectorConfig
from aggregator.connector import Connector

ENTRY_POINT_GROUP = "beffroi.connectors"

log = logging.getLogger(__name__)


class RegistryError(Exception):
    """A connector plugin is broken (it fails to import or is not a Connector)."""


def discover_connector_types() -> dict[str, type[Connector]]:
    """Every installed connector type, by the name the YAML ``type:`` key uses."""
    found: dict[str, type[Connector]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:
            raise RegistryError(
                f"connector plugin {entry.name!r} ({entry.value}) failed to import: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
            raise RegistryError(f"connector plugin {entry.name!r} is not a Connector subclass")
        if entry.name in found and found[entry.name] is not loaded:
            raise RegistryError(f"two connector plugins claim the type name {entry.name!r}")
        found[entry.name] = loaded
    return found


def config_models(types: dict[str, type[Connector]]) -> dict[str, type[ConnectorConfig]]:
    """The config model of each type, as the config loader wants them."""
    return {name: cls.config_model for name, cls in types.items()}

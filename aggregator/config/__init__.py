"""Beffroi's configuration: a YAML file validated into frozen pydantic models.

Public API::

    load_config(path, *, connector_types, environ=None) -> BeffroiConfig
    parse_config(text, *, filename, connector_types, environ=None, base_dir=None)
    ConfigError            every problem of a file at once; .issues is a list of ConfigIssue
    └── ConfigIssue        file, line, path, message; str() is "file:line path: message"

Connector types describe their own keys by subclassing :class:`ConnectorConfig` (or
:class:`UrlConnectorConfig`); the loader validates each entry with the model of its ``type``.
"""

from aggregator.config.issues import ConfigError, ConfigIssue
from aggregator.config.loader import load_config, parse_config
from aggregator.config.models import (
    BeffroiConfig,
    ClockConfig,
    ConnectorConfig,
    DefaultsConfig,
    ServerConfig,
    StoreConfig,
    UrlConnectorConfig,
    file_url_path,
)
from aggregator.config.types import (
    ByteSize,
    Duration,
    Schedule,
    SourceId,
    format_duration,
    parse_byte_size,
    parse_duration,
    parse_schedule,
)

__all__ = [
    "BeffroiConfig",
    "ByteSize",
    "ClockConfig",
    "ConfigError",
    "ConfigIssue",
    "ConnectorConfig",
    "DefaultsConfig",
    "Duration",
    "Schedule",
    "ServerConfig",
    "SourceId",
    "StoreConfig",
    "UrlConnectorConfig",
    "file_url_path",
    "format_duration",
    "load_config",
    "parse_byte_size",
    "parse_config",
    "parse_duration",
    "parse_schedule",
]

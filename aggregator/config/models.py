"""The shape of a Beffroi config file, as pydantic models.

Every model forbids unknown keys (a typo must fail loudly, not be ignored) and is frozen (the
config is read once and shared by every task). Connector types subclass
:class:`ConnectorConfig`, or :class:`UrlConnectorConfig` when they fetch one URL, and add their
own keys; the loader picks the model from each entry's ``type``.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SerializeAsAny,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from aggregator import __version__
from aggregator.config.licences import check_licence
from aggregator.config.notifications import NotificationsConfig
from aggregator.config.types import ByteSize, Duration, Schedule, SourceId
from aggregator.origins import normalize_origin

__all__ = [
    "BeffroiConfig",
    "ClockConfig",
    "ConnectorConfig",
    "DefaultsConfig",
    "ServerConfig",
    "StoreConfig",
    "UrlConnectorConfig",
    "check_source_url",
    "file_url_path",
]

_log = logging.getLogger(__name__)

# YAML reads `title: 2024` or `X-Client: 12` as numbers; an operator means the text.
_STRICT = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

_ORIGIN = re.compile(r"https?://[^/\s?#]+")
_LANGUAGE = re.compile(r"[a-z]{2}(-[A-Z]{2})?")
_URL_SCHEMES_HELP = "http://, https://, file:relative/path or file:///absolute/path"


def _check_origin(value: str) -> str:
    if value != "*" and not _ORIGIN.fullmatch(value):
        raise PydanticCustomError(
            "origin_invalid",
            "'{value}' is not an origin: use '*' or scheme://host[:port] with no path "
            "(e.g. 'https://app.example.org')",
            {"value": value},
        )
    return value


def _check_allowed_origin(value: str) -> str:
    try:
        return normalize_origin(value)
    except ValueError:
        raise PydanticCustomError(
            "allowed_origin_invalid",
            "'{value}' is not an origin: use scheme://host[:port] with http or https and no "
            "path (e.g. 'https://cdn.example.org')",
            {"value": value},
        ) from None


def _check_language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise PydanticCustomError(
            "language_invalid",
            "'{value}' is not a language tag (use e.g. 'fr', 'en' or 'fr-BE')",
            {"value": value},
        )
    return value


class RateLimitConfig(BaseModel):
    """A token bucket per client IP: ``rate`` requests per second, bursts up to ``burst``."""

    model_config = _STRICT

    enabled: bool = False
    rate: float = Field(10.0, gt=0)
    burst: int = Field(40, ge=1)
    #: Deprecated, read as ``trusted_proxies: 1``: it used to take the *leftmost*
    #: X-Forwarded-For address, which the client writes.
    trust_forwarded_for: bool = False
    #: How many reverse proxies in front of Beffroi append to X-Forwarded-For: the client is
    #: the address the outermost one wrote, this many entries from the right. 0: the peer.
    trusted_proxies: int = Field(0, ge=0, le=16)
    #: Or the proxies' networks: from the peer leftwards, addresses in these are proxies and
    #: the first one outside them is the client (a peer outside them is the client itself).
    trusted_proxy_cidrs: list[IPvAnyNetwork] = []

    @model_validator(mode="after")
    def _one_way_to_trust_proxies(self) -> RateLimitConfig:
        chosen = [
            name
            for name, value in (
                ("trust_forwarded_for", self.trust_forwarded_for),
                ("trusted_proxies", self.trusted_proxies),
                ("trusted_proxy_cidrs", self.trusted_proxy_cidrs),
            )
            if value
        ]
        if len(chosen) > 1:
            raise PydanticCustomError(
                "proxy_trust_conflict",
                "set only one of {chosen}: trusted_proxies (how many proxies append to "
                "X-Forwarded-For) or trusted_proxy_cidrs (their networks)",
                {"chosen": ", ".join(chosen)},
            )
        if self.trust_forwarded_for:
            _log.warning(
                "server.rate_limit.trust_forwarded_for is deprecated and now means "
                "trusted_proxies: 1 (the address your proxy saw, not the leftmost one, which "
                "clients can forge); write trusted_proxies: N for N proxies"
            )
        return self

    @property
    def proxy_hops(self) -> int:
        """How many X-Forwarded-For entries, from the right, trusted proxies wrote."""
        return 1 if self.trust_forwarded_for else self.trusted_proxies


class ServerConfig(BaseModel):
    """The HTTP API: where it listens and who may call it."""

    model_config = _STRICT

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    cors_origins: list[Annotated[str, AfterValidator(_check_origin)]] = []
    # Secrets stay out of repr() so that logging a config never leaks them.
    admin_token: str | None = Field(None, repr=False)
    cursor_secret: str | None = Field(None, repr=False)
    shutdown_timeout: Duration = 10.0
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    #: When set, the operator routes (status page, sources' statuses, metrics, admin API)
    #: answer only on this port, which the process also listens on, at ``operator_host``.
    operator_port: int | None = Field(None, ge=1, le=65535)
    operator_host: str = "127.0.0.1"

    @field_validator("operator_port")
    @classmethod
    def _operator_port_is_its_own(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value == info.data.get("port"):
            raise PydanticCustomError(
                "operator_port_taken", "must differ from `port` (the public port)"
            )
        return value

    #: Live streams (/v1/stream) one process keeps open at most.
    max_streams: int = Field(1000, ge=1)
    #: Live streams one client (as the rate limiter counts clients) keeps open at most.
    max_streams_per_client: int = Field(8, ge=1)
    #: A comment line sent on idle streams so proxies and phones keep them open.
    stream_heartbeat: Duration = 15.0
    #: Identical public requests within this time are answered from one rendering (the
    #: response micro-cache, voided when the data changes, never kept longer than the
    #: answer's own max-age); null turns it off.
    response_cache_ttl: Duration | None = 1.0
    #: What the response micro-cache may hold at most (bodies, keys, headers), per process.
    response_cache_bytes: ByteSize = Field(32_000_000, ge=1)
    #: Failed admin authentications one client may make per window before every admin call
    #: from it is refused (429) until the window ends; applies with or without rate_limit.
    admin_max_failures: int = Field(10, ge=1)
    admin_failure_window: Duration = 600.0
    #: A connection must send a request's headers within this time, from when it connects or
    #: from the first byte of a following request; else it is closed (slowloris).
    header_timeout: Duration = Field(10.0, gt=0)
    #: How long an idle kept-alive connection stays open waiting for its next request.
    keepalive_timeout: Duration = Field(75.0, gt=0)


class StoreConfig(BaseModel):
    """Where snapshots live: in this process, or in Redis shared by several processes."""

    model_config = _STRICT

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = Field(None, validate_default=True, repr=False)
    key_prefix: str = "beffroi:"
    #: A poller holds each source's lock this long, renewing it while alive; when it dies,
    #: another poller takes its sources within about this time.
    lock_ttl: Duration = 15.0

    @field_validator("url")
    @classmethod
    def _url_fits_backend(cls, url: str | None, info: ValidationInfo) -> str | None:
        # `backend` is declared first, so it is in info.data when it was valid.
        if info.data.get("backend") == "redis" and not url:
            raise PydanticCustomError(
                "redis_url_missing",
                "required when backend is 'redis' (e.g. redis://localhost:6379/0)",
            )
        if url and urlsplit(url).scheme.lower() not in ("redis", "rediss", "unix"):
            raise PydanticCustomError(
                "redis_url_invalid", "must be a redis://, rediss:// or unix:// URL"
            )
        return url


class DefaultsConfig(BaseModel):
    """Deployment-wide settings every source inherits."""

    model_config = _STRICT

    timezone: str = "Europe/Paris"
    #: The first language is the default one served when a client asks for none we have.
    languages: list[Annotated[str, AfterValidator(_check_language)]] = Field(
        default_factory=lambda: ["fr", "en"], min_length=1
    )
    allow_file_urls: bool = False
    user_agent: str = f"beffroi/{__version__}"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone_unknown",
                "unknown time zone '{name}' (use an IANA name such as 'Europe/Paris')",
                {"name": name},
            ) from None
        return name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The zone as an object (ZoneInfo caches instances, so this is cheap)."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def default_language(self) -> str:
        """The language used when a request names none that we serve."""
        return self.languages[0]


class ClockConfig(BaseModel):
    """The time Beffroi answers for: the system clock unless one of these is set.

    ``fixed`` freezes "now" at one instant; ``start`` begins at an instant and then runs at
    normal speed (to replay recorded feeds, or to demo a timetable whose dates have passed).
    """

    model_config = _STRICT

    fixed: datetime | None = None
    start: datetime | None = None

    @field_validator("fixed", "start")
    @classmethod
    def _has_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise PydanticCustomError(
                "datetime_naive",
                "'{value}' has no UTC offset (e.g. 2026-03-29T08:00:00+02:00)",
                {"value": value.isoformat()},
            )
        return value

    @field_validator("start")
    @classmethod
    def _one_mode(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and info.data.get("fixed") is not None:
            raise PydanticCustomError("clock_modes", "give either 'fixed' or 'start', not both", {})
        return value


class ConnectorConfig(BaseModel):
    """What every source has, whatever its type; types subclass this with their own keys."""

    model_config = _STRICT

    id: SourceId
    type: str
    title: str | None = None
    refresh: Schedule = Schedule.every(300)
    timeout: Duration = 30.0
    required: bool = False
    #: ``None`` means three nominal refresh intervals: see :meth:`stale_after_seconds`.
    stale_after: Duration | None = None
    max_bytes: ByteSize = 50_000_000
    retries: int = Field(2, ge=0, le=10)
    #: An upstream's Retry-After is honoured up to this (then the next attempt is at this
    #: delay): a publisher asking a minute-by-minute source to wait a day is likely mistaken.
    max_retry_after: Duration = Field(3600.0, gt=0)
    # Header values are often API keys: kept out of repr() and listed in the config's secrets.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    enabled: bool = True
    #: The terms under which the source's data may be re-published: an SPDX identifier
    #: (``etalab-2.0``, ``ODbL-1.0``, ``CC-BY-4.0``) or the licence's URL; and the credit to
    #: show with it ("© Ilévia"). Answers carry both in ``meta.sources``.
    licence: Annotated[str, AfterValidator(check_licence)] | None = None
    attribution: str | None = None
    #: What the data is, for the open-data catalogue (/v1/catalog).
    description: str | None = None
    #: Other origins a URL read from an upstream body (GBFS discovery...) may point to; the
    #: configured origin is always allowed, and configured headers never go to these.
    allowed_origins: list[Annotated[str, AfterValidator(_check_allowed_origin)]] = []

    def stale_after_seconds(self, *, now: datetime | None = None) -> float:
        """After how long without a successful poll the data is flagged stale."""
        if self.stale_after is not None:
            return self.stale_after
        return 3 * self.refresh.nominal_interval(now=now)

    def source_urls(self) -> dict[tuple[str | int, ...], str]:
        """Every URL this source fetches, by its key path inside the entry."""
        return {}

    def referenced_sources(self) -> dict[str, tuple[str, str]]:
        """Other sources this one needs, by key: ``{key: (source id, required type)}``.

        The loader checks that each exists with that type (a realtime feed names its timetable).
        """
        return {}


def check_source_url(url: str) -> str:
    """``url`` if it is a URL a source may fetch; a validation error naming the schemes if not."""
    lowered = url.lower()
    if lowered.startswith(("http://", "https://")):
        if urlsplit(url).hostname:
            return url
    elif lowered.startswith("file:///"):
        if len(url) > len("file:///"):
            return url
    elif lowered.startswith("file:") and not lowered.startswith("file:/") and url[5:]:
        return url
    raise PydanticCustomError(
        "url_unsupported",
        "'{url}' is not a supported URL: use {schemes}",
        {"url": url, "schemes": _URL_SCHEMES_HELP},
    )


class UrlConnectorConfig(ConnectorConfig):
    """A source read from one URL: ``http(s)://``, or a local ``file:`` (``allow_file_urls``)."""

    url: Annotated[str, AfterValidator(check_source_url)]

    def source_urls(self) -> dict[tuple[str | int, ...], str]:
        return {("url",): self.url}


def file_url_path(url: str, base_dir: Path | None = None) -> Path | None:
    """The local path a ``file:`` URL names (relative ones against ``base_dir``); else ``None``."""
    if not url.lower().startswith("file:"):
        return None
    path = Path(unquote(urlsplit(url).path))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


class CatalogConfig(BaseModel):
    """How the open-data catalogue (/v1/catalog, DCAT-AP) presents the deployment."""

    model_config = _STRICT

    title: str = "Beffroi open data"
    description: str = (
        "The live data of the territory's public feeds (transit, events, places...), "
        "as this Beffroi deployment re-publishes it."
    )
    #: Who publishes the catalogue (DCAT-AP requires one): by default, its title.
    publisher: str | None = None
    publisher_url: Annotated[str, AfterValidator(check_source_url)] | None = None
    #: The public address of the API (e.g. https://api.city.example): the base of every
    #: address the catalogue gives. By default, the address a request was made to.
    public_url: Annotated[str, AfterValidator(check_source_url)] | None = None
    #: The licence of the catalogue's own metadata.
    licence: Annotated[str, AfterValidator(check_licence)] | None = "etalab-2.0"


class BeffroiConfig(BaseModel):
    """A whole validated config file, as :func:`aggregator.config.load_config` returns it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    clock: ClockConfig = Field(default_factory=ClockConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    # SerializeAsAny: each entry is its type's subclass, and a dump must keep its own keys.
    connectors: list[SerializeAsAny[ConnectorConfig]] = []
    #: The file the config was read from (``None`` when parsed from a string).
    source_path: Path | None = None
    #: The directory relative ``file:`` URLs are resolved against (the file's, when loaded).
    base_dir: Path | None = None
    #: Strings to redact wherever they would be shown (tokens, keys, passwords, env values).
    secrets: frozenset[str] = Field(default_factory=frozenset, repr=False, exclude=True)

    def connector(self, source_id: str) -> ConnectorConfig:
        """The source with this id; ``KeyError`` when there is none."""
        for connector in self.connectors:
            if connector.id == source_id:
                return connector
        raise KeyError(source_id)

    @property
    def files_dir(self) -> Path | None:
        """The folder relative ``file:`` URLs start from: ``base_dir``, else the file's."""
        if self.base_dir is not None:
            return self.base_dir
        return self.source_path.parent if self.source_path is not None else None

    def local_path(self, url: str) -> Path | None:
        """Where a ``file:`` URL of this config points; ``None`` for other URLs."""
        return file_url_path(url, self.files_dir)

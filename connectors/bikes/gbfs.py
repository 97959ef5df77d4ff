"""The ``gbfs`` connector type: bike share stations from GBFS (1.x/pre-2.x, 2.x, 3.0).

::

    - id: lovelo
      type: gbfs
      discovery_url: https://example.org/gbfs/gbfs.json      # auto-discovery, or:
      files:                                                 # each file's URL directly
        station_information: https://example.org/gbfs/station_information.json
        station_status: https://example.org/gbfs/station_status.json
      refresh: 1m

The feed URLs a ``gbfs.json`` lists are taken only on the discovery URL's origin (or one of
the source's ``allowed_origins``, fetched without the configured headers), never ``file:``;
a refused optional file is an issue, a refused station file fails the poll.

Each file's ``ttl`` is honoured: a file is not requested again before its ttl has run out
(the discovery file included), and when it is, the request is conditional. The stations'
freshness follows the publisher's ``last_updated``, not the time of our poll.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, Field, model_validator

from aggregator.config.models import ConnectorConfig, check_source_url
from aggregator.config.types import Duration, Schedule
from aggregator.connector import Connector
from aggregator.fetch import Fetcher
from aggregator.fetch_errors import FetchError
from aggregator.fetch_result import FetchResult, Validators
from aggregator.model import ParseResult
from aggregator.origins import UrlFromBody

from . import gbfs_files as files
from .model import BikeNetwork, repair_texts, station_record
from .source import BikeSource

FileName = Literal[
    "station_information",
    "station_status",
    "system_information",
    "vehicle_types",
    "free_bike_status",
    "vehicle_status",
    "system_alerts",
]
SourceUrl = Annotated[str, AfterValidator(check_source_url)]
_FRAME = struct.Struct(">BI")  # file index (255: fetch problems), body length
_PROBLEMS = 255
#: A publisher's ttl beyond this is not believed: availability a day old is no availability.
MAX_TTL_S = 3600


class GbfsConfig(ConnectorConfig):
    """Keys of a ``gbfs`` source."""

    discovery_url: SourceUrl | None = None
    files: dict[FileName, SourceUrl] = Field(default_factory=dict)
    refresh: Schedule = Schedule.every(60)
    timeout: Duration = 20.0
    #: Availability older than this (by the publisher's last_updated) is flagged stale.
    max_age: Duration = 300.0
    #: The feed language to read in a 2.x discovery file (default: the deployment's languages).
    language: str | None = None

    @model_validator(mode="after")
    def _discovery_or_files(self) -> GbfsConfig:
        if self.discovery_url is None:
            missing = [name for name in files.STATION_FILES if name not in self.files]
            if missing:
                raise ValueError(
                    "give discovery_url (the system's gbfs.json), or files with at least "
                    f"station_information and station_status (missing: {', '.join(missing)})"
                )
        return self

    def source_urls(self) -> dict[tuple[str | int, ...], str]:
        urls: dict[tuple[str | int, ...], str] = {("files", k): v for k, v in self.files.items()}
        if self.discovery_url is not None:
            urls[("discovery_url",)] = self.discovery_url
        return urls


@dataclass
class _Cached:
    """The last body of one file, and until when its ttl lets us reuse it without asking."""

    url: str
    body: bytes
    validators: Validators
    fresh_until: float
    #: It came through a public address (feed URLs it lists may then not lead inside).
    public: bool = False


def _ttl(body: bytes) -> float:
    try:
        ttl = orjson.loads(body).get("ttl")
    except (orjson.JSONDecodeError, AttributeError):
        return 0.0
    return float(min(max(ttl, 0), MAX_TTL_S)) if isinstance(ttl, int | float) else 0.0


class GbfsConnector(BikeSource, Connector[GbfsConfig]):
    """Fetches the system's files (each within its ttl) and joins them into stations."""

    type_name = "gbfs"
    config_model = GbfsConfig

    def __init__(self, config: GbfsConfig, context: Any) -> None:
        super().__init__(config, context)
        self._cache: dict[str, _Cached] = {}
        #: Seconds on a monotonic clock; ttl is wall time elapsed, whatever the demo clock says.
        self.monotonic: Callable[[], float] = time.monotonic

    async def _get(
        self, fetcher: Fetcher, name: str, url: str, from_body: UrlFromBody | None = None
    ) -> tuple[bytes, bool, int]:
        """The body of ``url`` (from cache while its ttl runs), whether it changed, attempts.

        ``from_body`` when ``url`` was read from the discovery file rather than configured.
        """
        cached = self._cache.get(name)
        now = self.monotonic()
        if cached is not None and cached.url == url and now < cached.fresh_until:
            return cached.body, False, 0
        config = self.config
        result = await fetcher.fetch(
            url,
            timeout=config.timeout,
            max_bytes=config.max_bytes,
            headers=config.headers,
            validators=cached.validators if cached is not None and cached.url == url else None,
            retries=config.retries,
            base_dir=self.context.base_dir,
            allow_file=self.context.allow_file_urls,
            redactor=self.context.redactor,
            from_body=from_body,
        )
        if result.not_modified and cached is not None:
            cached.fresh_until = now + _ttl(cached.body)
            cached.public = result.passed_public
            return cached.body, False, result.attempts
        self._cache[name] = _Cached(
            url, result.body, result.validators, now + _ttl(result.body), result.passed_public
        )
        return result.body, True, result.attempts

    async def _urls(self, fetcher: Fetcher) -> tuple[dict[str, str], UrlFromBody | None, bool, int]:
        """Each file's URL, the discovery file they came from (if any), changed, attempts."""
        urls: dict[str, str] = {}
        discovered: UrlFromBody | None = None
        changed, attempts = False, 0
        if self.config.discovery_url is not None:
            body, changed, attempts = await self._get(fetcher, "gbfs", self.config.discovery_url)
            try:
                document = orjson.loads(body)
                languages = [self.config.language] if self.config.language else []
                found, _version = files.discovery_feeds(
                    document,
                    self.config.discovery_url,
                    [*languages, *self.context.languages],
                )
            except (orjson.JSONDecodeError, files.GbfsError) as exc:
                self._cache.pop("gbfs", None)  # ask again next time, not after its ttl
                shown = self.context.redactor.redact_url(self.config.discovery_url)
                raise FetchError(f"unusable gbfs.json: {exc}", url=shown) from None
            urls.update({k: v for k, v in found.items() if k in files.FILE_NAMES})
            discovered = UrlFromBody.of(
                self.config.discovery_url,
                self.config.allowed_origins,
                "gbfs.json",
                from_public=self._cache["gbfs"].public,
            )
        urls.update(self.config.files)  # files named in the config override the discovery
        return urls, discovered, changed, attempts

    async def fetch(self, fetcher: Fetcher, validators: Validators | None) -> FetchResult:
        """Fetch every file the system publishes; the payload frames each body with its name."""
        started = time.monotonic()
        urls, discovered, changed, attempts = await self._urls(fetcher)
        shown = self.context.redactor.redact_url(
            self.config.discovery_url or self.config.files["station_status"]
        )
        missing = [name for name in files.STATION_FILES if name not in urls]
        if missing:
            raise FetchError(f"the system publishes no {', '.join(missing)}", url=shown)
        parts: list[bytes] = []
        problems: list[str] = []
        for index, name in enumerate(files.FILE_NAMES):
            if name not in urls:
                continue
            try:
                configured = name in self.config.files
                body, file_changed, tries = await self._get(
                    fetcher, name, urls[name], None if configured else discovered
                )
            except FetchError as exc:
                if name in files.STATION_FILES:
                    raise
                # An optional file (alerts, free bikes) failing must not hide the stations.
                problems.append(f"{name}: {exc}")
                continue
            changed = changed or file_changed
            attempts += tries
            parts.append(_FRAME.pack(index, len(body)) + body)
        if problems:
            blob = orjson.dumps(problems)
            parts.append(_FRAME.pack(_PROBLEMS, len(blob)) + blob)
        payload = b"".join(parts)
        return FetchResult(
            url=shown,
            not_modified=not changed and not problems,
            body=payload,
            content_type="application/json",
            validators=Validators(),
            status=200 if changed or problems else 304,
            attempts=attempts,
            elapsed=time.monotonic() - started,
            content_hash=hashlib.sha256(payload).hexdigest(),
        )

    def parse(self, payload: bytes) -> ParseResult:
        documents: dict[str, Any] = {}
        issues: list[str] = []
        offset = 0
        while offset < len(payload):
            index, size = _FRAME.unpack_from(payload, offset)
            offset += _FRAME.size
            body = payload[offset : offset + size]
            offset += size
            if index == _PROBLEMS:
                issues.extend(orjson.loads(body))
                continue
            name = files.FILE_NAMES[index]
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                if name in files.STATION_FILES:
                    raise files.GbfsError(f"{name} is not JSON ({exc})") from None
                issues.append(f"{name} is not JSON, ignored")
                continue
            if not isinstance(document, Mapping):
                raise files.GbfsError(f"{name} is not a GBFS document")
            documents[name] = document
        return self.build(documents, issues)

    def build(self, documents: Mapping[str, Any], issues: list[str]) -> ParseResult:
        """Stations from the parsed GBFS documents (by file name)."""
        source_id, zone = self.config.id, self.context.timezone
        languages = [
            *([self.config.language] if self.config.language else []),
            *self.context.languages,
        ]
        info_rows, status_by_id = files.station_rows(documents)
        if not info_rows and "station_information" in documents:
            raise files.GbfsError("station_information lists no stations")
        electric = files.electric_types(documents.get("vehicle_types"))
        alerts = files.alerts_of(documents.get("system_alerts"), source_id, languages, zone)
        alerts_by_station: dict[str, list[str]] = {}
        for alert in alerts:
            for station_id in alert["station_ids"]:
                alerts_by_station.setdefault(station_id, []).append(alert["id"])
        stations: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, info in enumerate(info_rows, start=1):
            native = info.get("station_id")
            if native is None or str(native) in seen:
                issues.append(f"station {number}: missing or duplicate station_id, skipped")
                continue
            native = str(native)
            try:
                fields = files.station_fields(
                    info,
                    status_by_id.get(native),
                    languages=languages,
                    zone=zone,
                    electric=electric,
                )
            except (TypeError, ValueError) as exc:
                issues.append(f"station {native!r}: {exc}, skipped")
                continue
            repair_texts(fields, f"station {native!r}", issues)
            seen.add(native)
            fields["alert_ids"] = alerts_by_station.get(f"{source_id}:{native}", ())
            stations.append(station_record(source_id, native, fields))
        unknown = sorted(set(status_by_id) - seen)
        if unknown:
            issues.append(
                f"{len(unknown)} stations have a status but no information: {unknown[:5]}"
            )
        last_updated, ttl = files.header(documents.get("station_status"), zone)
        system = (documents.get("system_information") or {}).get("data") or {}
        free = files.free_vehicles(
            documents.get("vehicle_status") or documents.get("free_bike_status")
        )
        network = BikeNetwork(
            source_id=source_id,
            stations=stations,
            last_updated=last_updated,
            max_age_s=self.config.max_age,
            ttl_s=ttl,
            system={
                "name": files.text_of(system.get("name"), languages),
                "operator": files.text_of(system.get("operator"), languages),
            },
            alerts=alerts,
            free_vehicles=free,
        )
        version = files.version_of(documents)
        return ParseResult(
            data=network,
            record_count=len(stations),
            issues=tuple(issues[:50]),
            issue_total=len(issues),
            stats={
                "gbfs_version": version,
                "stations": len(stations),
                "stations_without_status": len(seen - set(status_by_id)),
                "free_vehicles": free,
                "alerts": len(alerts),
                "feed_last_updated": last_updated.isoformat() if last_updated else None,
            },
        )

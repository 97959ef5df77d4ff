"""``mapped_alerts``: a disruption document (JSON, GeoJSON, Opendatasoft, CSV) read through a
YAML field mapping into the same alerts as GTFS-realtime's, on one GTFS timetable::

    - id: ilevia-perturbations
      type: mapped_alerts
      feed: ilevia                        # the gtfs source whose lines and stops are named
      url: https://data.lillemetropole.fr/geoserver/ogc/features/v1/collections/...
      records_path: features
      id_field: properties.identifiant_message
      language: fr
      fields:
        header: properties.message
        severity: properties.type_perturbation
        end: properties.heure_fin_prevue
        lines: properties.cible
      values:
        severity: {Perturbation: warning, Information: info}
      lines: {match: short_name, pattern: "LineRef::(?P<ref>[^:]+):"}

Its alerts join the feed's realtime state (see :func:`connectors.gtfs_rt.views.realtime_for`),
so ``/v1/alerts``, line and stop details, departures, home and stream show them as they show
GTFS-RT alerts. A record that cannot be used is skipped and reported; a line or stop that
matches nothing in the timetable is counted and reported with examples.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.transit import gtfs_realtime_pb2 as pb
from pydantic import Field, field_validator, model_validator

from aggregator.config.models import UrlConnectorConfig
from aggregator.config.types import ByteSize, Schedule
from aggregator.connector import DependencyNotReady, UrlConnector
from aggregator.mapping import FieldSpec, MappingProblem, RecordMapping, compile_path, map_rows
from aggregator.model import ParseResult, Snapshot
from aggregator.notify.notice import Notice
from connectors.gtfs.timetable import Timetable
from connectors.gtfs_rt.connector import RealtimeData
from connectors.gtfs_rt.decode import FeedHeader
from connectors.gtfs_rt.model import AlertRealtime, InformedEntity, TranslatedText
from connectors.gtfs_rt.part import SourcePart
from connectors.gtfs_rt.state import RealtimeState
from connectors.linecap import DEFAULT_MAX_LINE_BYTES
from connectors.records import csv_rows, json_rows

from .resolve import LineRule, Resolver, StopRule, Unresolved, line_resolver, stop_resolver

#: The GTFS-RT enumerations, as the lower-case names alerts carry (``significant_delays``).
ENUMS: dict[str, frozenset[str]] = {
    "cause": frozenset(k.lower() for k, _ in pb.Alert.Cause.items()),
    "effect": frozenset(k.lower() for k, _ in pb.Alert.Effect.items()),
    "severity": frozenset(k.lower() for k, _ in pb.Alert.SeverityLevel.items()),
}
TEXT_FIELDS = ("header", "description", "url")
TIME_FIELDS = ("start", "end")
REFERENCE_FIELDS = ("lines", "stops")
ALERT_FIELDS = frozenset((*TEXT_FIELDS, *ENUMS, *TIME_FIELDS, *REFERENCE_FIELDS))


class MappedAlertsConfig(UrlConnectorConfig):
    """Where the records are, how each becomes an alert, and which timetable it names."""

    feed: str
    format: Literal["json", "csv"] = "json"
    #: JSON: where the list of records is (``features``, ``records``, ``results``).
    records_path: str | None = None
    id_field: str
    fields: dict[str, str | FieldSpec]
    #: Publisher's value → GTFS-RT enum name, for ``cause``, ``effect`` and ``severity``.
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    lines: LineRule = Field(default_factory=LineRule)
    stops: StopRule = Field(default_factory=StopRule)
    #: Language of texts mapped by ``path`` (default: the first of ``defaults.languages``).
    language: str | None = None
    #: Zone of dates written without an offset (default: the timetable's agency zone).
    timezone: str | None = None
    refresh: Schedule = Schedule.every(120)
    # CSV only.
    delimiter: str | None = None
    encoding: str = "auto"
    max_line_bytes: ByteSize = Field(default=DEFAULT_MAX_LINE_BYTES, ge=1024)

    def referenced_sources(self) -> dict[str, tuple[str, str]]:
        return {"feed": (self.feed, "gtfs")}

    @field_validator("id_field", "records_path")
    @classmethod
    def _path_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_path(value)
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str | FieldSpec]) -> dict[str, str | FieldSpec]:
        unknown = sorted(set(value) - ALERT_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown alert field(s) {', '.join(map(repr, unknown))}; "
                f"the fields are {', '.join(sorted(ALERT_FIELDS))}"
            )
        if "header" not in value and "description" not in value:
            raise ValueError("map at least 'header' or 'description': an alert needs a text")
        for spec in value.values():
            if isinstance(spec, str):
                compile_path(spec)
        return value

    @field_validator("values")
    @classmethod
    def _enum_values(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for name, table in value.items():
            if name not in ENUMS:
                raise ValueError(
                    f"values.{name}: only cause, effect and severity take a value map "
                    "(lines and stops take theirs under lines.values / stops.values)"
                )
            for raw, mapped in table.items():
                if mapped.lower() not in ENUMS[name]:
                    raise ValueError(
                        f"values.{name}.{raw}: {mapped!r} is not a GTFS-RT {name} "
                        f"(one of {', '.join(sorted(ENUMS[name]))})"
                    )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not a time zone (e.g. Europe/Paris)") from None
        return value

    @model_validator(mode="after")
    def _csv_options(self) -> MappedAlertsConfig:
        if self.format == "csv" and self.records_path is not None:
            raise ValueError("records_path is for JSON documents; a CSV has one record a row")
        return self


def _specs(fields: dict[str, str | FieldSpec]) -> dict[str, FieldSpec]:
    """Each field with the type the alert needs (texts as text, references as given)."""
    out = {}
    for name, raw in fields.items():
        spec = FieldSpec(path=raw) if isinstance(raw, str) else raw
        if spec.type is None and name not in REFERENCE_FIELDS:
            spec = spec.model_copy(update={"type": "str"})
        out[name] = spec
    return out


class _Builder:
    """Turns mapped records into alerts for one timetable, counting what did not fit."""

    def __init__(self, config: MappedAlertsConfig, tt: Timetable, language: str) -> None:
        self.config = config
        self.tt = tt
        self.language = language
        self.zone = (
            ZoneInfo(config.timezone) if config.timezone else (tt.zones[0] if tt.zones else None)
        )
        self.lines: Resolver = line_resolver(config.lines, tt)
        self.stops: Resolver = stop_resolver(config.stops, tt)
        #: Per enum field, the values no map knows (a few examples; the count goes on).
        self.unmapped: dict[str, Unresolved] = {}

    def text(self, value: Any) -> TranslatedText:
        if value is None:
            return TranslatedText(())
        if isinstance(value, dict):  # from ``translations``
            return TranslatedText(tuple((lang, t) for lang, t in value.items() if t))
        return TranslatedText(((self.language, str(value)),))

    def enum(self, name: str, value: Any) -> str | None:
        if value is None:
            return None
        raw = str(value)
        table = self.config.values.get(name, {})
        mapped = table.get(raw, raw).lower()
        if mapped in ENUMS[name]:
            return mapped
        self.unmapped.setdefault(name, Unresolved()).add(raw[:80])
        return None

    def instant(self, name: str, value: Any, problems: list[str]) -> int | None:
        if value is None:
            return None
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            problems.append(f"field {name!r}: {value!r} is not a date and time, left open")
            return None
        if when.tzinfo is None and self.zone is not None:
            when = when.replace(tzinfo=self.zone)
        return int(when.timestamp())

    def informed(self, mapped: dict[str, Any]) -> tuple[InformedEntity, ...]:
        tt = self.tt
        out: dict[InformedEntity, None] = {}
        for ref in self.lines.references(mapped.get("lines")):
            for route in self.lines.resolve(ref):
                out[InformedEntity(route_id=tt.route_ids[route], route_index=route)] = None
        for ref in self.stops.references(mapped.get("stops")):
            for stop in self.stops.resolve(ref):
                out[InformedEntity(stop_id=tt.stop_ids[stop], stop_index=stop)] = None
        return tuple(out)

    def alert(self, source: str, mapped: dict[str, Any]) -> tuple[AlertRealtime, list[str]]:
        """The alert of a mapped record, and what in it was unusable (and left empty)."""
        header = self.text(mapped.get("header"))
        description = self.text(mapped.get("description"))
        if not header.texts and not description.texts:
            raise MappingProblem("no header nor description text")
        problems: list[str] = []
        start = self.instant("start", mapped.get("start"), problems)
        end = self.instant("end", mapped.get("end"), problems)
        alert = AlertRealtime(
            alert_id=mapped["id"],
            header=header if header.texts else description,
            description=description if header.texts else TranslatedText(()),
            url=self.text(mapped.get("url")),
            cause=self.enum("cause", mapped.get("cause")),
            effect=self.enum("effect", mapped.get("effect")),
            severity=self.enum("severity", mapped.get("severity")),
            active_periods=((start, end),) if start is not None or end is not None else (),
            informed=self.informed(mapped),
            timestamp=None,
            source=source,
        )
        return alert, problems


class MappedAlertsConnector(UrlConnector[MappedAlertsConfig]):
    """Polls the document, maps each record, resolves its lines and stops, keeps the alerts."""

    type_name = "mapped_alerts"
    config_model = MappedAlertsConfig

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        decode_issue = None
        rows: Any
        if config.format == "csv":
            rows, decode_issue = csv_rows(
                payload,
                id_field=config.id_field,
                delimiter=config.delimiter,
                encoding=config.encoding,
                max_line_bytes=config.max_line_bytes,
            )
        else:
            rows = json_rows(payload, config.records_path)
        snapshot = self.context.snapshot_of(config.feed)
        if snapshot is None:
            raise DependencyNotReady(f"waiting for the timetable of source {config.feed!r}")
        tt: Timetable = snapshot.data
        language = config.language or (self.context.languages or ("",))[0]
        builder = _Builder(config, tt, language)
        mapping = RecordMapping(_specs(config.fields))
        alerts: dict[str, AlertRealtime] = {}

        try:
            result = map_rows(config.id, rows, config.id_field, mapping.apply)
        except csv.Error as exc:
            raise ValueError(f"the CSV cannot be read: {exc}") from None
        issues = [decode_issue] if decode_issue else []
        dropped = 0
        for mapped in result.records:
            try:
                alert, problems = builder.alert(config.id, mapped)
            except MappingProblem as exc:
                dropped += 1
                result.report(f"alert {mapped['id']!r}: {exc}, alert skipped")
                continue
            for problem in problems:
                result.report(f"alert {mapped['id']!r}: {problem}")
            alerts[alert.alert_id] = alert
        for kind, resolver in (("line", builder.lines), ("stop", builder.stops)):
            miss = resolver.unresolved
            if miss.total:
                issues.append(
                    f"{miss.total} {kind} reference(s) match no {kind} of {config.feed!r} by "
                    f"{resolver.rule.match} (e.g. {', '.join(map(repr, miss.examples))}): "
                    f"those alerts do not show on that {kind}"
                )
        for name, unknown in sorted(builder.unmapped.items()):
            examples = ", ".join(map(repr, unknown.examples))
            issues.append(
                f"{unknown.total} {name} value(s) are not in values.{name} nor GTFS-RT "
                f"{name} names (e.g. {examples}): left empty"
            )
        # The summaries first: a status keeps only the first few issues as samples.
        issues.extend(result.issues)
        part = SourcePart(
            config.id,
            FeedHeader("2.0", "full_dataset", None, None),
            received_at=self.context.clock.now().timestamp(),
            alerts=alerts,
            alerts_max_age_s=math.inf,
        )
        part.counters.alerts = len(alerts)
        data = RealtimeData(config.feed, tt, RealtimeState([part]), on_time_threshold_s=60)
        return ParseResult(
            data=data,
            record_count=len(alerts),
            issues=tuple(issues),
            issue_total=result.issue_total + len(issues) - len(result.issues),
            stats={
                "rows": result.row_total,
                "alerts": len(alerts),
                "skipped": result.row_total - len(result.records) + dropped,
                "unresolved_lines": builder.lines.unresolved.total,
                "unresolved_stops": builder.stops.unresolved.total,
            },
        )

    @classmethod
    def records(cls, snapshot: Snapshot) -> None:
        return None

    @classmethod
    def notices(cls, snapshot: Snapshot) -> list[Notice]:
        """Its alerts as notices, exactly as a GTFS-realtime feed's: followers of a line or
        stop they name are told of each new or changed one."""
        from connectors.gtfs_rt.notices import alert_notices

        return alert_notices(snapshot.data)

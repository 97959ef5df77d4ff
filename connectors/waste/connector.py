"""The ``waste`` connector type: collection zones (polygons) and each zone's schedule, by YAML.

Bordeaux Métropole publishes one zone per stream with its weekdays in the zone's own fields::

    - id: bdx-waste
      type: waste
      url: https://example.org/api/explore/v2.1/catalog/datasets/en_frcol_s/exports/json
      fields: {id: gid, name: commune, geometry: geo_shape, stream: type, weekdays: jour_col}
      values:
        stream: {OM: household, TRI: recycling}

Other councils give zones alone, with the rules in the YAML (``rules``, by zone id), in a
CSV (``rules_csv``: zone, stream, weekdays, every_weeks, reference_date), or an ICS per zone
(``ics``, by zone id; each event's SUMMARY/CATEGORIES words pick its streams through
``ics_streams``, every matching word adding its stream). ``holiday_shifts`` moves or
cancels single dates for every zone.

A zone whose geometry is missing or invalid is dropped and named in the source's issues;
the other zones keep serving. An ICS that fails to load costs its zone those dates only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
import shapely.geometry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from aggregator.config.models import UrlConnectorConfig, check_source_url
from aggregator.config.types import Schedule
from aggregator.connector import UrlConnector
from aggregator.fetch import Fetcher
from aggregator.fetch_errors import FetchError
from aggregator.fetch_result import FetchResult, Validators
from aggregator.mapping import compile_path, lookup
from aggregator.model import ParseResult, Snapshot
from aggregator.notify.notice import TimedNotices
from connectors.events.text import fold
from connectors.places.documents import DocumentFormat, document_rows

from .schedule import STREAMS, WEEKDAYS, CollectionRule, Stream
from .zones import ZoneGeometryError, ZoneIndex, surface_points, zone_polygon

INDEX_NAME = "waste_zones"
#: Frames a payload made of several documents (zones + rules CSV + ICS files).
_BUNDLE_MAGIC = b"beffroi-waste-bundle\n"
_DAY_NAMES = {
    **{d: d for d in WEEKDAYS},
    **dict(
        zip(
            ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
            WEEKDAYS,
            strict=True,
        )
    ),
    **dict(zip(("lun", "mar", "mer", "jeu", "ven", "sam", "dim"), WEEKDAYS, strict=True)),
    **dict(
        zip(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
            WEEKDAYS,
            strict=True,
        )
    ),
    **dict(zip(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), WEEKDAYS, strict=True)),
}
SourceUrl = Annotated[str, AfterValidator(check_source_url)]


class ZoneFields(BaseModel):
    """Paths into a zone's row (see :mod:`aggregator.mapping`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str | None = None
    geometry: str = "geometry"
    #: Rules read from the zone itself (one stream per zone, or per row).
    stream: str | None = None
    weekdays: str | None = None
    every_weeks: str | None = None
    reference_date: str | None = None


class ZoneValues(BaseModel):
    """The publisher's words → ours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: dict[str, Stream] = Field(default_factory=dict)
    weekdays: dict[str, str] = Field(default_factory=dict)


class WasteConfig(UrlConnectorConfig):
    """Keys of a ``waste`` source."""

    refresh: Schedule = Schedule.every(86_400)
    format: DocumentFormat = "auto"
    records_path: str | None = None
    fields: ZoneFields
    values: ZoneValues = Field(default_factory=ZoneValues)
    rules: dict[str, list[CollectionRule]] = Field(default_factory=dict)
    rules_csv: SourceUrl | None = None
    ics: dict[str, SourceUrl] = Field(default_factory=dict)
    #: A word of an ICS event's SUMMARY or CATEGORIES → its stream ("verre": glass).
    ics_streams: dict[str, Stream] = Field(default_factory=dict)
    holiday_shifts: dict[date, date | None] = Field(default_factory=dict)
    #: How far ahead next dates are looked for, and how many per stream are shown.
    horizon_days: int = Field(62, ge=7, le=400)
    per_stream: int = Field(3, ge=1, le=20)

    def source_urls(self) -> dict[tuple[str | int, ...], str]:
        urls: dict[tuple[str | int, ...], str] = {("url",): self.url}
        if self.rules_csv:
            urls[("rules_csv",)] = self.rules_csv
        for zone, url in self.ics.items():
            urls[("ics", zone)] = url
        return urls


def _weekdays(raw: Any, values: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(weekday codes, words not understood) of a list or a text ("LUNDI et JEUDI")."""
    words = (
        raw if isinstance(raw, list) else str(raw or "").replace(",", " ").replace(";", " ").split()
    )
    days: list[str] = []
    unknown: list[str] = []
    mapped = {fold(k).strip(): v for k, v in values.items()}
    for word in words:
        key = fold(str(word)).strip().rstrip(".")
        if key in ("et", "and", "&", ""):
            continue
        day = mapped.get(key) or _DAY_NAMES.get(key)
        if day in WEEKDAYS:
            if day not in days:
                days.append(day)
        else:
            unknown.append(str(word))
    return days, unknown


class WasteConnector(UrlConnector[WasteConfig]):
    """Collection zones and their schedules."""

    type_name = "waste"
    config_model = WasteConfig

    async def fetch(self, fetcher: Fetcher, validators: Validators | None) -> FetchResult:
        config = self.config
        if not config.rules_csv and not config.ics:
            return await self.fetch_configured(fetcher, config.url, validators)
        # Several documents: fetched together, framed into one payload (text as latin-1, which
        # round-trips any byte, so each part is given to its parser exactly as received).
        started = time.monotonic()
        zones = await self.fetch_configured(fetcher, config.url, None)
        bundle: dict[str, Any] = {"zones": zones.body.decode("latin-1"), "ics": {}, "problems": []}
        attempts = zones.attempts
        if config.rules_csv:
            part = await self.fetch_configured(fetcher, config.rules_csv, None)
            bundle["rules_csv"] = part.body.decode("latin-1")
            attempts += part.attempts
        for zone, url in config.ics.items():
            try:
                part = await self.fetch_configured(fetcher, url, None)
            except FetchError as exc:
                bundle["problems"].append(f"zone {zone!r}: its ICS could not be fetched ({exc})")
                continue
            bundle["ics"][zone] = part.body.decode("latin-1")
            attempts += part.attempts
        payload = _BUNDLE_MAGIC + orjson.dumps(bundle)
        return FetchResult(
            url=zones.url,
            not_modified=False,
            body=payload,
            content_type="application/json",
            validators=Validators(),
            status=200,
            attempts=attempts,
            elapsed=time.monotonic() - started,
            content_hash=hashlib.sha256(payload).hexdigest(),
        )

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        issues: list[str] = []
        ics_parts: dict[str, str] = {}
        rules_csv = None
        if payload.startswith(_BUNDLE_MAGIC):
            bundle = orjson.loads(payload[len(_BUNDLE_MAGIC) :])
            payload = bundle["zones"].encode("latin-1")
            ics_parts = bundle["ics"]
            rules_csv = bundle.get("rules_csv")
            issues += bundle["problems"]
        rows = document_rows(payload, form=config.format, records_path=config.records_path)
        zones, geometries, zone_issues = self._zones(rows)
        issues += zone_issues
        if rows and not zones:
            raise ValueError(f"none of the {len(rows)} zones could be read: {issues[:3]}")
        for zone_id, rules in config.rules.items():
            if zone_id in zones:
                zones[zone_id]["rules"].extend(r.model_dump(mode="json") for r in rules)
            else:
                issues.append(f"rules: no zone {zone_id!r} in the zones document")
        if rules_csv is not None:
            issues += self._csv_rules(rules_csv.encode("latin-1"), zones)
        for zone_id, text in ics_parts.items():
            if zone_id not in zones:
                issues.append(f"ics: no zone {zone_id!r} in the zones document")
                continue
            zones[zone_id]["ics_dates"], ics_issues = self._ics_dates(
                zone_id, text.encode("latin-1")
            )
            issues += ics_issues
        without = [z for z, zone in zones.items() if not zone["rules"] and not zone["ics_dates"]]
        if without:
            issues.append(f"{len(without)} zones have no schedule: {sorted(without)[:5]}")
        return ParseResult(
            data={
                "zones": zones,
                "geometries": geometries,
                "holiday_shifts": {
                    k.isoformat(): v.isoformat() if v else None
                    for k, v in config.holiday_shifts.items()
                },
                "horizon_days": config.horizon_days,
                "per_stream": config.per_stream,
            },
            record_count=len(zones),
            issues=tuple(issues),
            issue_total=len(issues),
            stats={"rows": len(rows), "zones": len(zones), "issues": len(issues)},
        )

    def _zones(self, rows: list[Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        fields, values = self.config.fields, self.config.values
        path = {name: compile_path(p) for name, p in fields.model_dump().items() if p}
        zones: dict[str, dict[str, Any]] = {}
        geometries: dict[str, Any] = {}
        issues: list[str] = []
        for number, row in enumerate(rows):
            raw_id = lookup(row, path["id"]) if isinstance(row, Mapping) else None
            if raw_id is None or str(raw_id).strip() == "":
                issues.append(f"row {number}: no zone id at {fields.id!r}; dropped")
                continue
            zone_id = str(raw_id).strip()
            geometry = lookup(row, path["geometry"])
            try:
                polygon = zone_polygon(geometry)
            except ZoneGeometryError as exc:
                issues.append(f"zone {zone_id!r} dropped: {exc}")
                continue
            if zone_id in zones:
                issues.append(f"zone {zone_id!r} appears twice; the first is kept")
                continue
            name = lookup(row, path["name"]) if "name" in path else None
            zones[zone_id] = {
                "id": zone_id,
                "name": str(name) if name is not None else None,
                "rules": [],
                "ics_dates": {},
            }
            # Kept as GeoJSON, so the snapshot stays plain JSON (a shared store keeps it as is);
            # the index builds the polygons again, once per snapshot.
            geometries[zone_id] = shapely.geometry.mapping(polygon)
            if "stream" in path or "weekdays" in path:
                problem = self._row_rule(row, path, values, zones[zone_id])
                if problem:
                    issues.append(f"zone {zone_id!r}: {problem}")
        return zones, geometries, issues

    def _row_rule(
        self, row: Any, path: Mapping[str, Any], values: ZoneValues, zone: dict[str, Any]
    ) -> str | None:
        raw_stream = lookup(row, path["stream"]) if "stream" in path else None
        stream = values.stream.get(str(raw_stream), str(raw_stream).lower() if raw_stream else None)
        if stream not in STREAMS:
            known = ", ".join(STREAMS)
            return f"stream {raw_stream!r} is not one of {known} (map it in values.stream)"
        days, unknown = _weekdays(
            lookup(row, path["weekdays"]) if "weekdays" in path else None, values.weekdays
        )
        if unknown:
            return f"weekdays {unknown} not understood (map them in values.weekdays)"
        spec: dict[str, Any] = {"stream": stream, "weekdays": days}
        if "every_weeks" in path:
            spec["every_weeks"] = lookup(row, path["every_weeks"]) or 1
        if "reference_date" in path:
            spec["reference_date"] = lookup(row, path["reference_date"])
        try:
            zone["rules"].append(CollectionRule.model_validate(spec).model_dump(mode="json"))
        except ValidationError as exc:
            return f"no usable rule ({exc.errors()[0]['msg']})"
        return None

    def _csv_rules(self, body: bytes, zones: dict[str, Any]) -> list[str]:
        issues: list[str] = []
        text = body.decode("utf-8-sig", errors="replace")
        try:
            dialect: Any = csv.Sniffer().sniff(text[:2048], delimiters=",;\t")
        except csv.Error:  # one column, or nothing to tell by: read it as plain commas
            dialect = csv.excel
        values = self.config.values
        for number, row in enumerate(csv.DictReader(io.StringIO(text), dialect=dialect), start=2):
            cell = {key: (value or "").strip() for key, value in row.items() if key}
            zone_id = cell.get("zone", "")
            if zone_id not in zones:
                issues.append(f"rules_csv line {number}: no zone {zone_id!r}")
                continue
            days, unknown = _weekdays(cell.get("weekdays"), values.weekdays)
            every = cell.get("every_weeks") or "1"
            spec = {
                "stream": values.stream.get(cell.get("stream", ""), cell.get("stream", "")),
                "weekdays": days,
                "every_weeks": int(every) if every.isdigit() else every,
                "reference_date": cell.get("reference_date") or None,
            }
            try:
                if unknown:
                    raise ValueError(f"weekdays {unknown} not understood")
                zones[zone_id]["rules"].append(
                    CollectionRule.model_validate(spec).model_dump(mode="json")
                )
            except (ValidationError, ValueError) as exc:
                reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                issues.append(f"rules_csv line {number}: dropped ({reason})")
        return issues

    def _ics_dates(self, zone_id: str, body: bytes) -> tuple[dict[str, list[str]], list[str]]:
        from connectors.events.ics import expand_calendar

        now = self.context.clock.now().astimezone(self.context.timezone)
        try:
            expanded = expand_calendar(
                body,
                source=self.config.id,
                channel="agenda",
                zone=self.context.timezone,
                language=self.context.languages[0],
                window_start=now - timedelta(days=1),
                window_end=now + timedelta(days=self.config.horizon_days + 366),
                max_events=5_000,
                max_occurrences=20_000,
            )
        except ValueError as exc:
            return {}, [f"zone {zone_id!r}: its ICS cannot be read ({exc})"]
        keys = {fold(word): stream for word, stream in self.config.ics_streams.items()}
        dates: dict[str, set[str]] = {}
        unmatched: set[str] = set()
        for record in expanded.data:
            if record.get("status") == "cancelled":
                continue
            words = " ".join([*record.get("title", {}).values(), *record.get("categories", [])])
            folded = fold(words)
            # One event may be several streams' day ("Yard Waste/Garbage Day"): each word
            # that matches adds its stream.
            streams = {s for k, s in keys.items() if k and k in folded}
            if not streams:
                streams = {s for s in STREAMS if s in folded}
            if not streams:
                unmatched.add(words.strip()[:60])
                streams = {"other"}
            day = datetime.fromisoformat(record["start"]).astimezone(self.context.timezone).date()
            for stream in streams:
                dates.setdefault(stream, set()).add(day.isoformat())
        issues = [f"zone {zone_id!r} ICS: {issue}" for issue in expanded.issues[:5]]
        if unmatched:
            issues.append(
                f"zone {zone_id!r} ICS: events {sorted(unmatched)[:3]} match no ics_streams "
                "word; served as stream other"
            )
        return {s: sorted(d) for s, d in dates.items()}, issues

    @classmethod
    def records(cls, snapshot: Snapshot) -> list[dict[str, Any]]:
        return list(snapshot.data["zones"].values())

    @classmethod
    def located_points(cls, snapshot: Snapshot) -> tuple[Any, Any]:
        """A point inside each zone (its representative point, unlike a centroid)."""
        return surface_points(build_index(snapshot).polygons)

    @classmethod
    def index_builders(cls) -> Mapping[str, Callable[[Snapshot], Any]]:
        return {INDEX_NAME: build_index}

    @classmethod
    def zones_at(cls, live: Any, source_id: str, lat: float, lon: float) -> list[str]:
        index = live.index(source_id, INDEX_NAME, build_index)
        return index.at(lat, lon) if index is not None else []

    @classmethod
    def zone_reminders(
        cls,
        snapshot: Snapshot,
        zone_sets: Sequence[Sequence[str]],
        now: datetime,
        timezone: ZoneInfo,
        at: dt_time,
    ) -> TimedNotices:
        from .reminders import reminder_notices

        return reminder_notices(snapshot.source_id, snapshot.data, zone_sets, now, timezone, at)

    @classmethod
    def register_routes(cls, router: Any) -> None:
        from .routes import register_waste_routes

        register_waste_routes(router)


def build_index(snapshot: Snapshot) -> ZoneIndex:
    return ZoneIndex.build(
        {zone: shapely.geometry.shape(g) for zone, g in snapshot.data["geometries"].items()}
    )

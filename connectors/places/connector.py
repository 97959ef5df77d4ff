"""The ``places`` connector type: public places with opening hours, mapped by YAML.

Town halls, recycling centres, libraries, pharmacies... from a GeoJSON FeatureCollection
or OGC API Features collection, Opendatasoft records, a CSV export or an Overpass JSON
answer (``out center`` gives ways a position)::

    - id: mairies
      type: places
      url: https://example.org/api/explore/v2.1/catalog/datasets/mairies/exports/geojson
      id_field: code
      category: town_hall              # one category for the source...
      fields:
        name: nom
        opening_hours: horaires        # OSM opening_hours syntax
        phone: telephone
      values:
        category: {MAIRIE: town_hall}  # ...or per feature, mapped onto CATEGORIES
      holidays: {country: FR, subdivision: "57"}   # Alsace-Moselle's extra days

An ``opening_hours`` value that does not parse is kept as text, reported with the feature's
id, and served as ``{raw, parsed: false}``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aggregator.api.features_layers import FeatureKind
from aggregator.config.types import Schedule
from aggregator.connector import UrlConnector
from aggregator.model import ParseResult, Snapshot
from connectors.places.documents import DocumentError, document_rows
from connectors.places.mapped import Kind, MappedPlacesConfig, PlaceMapper
from connectors.places.placeindex import PlacesIndex
from connectors.records import FeedError, _decode, _sniff_delimiter

#: The documented vocabulary of place categories (docs/API.md lists them).
CATEGORIES = (
    "town_hall",
    "recycling_centre",
    "library",
    "swimming_pool",
    "sports_centre",
    "pharmacy",
    "post_office",
    "market",
    "shop",
    "toilets",
    "museum",
    "police",
    "social_services",
    "health",
    "other",
)
WHEELCHAIR = ("yes", "limited", "no", "unknown")
PLACE_KINDS: Mapping[str, Kind] = {
    "name": "str",
    "lat": "float",
    "lon": "float",
    "category": "str",
    "address": "str",
    "postcode": "str",
    "city": "str",
    "opening_hours": "str",
    "phone": "str",
    "website": "str",
    "email": "str",
    "wheelchair": "str",
    "description": "str",
}
#: What Overpass rows read when the operator maps nothing: OpenStreetMap's own tags.
OSM_FIELDS: Mapping[str, str] = {
    "name": "name",
    "category": "osm_kind",
    "address": "addr:street",
    "postcode": "addr:postcode",
    "city": "addr:city",
    "opening_hours": "opening_hours",
    "phone": "phone",
    "website": "website",
    "email": "email",
    "wheelchair": "wheelchair",
    "description": "description",
}
#: OpenStreetMap tags onto the vocabulary (``osm_kind``: "shop" stands for every shop=*).
OSM_CATEGORIES: Mapping[str, str] = {
    "amenity=townhall": "town_hall",
    "amenity=recycling": "recycling_centre",
    "amenity=library": "library",
    "leisure=swimming_pool": "swimming_pool",
    "leisure=sports_centre": "sports_centre",
    "amenity=pharmacy": "pharmacy",
    "healthcare=pharmacy": "pharmacy",
    "amenity=post_office": "post_office",
    "amenity=marketplace": "market",
    "shop": "shop",
    "amenity=toilets": "toilets",
    "tourism=museum": "museum",
    "amenity=police": "police",
    "amenity=social_facility": "social_services",
    "amenity=doctors": "health",
    "amenity=clinic": "health",
    "amenity=hospital": "health",
}
_WHEELCHAIR_WORDS = {"yes": "yes", "designated": "yes", "limited": "limited", "no": "no"}
INDEX_NAME = "places"


class HolidaysConfig(BaseModel):
    """Which public holidays ``PH`` means: a country, and a subdivision for regional days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = "FR"
    subdivision: str | None = None

    @model_validator(mode="after")
    def _known(self) -> HolidaysConfig:
        import holidays

        try:
            calendar = holidays.country_holidays(self.country)
        except NotImplementedError:
            raise ValueError(
                f"{self.country!r} is not a country the holidays calendar knows"
            ) from None
        known = calendar.subdivisions
        if self.subdivision is not None and self.subdivision not in known:
            raise ValueError(
                f"subdivision {self.subdivision!r} is not one of {self.country}'s: "
                f"{', '.join(known)}"
            )
        return self


class PlacesConfig(MappedPlacesConfig):
    """Keys of a ``places`` source (see :class:`MappedPlacesConfig` for the mapping)."""

    model_kinds: ClassVar[Mapping[str, Kind]] = PLACE_KINDS

    format: Literal["auto", "geojson", "opendatasoft", "json", "overpass", "csv"] = "auto"  # type: ignore[assignment]
    refresh: Schedule = Schedule.every(6 * 3600)
    #: The category of every place of the source, unless a field maps one per feature.
    category: str | None = None
    holidays: HolidaysConfig = Field(default_factory=HolidaysConfig)
    delimiter: str | None = None
    encoding: str = "auto"
    #: The categories /v1/home shows the nearest open places of (any source may list them).
    home_categories: list[str] = Field(default_factory=list)

    @field_validator("category")
    @classmethod
    def _in_vocabulary(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"{value!r} is not a category (one of: {', '.join(CATEGORIES)})")
        return value

    @field_validator("home_categories")
    @classmethod
    def _home_in_vocabulary(cls, value: list[str]) -> list[str]:
        for category in value:
            cls._in_vocabulary(category)
        return value

    @model_validator(mode="before")
    @classmethod
    def _osm_defaults(cls, data: Any) -> Any:
        # An Overpass answer reads OSM's own tags unless the operator says otherwise.
        if isinstance(data, dict) and data.get("format") == "overpass":
            data = dict(data)
            data.setdefault("id_field", "osm_id")
            data["fields"] = {**OSM_FIELDS, **(data.get("fields") or {})}
            data["values"] = dict(data.get("values") or {})
            data["values"]["category"] = {
                **OSM_CATEGORIES,
                **(data["values"].get("category") or {}),
            }
        return data

    @model_validator(mode="after")
    def _mapped_categories_in_vocabulary(self) -> PlacesConfig:
        for word, category in self.values.get("category", {}).items():
            if category not in CATEGORIES:
                raise ValueError(
                    f"values.category.{word}: {category!r} is not a category "
                    f"(one of: {', '.join(CATEGORIES)})"
                )
        return self


def _wheelchair(value: Any) -> str:
    return _WHEELCHAIR_WORDS.get(str(value).strip().lower(), "unknown") if value else "unknown"


def build_index(snapshot: Snapshot) -> PlacesIndex:
    return PlacesIndex(snapshot.data["places"], snapshot.data["holidays"], snapshot.data["zone"])


class PlacesConnector(UrlConnector[PlacesConfig]):
    """Places mapped from one GeoJSON / OGC API / Opendatasoft / CSV / Overpass document."""

    type_name = "places"
    config_model = PlacesConfig

    def _rows(self, payload: bytes) -> tuple[list[Any], list[str]]:
        config = self.config
        if config.format != "csv":
            try:
                return document_rows(
                    payload, form=config.format, records_path=config.records_path
                ), []
            except DocumentError as exc:
                raise FeedError(str(exc)) from None
        text, decode_issue = _decode(payload, config.encoding)
        if not text.strip():
            raise FeedError("the CSV body is empty")
        reader = csv.DictReader(
            io.StringIO(text, newline=""), delimiter=config.delimiter or _sniff_delimiter(text)
        )
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise FeedError(f"the CSV cannot be read at line {reader.line_num}: {exc}") from None
        return rows, [decode_issue] if decode_issue else []

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        rows, issues_first = self._rows(payload)
        mapper = PlaceMapper(config, self.context.timezone)
        calendar = PlacesIndex.calendar_for(
            self.context.timezone, config.holidays.country, config.holidays.subdivision
        )
        bad_hours: list[str] = []

        def finish(record: dict[str, Any]) -> dict[str, Any]:
            record["category"] = record.get("category") or config.category or "other"
            record["wheelchair"] = _wheelchair(record.get("wheelchair"))
            raw = record.get("opening_hours")
            if raw is not None:
                hours = calendar.parse(raw, record["lat"], record["lon"])
                if not hours.parsed:
                    bad_hours.append(
                        f"place {record['id']!r}: opening_hours {hours.raw[:120]!r} does not "
                        f"parse ({hours.error}); served as text"
                    )
            return {"id": record.pop("id"), "source": config.id, **record}

        places, issues, issue_total, row_total = mapper.map_rows(rows, finish)
        issues = [*issues_first, *bad_hours[:50], *issues]
        issue_total += len(issues_first) + len(bad_hours)
        if rows and not places:
            raise FeedError(f"none of the {row_total} records could be mapped: {issues[:3]}")
        return ParseResult(
            data={
                "places": places,
                "zone": self.context.timezone.key,
                "holidays": [config.holidays.country, config.holidays.subdivision],
            },
            record_count=len(places),
            issues=tuple(issues),
            issue_total=issue_total,
            stats={
                "rows": row_total,
                "places": len(places),
                "unparsed_hours": len(bad_hours),
                "issues": issue_total,
            },
        )

    @classmethod
    def records(cls, snapshot: Snapshot) -> list[dict[str, Any]]:
        return snapshot.data["places"]

    @classmethod
    def index_builders(cls) -> Mapping[str, Callable[[Snapshot], Any]]:
        return {INDEX_NAME: build_index}

    @classmethod
    def register_routes(cls, router: Any) -> None:
        from .routes import register_place_routes

        register_place_routes(router)

    @classmethod
    def feature_kind(cls) -> FeatureKind:
        from .features import PLACES

        return PLACES


__all__ = ["CATEGORIES", "WHEELCHAIR", "PlacesConfig", "PlacesConnector"]

"""Places (bike stations, car parks) mapped from someone else's document by YAML alone.

::

    - id: vlille
      type: bike_stations
      url: https://data.lillemetropole.fr/data/ogcapi/collections/ilevia:vlille_temps_reel/items?f=json&limit=-1
      id_field: libelle
      fields:
        name: nom
        bikes_available: nbvelosdispo
        is_renting: etat
      values:                    # the publisher's words → ours, per field
        is_renting: {"EN SERVICE": true, "HORS SERVICE": false}

``fields`` reuses :mod:`aggregator.mapping` (paths, ``type``, ``default``). ``values`` maps
the text a publisher uses onto the model's value; a value missing from the map leaves the
field empty and is reported, so a new upstream word shows on the status page instead of
silently reading as "closed". ``lat``/``lon`` default to the row's GeoJSON Point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from aggregator.config.models import UrlConnectorConfig
from aggregator.mapping import (
    FieldSpec,
    MappingProblem,
    RecordMapping,
    compile_path,
    map_rows,
)
from connectors.places.documents import (
    DocumentFormat,
    point_of,
    to_bool,
    to_float,
    to_instant,
    to_int,
)

Kind = Literal["str", "count", "float", "bool", "instant"]


class MappedPlacesConfig(UrlConnectorConfig):
    """Keys shared by the mapping connector types of places."""

    #: The model's fields and their kinds; each type sets its own.
    model_kinds: ClassVar[Mapping[str, Kind]] = {}

    format: DocumentFormat = "auto"
    records_path: str | None = None
    id_field: str
    fields: dict[str, str | FieldSpec] = Field(default_factory=dict)
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("id_field", "records_path")
    @classmethod
    def _path_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_path(value)
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str | FieldSpec]) -> dict[str, str | FieldSpec]:
        for name, spec in value.items():
            if name not in cls.model_kinds:
                known = ", ".join(cls.model_kinds)
                raise ValueError(f"{name!r} is not a field of this model (fields: {known})")
            if isinstance(spec, str):
                compile_path(spec)
        return value

    @model_validator(mode="after")
    def _values_of_mapped_fields(self) -> MappedPlacesConfig:
        for name in self.values:
            if name not in self.fields:
                raise ValueError(f"values.{name}: the field {name!r} is not mapped in 'fields'")
        return self


def _convert(value: Any, kind: Kind, zone: ZoneInfo) -> Any:
    if kind == "count":
        return to_int(value)
    if kind == "float":
        return to_float(value)
    if kind == "bool":
        return to_bool(value)
    if kind == "instant":
        return to_instant(value, zone)
    return None if value is None else str(value).strip() or None


def _translate(table: Mapping[str, Any], value: Any) -> Any:
    """The mapped value; raises KeyError for a word the operator did not list."""
    if value is None:
        return None
    text = str(value).strip()
    if text in table:
        return table[text]
    folded = {str(k).casefold(): v for k, v in table.items()}
    return folded[text.casefold()]


class PlaceMapper:
    """Applies one source's mapping and value maps, then converts to the model's kinds."""

    def __init__(self, config: MappedPlacesConfig, zone: ZoneInfo) -> None:
        self.config = config
        self.zone = zone
        self.kinds = type(config).model_kinds
        self.mapping = RecordMapping(config.fields)

    def map_rows(
        self,
        rows: Iterable[Any],
        finish: Callable[[dict[str, Any]], dict[str, Any]] = lambda record: record,
    ) -> tuple[list[dict[str, Any]], list[str], int, int]:
        """Records, the first issues, the issue total and the row total."""
        mapped = map_rows(self.config.id, rows, self.config.id_field, self._one)
        records = [finish(record) for record in mapped.records]
        return records, mapped.issues, mapped.issue_total, mapped.row_total

    def _one(self, row: Any) -> tuple[dict[str, Any], list[str]]:
        mapped, problems = self.mapping.apply(row)
        out: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            value = mapped.get(name)
            table = self.config.values.get(name)
            if table is not None and value is not None:
                try:
                    value = _translate(table, value)
                except KeyError:
                    problems.append(f"field {name!r}: {value!r} is not listed in values.{name}")
                    value = None
            try:
                out[name] = _convert(value, kind, self.zone)
            except (TypeError, ValueError) as exc:
                problems.append(f"field {name!r}: {exc}")
                out[name] = None
        if out.get("lat") is None or out.get("lon") is None:
            point = point_of(row)
            if point is None:
                raise MappingProblem("no position (map lat/lon, or give a GeoJSON Point)")
            out["lat"], out["lon"] = point
        if not (-90 <= out["lat"] <= 90 and -180 <= out["lon"] <= 180):
            raise MappingProblem(f"position ({out['lat']}, {out['lon']}) is not on Earth")
        return out, problems


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

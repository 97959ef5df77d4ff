"""The ``communes`` connector type: the territory's communes, their INSEE code, name and polygon.

A GeoJSON FeatureCollection (or any JSON list of rows with a GeoJSON geometry), its fields
named in the YAML, as geo.api.gouv.fr, IGN's ADMIN EXPRESS derivatives or a metropolis'
portal publish it::

    - id: communes
      type: communes
      url: https://geo.api.gouv.fr/epcis/200093201/communes?format=geojson&geometry=contour
      fields: {code: code, name: nom}
      licence: etalab-2.0

Every located record of the other sources is then tagged with its commune (see
:mod:`aggregator.communes`). A row without a valid code (five characters, 2A/2B in Corsica),
without a name or without a valid (Multi)Polygon is dropped and named in the source's issues;
the others keep serving.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import shapely
import shapely.geometry
from pydantic import BaseModel, ConfigDict, field_validator

from aggregator.communes import CODE_PATTERN, INDEX_NAME, CommuneIndex
from aggregator.config.models import UrlConnectorConfig
from aggregator.config.types import Schedule
from aggregator.connector import UrlConnector
from aggregator.mapping import compile_path, lookup
from aggregator.model import ParseResult, Snapshot
from connectors.places.documents import DocumentFormat, document_rows
from connectors.waste.zones import ZoneGeometryError, surface_points, zone_polygon

TYPE_NAME = "communes"
#: Issues kept word for word (a broken file of 35,000 communes must not fill the status).
MAX_ISSUES = 20


class CommuneFields(BaseModel):
    """Paths into a row (a GeoJSON feature's properties are at the top of its row)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    name: str
    geometry: str = "geometry"

    @field_validator("code", "name", "geometry")
    @classmethod
    def _is_path(cls, value: str) -> str:
        compile_path(value)  # a bad path is a configuration error, named at load time
        return value


class CommunesConfig(UrlConnectorConfig):
    """Keys of a ``communes`` source."""

    #: Boundaries change once a year (the INSEE's geographic code of 1 January).
    refresh: Schedule = Schedule.every(7 * 86_400)
    format: DocumentFormat = "auto"
    records_path: str | None = None
    fields: CommuneFields


class CommunesConnector(UrlConnector[CommunesConfig]):
    type_name = TYPE_NAME
    config_model = CommunesConfig

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        rows = document_rows(payload, form=config.format, records_path=config.records_path)
        path = {name: compile_path(p) for name, p in config.fields.model_dump().items()}
        communes: dict[str, dict[str, str]] = {}
        geometries: dict[str, Any] = {}
        issues: list[str] = []
        for number, row in enumerate(rows):
            problem = _read(row, path, config.fields.code, communes, geometries)
            if problem is not None:
                issues.append(f"row {number}: {problem}; dropped")
        if rows and not communes:
            raise ValueError(f"none of the {len(rows)} communes could be read: {issues[:3]}")
        return ParseResult(
            data={"communes": communes, "geometries": geometries},
            record_count=len(communes),
            issues=tuple(issues[:MAX_ISSUES]),
            issue_total=len(issues),
            stats={"rows": len(rows), "communes": len(communes), "dropped": len(issues)},
        )

    @classmethod
    def records(cls, snapshot: Snapshot) -> list[dict[str, Any]]:
        """The communes as records (``/v1/sources/{id}/records``): id, code, name."""
        return [
            {"id": f"{snapshot.source_id}:{code}", **commune}
            for code, commune in snapshot.data["communes"].items()
        ]

    @classmethod
    def located_points(cls, snapshot: Snapshot) -> tuple[Any, Any]:
        """A point inside each commune: the communes source covers its own communes."""
        polygons = [shapely.geometry.shape(g) for g in snapshot.data["geometries"].values()]
        return surface_points(polygons)

    @classmethod
    def combined_indexes(cls) -> Mapping[str, tuple[frozenset[str], Any]]:
        return {INDEX_NAME: (frozenset({TYPE_NAME}), build_commune_index)}


def _read(
    row: Any,
    path: Mapping[str, Any],
    code_path: str,
    communes: dict[str, dict[str, str]],
    geometries: dict[str, Any],
) -> str | None:
    """Add one row's commune; the reason it cannot be used otherwise."""
    if not isinstance(row, Mapping):
        return "not an object"
    code = lookup(row, path["code"])
    code = str(code).strip() if isinstance(code, str | int) else None
    if code is None or CODE_PATTERN.fullmatch(code) is None:
        return f"no INSEE commune code at {code_path!r} (got {str(code)[:20]!r})"
    name = lookup(row, path["name"])
    if not isinstance(name, str) or not name.strip():
        return f"commune {code}: no name"
    if code in communes:
        return f"commune {code} appears twice, the first is kept"
    try:
        polygon = zone_polygon(lookup(row, path["geometry"]))
    except ZoneGeometryError as exc:
        return f"commune {code}: {exc}"
    communes[code] = {"code": code, "name": name.strip()}
    # Plain GeoJSON in the snapshot (a shared store keeps it as is); polygons are built
    # again by the index, once per snapshot.
    geometries[code] = shapely.geometry.mapping(polygon)
    return None


def build_commune_index(snapshots: dict[str, Snapshot], previous: Any) -> CommuneIndex:
    """One index over every communes source (sorted by id: the first one wins a code)."""
    key = tuple(sorted((source_id, s.version) for source_id, s in snapshots.items()))
    if isinstance(previous, CommuneIndex) and previous.key == key:
        return previous
    return CommuneIndex.build(
        (
            (code, commune["name"], shapely.geometry.shape(snapshot.data["geometries"][code]))
            for _, snapshot in sorted(snapshots.items())
            for code, commune in snapshot.data["communes"].items()
        ),
        key,
    )

"""The ``parkings`` connector type: car-park availability from an open-data document, by YAML.

French metropolises publish availability on Opendatasoft or OGC API Features; Lille's
park-and-ride dataset reads::

    - id: mel-parkings
      type: parkings
      url: https://example.org/api/records/1.0/search/?dataset=transpole-parkingrelais&rows=100
      id_field: libelle
      fields:
        name: nom
        city: commune
        capacity: capacite
        free_spaces: nbplacesdispo
        state: etat
        last_updated: datemiseajour
      values:
        state: {OUVERT: open, FERME: closed, COMPLET: full}

``state`` is one of open, closed, full, unknown: an open car park with no free space is
full; a state the value map does not list is unknown (and reported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from aggregator.api.features_layers import FeatureKind
from aggregator.config.types import Duration, Schedule
from aggregator.connector import UrlConnector
from aggregator.model import ParseResult, Snapshot
from connectors.places.documents import document_rows
from connectors.places.geo import PlaceIndex
from connectors.places.mapped import Kind, MappedPlacesConfig, PlaceMapper

STATES = ("open", "closed", "full", "unknown")
PARKING_KINDS: Mapping[str, Kind] = {
    "name": "str",
    "lat": "float",
    "lon": "float",
    "address": "str",
    "city": "str",
    "capacity": "count",
    "free_spaces": "count",
    "state": "str",
    "last_updated": "instant",
}
INDEX_NAME = "parkings"


class ParkingsConfig(MappedPlacesConfig):
    """Keys of a ``parkings`` source (see :class:`MappedPlacesConfig` for the mapping)."""

    model_kinds: ClassVar[Mapping[str, Kind]] = PARKING_KINDS

    refresh: Schedule = Schedule.every(120)
    #: A car park's figures older than this (by its last_updated) are flagged stale.
    max_age: Duration = 900.0


def _state(record: dict[str, Any]) -> str:
    state = record.get("state")
    state = state.lower() if isinstance(state, str) else None
    if state not in STATES:
        state = None
    if state in (None, "open") and record.get("free_spaces") == 0:
        return "full"
    return state or "unknown"


def build_index(snapshot: Snapshot) -> PlaceIndex:
    return PlaceIndex(snapshot.data["parkings"])


class ParkingsConnector(UrlConnector[ParkingsConfig]):
    """Car parks mapped from one JSON / GeoJSON / Opendatasoft document."""

    type_name = "parkings"
    config_model = ParkingsConfig

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        rows = document_rows(payload, form=config.format, records_path=config.records_path)
        mapper = PlaceMapper(config, self.context.timezone)
        unknown_states: set[str] = set()

        def finish(record: dict[str, Any]) -> dict[str, Any]:
            if record.get("state") is not None and str(record["state"]).lower() not in STATES:
                unknown_states.add(str(record["state"]))
            record["state"] = _state(record)
            updated = record.get("last_updated")
            record["last_updated"] = updated.isoformat() if isinstance(updated, datetime) else None
            return {"id": record.pop("id"), "source": config.id, **record}

        parkings, issues, issue_total, row_total = mapper.map_rows(rows, finish)
        if unknown_states:
            issue_total += 1
            issues.append(
                f"states {sorted(unknown_states)} are not open/closed/full: map them in "
                "values.state; served as unknown"
            )
        if rows and not parkings:
            raise ValueError(f"none of the {row_total} records could be mapped: {issues[:3]}")
        return ParseResult(
            data={"parkings": parkings, "max_age_s": config.max_age},
            record_count=len(parkings),
            issues=tuple(issues),
            issue_total=issue_total,
            stats={"rows": row_total, "parkings": len(parkings), "issues": issue_total},
        )

    @classmethod
    def records(cls, snapshot: Snapshot) -> list[dict[str, Any]]:
        return snapshot.data["parkings"]

    @classmethod
    def index_builders(cls) -> Mapping[str, Callable[[Snapshot], Any]]:
        return {INDEX_NAME: build_index}

    @classmethod
    def register_routes(cls, router: Any) -> None:
        from .routes import register_parking_routes

        register_parking_routes(router)

    @classmethod
    def feature_kind(cls) -> FeatureKind:
        from .features import PARKINGS

        return PARKINGS

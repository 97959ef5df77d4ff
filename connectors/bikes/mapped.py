"""The ``bike_stations`` connector type: bike stations from any open-data document, by YAML.

For bike shares without GBFS (V'Lille in Lille), reading the metropolis' OGC API Features
collection or an Opendatasoft dataset::

    - id: vlille
      type: bike_stations
      url: https://data.lillemetropole.fr/data/ogcapi/collections/ilevia:vlille_temps_reel/items?f=json&limit=-1
      id_field: libelle
      fields:
        name: nom
        address: adresse
        bikes_available: nbvelosdispo
        docks_available: nbplacesdispo
        is_installed: etat
        is_renting: etatconnexion
        is_returning: etatconnexion
        last_reported: datemiseajour
      values:
        is_installed: {"EN SERVICE": true, "HORS SERVICE": false, "EN MAINTENANCE": false}
        is_renting: {"CONNECTED": true, "DISCONNECTED": false}
        is_returning: {"CONNECTED": true, "DISCONNECTED": false}

Positions come from the feature's GeoJSON Point unless ``lat``/``lon`` are mapped. The feed's
freshness is its newest ``last_reported``: such documents carry no feed-level timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from aggregator.config.types import Duration, Schedule
from aggregator.connector import UrlConnector
from aggregator.model import ParseResult
from connectors.places.documents import document_rows
from connectors.places.mapped import Kind, MappedPlacesConfig, PlaceMapper

from .model import STATION_KINDS, BikeNetwork, normalise_station, repair_texts
from .source import BikeSource


class BikeStationsConfig(MappedPlacesConfig):
    """Keys of a ``bike_stations`` source (see :class:`MappedPlacesConfig` for the mapping)."""

    model_kinds: ClassVar[Mapping[str, Kind]] = STATION_KINDS

    refresh: Schedule = Schedule.every(60)
    #: Availability older than this (by the stations' last_reported) is flagged stale.
    max_age: Duration = 600.0


class BikeStationsConnector(BikeSource, UrlConnector[BikeStationsConfig]):
    """Stations mapped from one JSON / GeoJSON / Opendatasoft document."""

    type_name = "bike_stations"
    config_model = BikeStationsConfig

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        rows = document_rows(payload, form=config.format, records_path=config.records_path)
        mapper = PlaceMapper(config, self.context.timezone)
        reported: list[datetime] = []

        def finish(record: dict[str, Any]) -> dict[str, Any]:
            if isinstance(record.get("last_reported"), datetime):
                reported.append(record["last_reported"])
            repair_texts(record, f"station {record.get('id')!r}", repairs)
            return normalise_station({"id": record.pop("id"), "source": config.id, **record})

        repairs: list[str] = []
        stations, issues, issue_total, row_total = mapper.map_rows(rows, finish)
        issues, issue_total = [*issues, *repairs], issue_total + len(repairs)
        if rows and not stations:
            raise ValueError(f"none of the {row_total} records could be mapped: {issues[:3]}")
        last_updated = max(reported, default=None)
        network = BikeNetwork(
            source_id=config.id,
            stations=stations,
            last_updated=last_updated,
            max_age_s=config.max_age,
        )
        return ParseResult(
            data=network,
            record_count=len(stations),
            issues=tuple(issues),
            issue_total=issue_total,
            stats={
                "rows": row_total,
                "stations": len(stations),
                "issues": issue_total,
                "feed_last_updated": last_updated.isoformat() if last_updated else None,
            },
        )

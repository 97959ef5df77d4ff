"""The bike-station model every bike source produces, and the snapshot it lives in.

A station record (what ``/v1/sources/{id}/records`` lists and ``/v1/bikes/stations`` serves)::

    id, source, name, lat, lon, address, capacity, bikes_available, ebikes_available,
    docks_available, is_renting, is_returning, is_installed, last_reported, alert_ids

Unknown figures are ``null``, never 0: "no e-bike count published" is not "no e-bikes".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.mojibake import repair_mojibake
from connectors.places.mapped import Kind

#: The model's fields (beyond id and source) and their kinds, in output order.
STATION_KINDS: Mapping[str, Kind] = {
    "name": "str",
    "lat": "float",
    "lon": "float",
    "address": "str",
    "capacity": "count",
    "bikes_available": "count",
    "ebikes_available": "count",
    "docks_available": "count",
    "is_renting": "bool",
    "is_returning": "bool",
    "is_installed": "bool",
    "last_reported": "instant",
}


def station_record(source_id: str, native_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A station record with every model field, ``last_reported`` as RFC 3339 text."""
    record: dict[str, Any] = {"id": f"{source_id}:{native_id}", "source": source_id}
    for name in STATION_KINDS:
        record[name] = fields.get(name)
    return normalise_station(record, fields.get("alert_ids", ()))


def normalise_station(record: dict[str, Any], alert_ids: Any = ()) -> dict[str, Any]:
    """Rules every source obeys, whatever its feed says."""
    # A station that is not installed neither rents nor takes bikes back (GBFS semantics),
    # even when a feed leaves its last "renting" flag behind.
    if record.get("is_installed") is False:
        record["is_renting"] = False
        record["is_returning"] = False
    reported = record.get("last_reported")
    if isinstance(reported, datetime):
        record["last_reported"] = reported.isoformat()
    record["alert_ids"] = sorted(alert_ids or ())
    return record


@dataclass(frozen=True)
class BikeNetwork:
    """A bike source's snapshot: its stations and how fresh the publisher says they are."""

    source_id: str
    stations: list[dict[str, Any]]
    #: When the publisher last updated the availability (GBFS ``last_updated``), if it says.
    last_updated: datetime | None
    #: Availability older than this (seconds) is flagged stale.
    max_age_s: float
    #: GBFS ``ttl`` of the availability file: how long the publisher says it stays valid.
    ttl_s: int | None = None
    system: Mapping[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: Available free-floating vehicles (GBFS free_bike_status / vehicle_status), if published.
    free_vehicles: int | None = None

    def feed_age_s(self, now: datetime) -> float | None:
        """Seconds since the publisher's last update; None when it does not say."""
        if self.last_updated is None:
            return None
        return max(0.0, (now - self.last_updated).total_seconds())

    def is_stale(self, now: datetime) -> bool:
        """Whether the publisher's data is older than ``max_age_s`` (or its ttl, if longer)."""
        age = self.feed_age_s(now)
        return age is not None and age > max(self.max_age_s, float(self.ttl_s or 0))


def repair_texts(fields: dict[str, Any], where: str, issues: list[str]) -> None:
    """Undo mojibake in a station's name and address, reporting each repair in ``issues``."""
    for key in ("name", "address"):
        text = fields.get(key)
        if isinstance(text, str):
            fixed = repair_mojibake(text)
            if fixed is not text:
                fields[key] = fixed
                issues.append(f"{where}: {key} repaired from mojibake ({text!r} → {fixed!r})")

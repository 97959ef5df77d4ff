"""Reading GBFS files (v1 and pre-2.x feeds, 2.x, 3.0): pure functions, bytes and dicts in.

Differences that matter here, by version:

* discovery ``gbfs.json``: 2.x groups feeds by language (``data.fr.feeds``), 3.0 does not
  (``data.feeds``);
* ``last_updated`` and ``last_reported``: POSIX seconds up to 2.x, RFC 3339 text in 3.0;
* names: plain strings up to 2.x, lists of ``{text, language}`` in 3.0;
* availability: ``num_bikes_available`` up to 2.x, ``num_vehicles_available`` in 3.0;
  e-bikes as Lyft's ``num_ebikes_available`` or per ``vehicle_types_available`` with the
  propulsion of each type read from ``vehicle_types``;
* free-floating vehicles: ``free_bike_status`` (``data.bikes``) up to 2.x, ``vehicle_status``
  (``data.vehicles``) in 3.0;
* booleans: 0/1 in older feeds, true/false since.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from connectors.places.documents import to_bool, to_float, to_instant, to_int

#: Files a bike source reads, in fetch order; the first two are required.
STATION_FILES = ("station_information", "station_status")
OPTIONAL_FILES = (
    "system_information",
    "vehicle_types",
    "free_bike_status",
    "vehicle_status",
    "system_alerts",
)
FILE_NAMES = (*STATION_FILES, *OPTIONAL_FILES)
ELECTRIC = frozenset({"electric_assist", "electric"})
#: Keys of ``num_bikes_available_types`` that count e-bikes (the field is not in the spec;
#: these are the spellings published systems use).
EBIKE_KEYS = frozenset({"ebike", "ebikes", "e-bike", "electric", "electric_bike", "elec"})
#: Where a file's own timestamp stands: the spec's ``last_updated``, and the variants systems
#: publish in its place (Vélib' Métropole: ``lastUpdatedOther``).
LAST_UPDATED_KEYS = ("last_updated", "lastUpdatedOther", "lastUpdated", "last_update")


class GbfsError(ValueError):
    """A GBFS document that cannot be used at all."""


def discovery_feeds(
    document: Any, base_url: str, languages: Sequence[str]
) -> tuple[dict[str, str], str | None]:
    """``{file name: url}`` from a ``gbfs.json``, and the GBFS version it declares.

    In 2.x the feeds are listed per language: the first of ``languages`` the system
    publishes wins, else its first language (file contents rarely differ by language).
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("data"), Mapping):
        raise GbfsError("gbfs.json has no 'data' object")
    data = document["data"]
    feeds = data.get("feeds")
    if feeds is None:
        by_language = {k: v for k, v in data.items() if isinstance(v, Mapping)}
        if not by_language:
            raise GbfsError("gbfs.json lists no feeds")
        chosen = next((lang for lang in languages if lang in by_language), next(iter(by_language)))
        feeds = by_language[chosen].get("feeds")
    if not isinstance(feeds, list):
        raise GbfsError("gbfs.json lists no feeds")
    urls = {
        str(feed["name"]): urljoin(base_url, str(feed["url"]))
        for feed in feeds
        if isinstance(feed, Mapping) and feed.get("name") and feed.get("url")
    }
    version = document.get("version")
    return urls, str(version) if version is not None else None


def text_of(value: Any, languages: Sequence[str]) -> str | None:
    """A plain string, or the best of a 3.0 list of localised strings."""
    if value is None:
        return None
    if isinstance(value, list):
        texts = {
            str(item.get("language", "")).lower(): str(item.get("text", ""))
            for item in value
            if isinstance(item, Mapping) and item.get("text")
        }
        for language in languages:
            for tag, text in texts.items():
                if tag == language or tag.startswith(f"{language}-"):
                    return text
        return next(iter(texts.values()), None)
    text = str(value).strip()
    return text or None


def _rows(document: Mapping[str, Any] | None, *keys: str) -> list[Mapping[str, Any]]:
    data = document.get("data") if document else None
    if not isinstance(data, Mapping):
        return []
    for key in keys:
        rows = data.get(key)
        if isinstance(rows, list):
            return [row for row in rows if isinstance(row, Mapping)]
    return []


def electric_types(vehicle_types: Mapping[str, Any] | None) -> frozenset[str]:
    """Ids of the vehicle types with a motor (for e-bike counts from vehicle_types_available)."""
    return frozenset(
        str(row.get("vehicle_type_id"))
        for row in _rows(vehicle_types, "vehicle_types")
        if row.get("propulsion_type") in ELECTRIC
    )


def ebikes_of(status: Mapping[str, Any], electric: frozenset[str]) -> int | None:
    """Available e-bikes in whichever form the feed gives them; None when it does not say.

    Lyft's ``num_ebikes_available``; GBFS 2.1+/3.0 ``vehicle_types_available`` (counts per
    vehicle type, whose propulsion ``vehicle_types`` gives); and the non-standard
    ``num_bikes_available_types`` that Smoove-run systems publish, either as one object
    (``{"mechanical": 3, "ebike": 2}``) or as a list of single-key objects
    (``[{"mechanical": 3}, {"ebike": 2}]``, Paris's Vélib' Métropole).
    """
    if status.get("num_ebikes_available") is not None:
        return to_int(status["num_ebikes_available"])
    per_type = status.get("vehicle_types_available")
    if electric and isinstance(per_type, list):
        return sum(
            to_int(item.get("count")) or 0
            for item in per_type
            if isinstance(item, Mapping) and str(item.get("vehicle_type_id")) in electric
        )
    by_kind = status.get("num_bikes_available_types")
    if isinstance(by_kind, list):
        merged: dict[str, Any] = {}
        for item in by_kind:
            if isinstance(item, Mapping):
                merged.update(item)
        by_kind = merged
    if isinstance(by_kind, Mapping):
        counts = [to_int(v) for k, v in by_kind.items() if str(k).lower() in EBIKE_KEYS]
        if counts:
            return sum(c or 0 for c in counts)
    return None  # not published: unknown, not zero


def station_fields(
    info: Mapping[str, Any],
    status: Mapping[str, Any] | None,
    *,
    languages: Sequence[str],
    zone: ZoneInfo,
    electric: frozenset[str],
) -> dict[str, Any]:
    """The model's fields of one station; raises ValueError on an unusable value."""
    lat, lon = to_float(info.get("lat")), to_float(info.get("lon"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"no usable position ({info.get('lat')!r}, {info.get('lon')!r})")
    fields: dict[str, Any] = {
        "name": text_of(info.get("name"), languages),
        "lat": lat,
        "lon": lon,
        "address": text_of(info.get("address"), languages),
        "capacity": to_int(info.get("capacity")),
    }
    if status is not None:
        bikes = status.get("num_bikes_available", status.get("num_vehicles_available"))
        fields.update(
            bikes_available=to_int(bikes),
            ebikes_available=ebikes_of(status, electric),
            docks_available=to_int(status.get("num_docks_available")),
            is_installed=to_bool(status.get("is_installed")),
            is_renting=to_bool(status.get("is_renting")),
            is_returning=to_bool(status.get("is_returning")),
            last_reported=to_instant(status.get("last_reported"), zone),
        )
    return fields


def free_vehicles(document: Mapping[str, Any] | None) -> int | None:
    """Available free-floating vehicles: not reserved, not disabled, not docked."""
    if document is None:
        return None
    count = 0
    for row in _rows(document, "vehicles", "bikes"):
        if to_bool(row.get("is_reserved")) or to_bool(row.get("is_disabled")):
            continue
        if row.get("station_id"):
            continue  # docked: already counted in its station's availability
        count += 1
    return count


def alerts_of(
    document: Mapping[str, Any] | None, source_id: str, languages: Sequence[str], zone: ZoneInfo
) -> list[dict[str, Any]]:
    """System alerts with namespaced ids, the stations they name, and their texts."""
    alerts = []
    for row in _rows(document, "alerts"):
        if not row.get("alert_id"):
            continue
        times = []
        for period in row.get("times") or ():
            if isinstance(period, Mapping):
                start = to_instant(period.get("start"), zone)
                end = to_instant(period.get("end"), zone)
                times.append(
                    {
                        "start": start.isoformat() if start else None,
                        "end": end.isoformat() if end else None,
                    }
                )
        alerts.append(
            {
                "id": f"{source_id}:{row['alert_id']}",
                "type": row.get("type"),
                "station_ids": [f"{source_id}:{s}" for s in row.get("station_ids") or ()],
                "summary": text_of(row.get("summary"), languages),
                "description": text_of(row.get("description"), languages),
                "url": text_of(row.get("url"), languages),
                "times": times,
            }
        )
    return alerts


def header(document: Mapping[str, Any] | None, zone: ZoneInfo) -> tuple[Any, int | None]:
    """``(last_updated as datetime, ttl)`` of a GBFS file."""
    if document is None:
        return None, None
    ttl = document.get("ttl")
    stamp = next((document[k] for k in LAST_UPDATED_KEYS if document.get(k) is not None), None)
    return to_instant(stamp, zone), ttl if isinstance(ttl, int) else None


def version_of(documents: Mapping[str, Mapping[str, Any] | None]) -> str | None:
    """The GBFS version the files declare (station_status first), None when none does."""
    for name in ("station_status", "station_information", "system_information", "gbfs"):
        version = (documents.get(name) or {}).get("version")
        if version is not None:
            return str(version)
    return None


def station_rows(documents: Mapping[str, Mapping[str, Any]]) -> tuple[list, dict[str, Any]]:
    """Station information rows, and status rows by station id."""
    info = _rows(documents.get("station_information"), "stations")
    status = {
        str(row["station_id"]): row
        for row in _rows(documents.get("station_status"), "stations")
        if row.get("station_id") is not None
    }
    return info, status

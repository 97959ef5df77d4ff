"""The rows of an open-data document of places, whatever the portal that published it.

* GeoJSON ``FeatureCollection`` (OGC API Features ``/items?f=json``, a static export): one
  row per feature, its ``properties`` plus its ``geometry``;
* Opendatasoft Explore v2.1 (``{"results": [...]}``) and v1 (``{"records": [{"fields": ...,
  "geometry": ...}]}``): one row per record, its fields plus its ``geometry``;
* any other JSON: the list at ``records_path`` (or the top-level list).

So a mapping's paths read the publisher's own field names (``nbvelosdispo``), whatever the
envelope around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from aggregator.mapping import compile_path, lookup

DocumentFormat = Literal["auto", "geojson", "opendatasoft", "json", "overpass"]
#: Tags whose value says what an OpenStreetMap object is, in the order they are read.
OSM_KIND_KEYS = ("amenity", "shop", "leisure", "tourism", "office", "healthcare")


class DocumentError(ValueError):
    """The payload as a whole is unusable (not JSON, no rows where they should be)."""


def document_rows(
    payload: bytes, *, form: DocumentFormat = "auto", records_path: str | None = None
) -> list[Any]:
    """The rows of ``payload``; raises :class:`DocumentError` when there are none to read."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DocumentError(f"the body is not JSON ({exc})") from None
    if records_path is not None:
        document = lookup(document, compile_path(records_path))
        if document is None:
            raise DocumentError(f"nothing at {records_path!r} in the JSON document")
    if form == "auto":
        form = _guess(document)
    if form == "geojson":
        if not isinstance(document, Mapping) or not isinstance(document.get("features"), list):
            raise DocumentError("not a GeoJSON FeatureCollection (no 'features' list)")
        return [_feature_row(f) for f in document["features"] if isinstance(f, Mapping)]
    if form == "overpass":
        if not isinstance(document, Mapping) or not isinstance(document.get("elements"), list):
            raise DocumentError("not an Overpass JSON answer (no 'elements' list)")
        return [_osm_row(e) for e in document["elements"] if _tagged(e)]
    if form == "opendatasoft":
        if isinstance(document, Mapping) and isinstance(document.get("results"), list):
            return list(document["results"])
        if isinstance(document, Mapping) and isinstance(document.get("records"), list):
            return [_ods_v1_row(r) for r in document["records"] if isinstance(r, Mapping)]
        raise DocumentError("not an Opendatasoft records document (no 'results' or 'records')")
    if not isinstance(document, list):
        where = f"at {records_path!r}" if records_path else "at the top level"
        raise DocumentError(f"no list of records {where} of the JSON document")
    return document


def _guess(document: Any) -> DocumentFormat:
    if isinstance(document, Mapping):
        if isinstance(document.get("elements"), list):
            return "overpass"
        if document.get("type") == "FeatureCollection" or "features" in document:
            return "geojson"
        if "results" in document or "records" in document:
            return "opendatasoft"
    return "json"


def _feature_row(feature: Mapping[str, Any]) -> dict[str, Any]:
    # The publisher's properties win: a property named "geometry" or "id" is theirs to keep.
    row = dict(feature.get("properties") or {})
    row.setdefault("geometry", feature.get("geometry"))
    if feature.get("id") is not None:
        row.setdefault("id", feature["id"])
    return row


def _tagged(element: Any) -> bool:
    # A way's member nodes come untagged in the same answer: they are geometry, not places.
    return isinstance(element, Mapping) and isinstance(element.get("tags"), Mapping)


def _osm_row(element: Mapping[str, Any]) -> dict[str, Any]:
    """An OSM node (its lat/lon) or way/relation (its ``center``, from ``out center``):
    its tags, ``osm_id`` ("node/123"), ``osm_kind`` ("amenity=townhall", or "shop" for any
    shop) and a GeoJSON Point."""
    row: dict[str, Any] = {k: v for k, v in element["tags"].items() if isinstance(k, str)}
    row["osm_id"] = f"{element.get('type')}/{element.get('id')}"
    for key in OSM_KIND_KEYS:
        value = row.get(key)
        if isinstance(value, str):
            row["osm_kind"] = "shop" if key == "shop" else f"{key}={value}"
            break
    where = element if "lat" in element else element.get("center")
    if isinstance(where, Mapping) and "lat" in where and "lon" in where:
        row["geometry"] = {"type": "Point", "coordinates": [where["lon"], where["lat"]]}
    return row


def _ods_v1_row(record: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(record.get("fields") or {})
    row.setdefault("geometry", record.get("geometry"))
    if record.get("recordid") is not None:
        row.setdefault("recordid", record["recordid"])
    return row


def point_of(row: Any) -> tuple[float, float] | None:
    """``(lat, lon)`` of a row's GeoJSON Point geometry (RFC 7946 stores lon first)."""
    geometry = row.get("geometry") if isinstance(row, Mapping) else None
    if not isinstance(geometry, Mapping) or geometry.get("type") != "Point":
        return None
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        return None
    try:
        return float(coordinates[1]), float(coordinates[0])
    except (TypeError, ValueError):
        return None


def to_instant(value: Any, zone: ZoneInfo) -> datetime | None:
    """An aware datetime from POSIX seconds (or milliseconds) or ISO 8601 text.

    Local times without an offset, common in French exports, are read in ``zone``; POSIX
    times are given in ``zone`` too, so they go out with the local offset.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # milliseconds since 1973 are > 1e11
        return datetime.fromtimestamp(seconds, zone) if seconds > 0 else None
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return to_instant(int(text), zone)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{text!r} is not a date-time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


_TRUE = {"1", "true", "yes", "oui", "y", "t", "o"}
_FALSE = {"0", "false", "no", "non", "n", "f"}


def to_bool(value: Any) -> bool | None:
    """True/false from the many spellings feeds use (1/0, "true", "oui"...)."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def to_int(value: Any) -> int | None:
    """A count; rejects fractions and negative numbers (never a valid count)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count")
    number = float(str(value).strip().replace(",", ".")) if isinstance(value, str) else value
    if not float(number).is_integer() or number < 0:
        raise ValueError(f"{value!r} is not a count")
    return int(number)


def to_float(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    number = float(str(value).strip().replace(",", ".")) if isinstance(value, str) else value
    return float(number)

"""Compile a GTFS zip into a :class:`~connectors.gtfs.timetable.Timetable`.

Small tables (agency, stops, routes, calendars) are checked row by row, so every broken
row is reported with its file and line; trips and stop_times, which can hold millions of
rows, are converted column-wise (see :mod:`.stop_times`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from .calendar import (
    CALENDAR_COLUMNS,
    CALENDAR_DATES_COLUMNS,
    DEFAULT_MAX_DAYS,
    build_service_matrix,
)
from .errors import GtfsError, IssueLog
from .fastcsv import IdIndex
from .parse import EMPTY, INVALID, Interner, Lookup, Memo, parse_float, parse_int
from .reader import (
    DEFAULT_BLOCK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_UNCOMPRESSED_BYTES,
    GtfsZip,
    release_free_memory,
)
from .shapes import SHAPES_FILE, link_trips, read_shapes
from .stop_times import departure_index, expand_runs, read_frequencies, read_stop_times
from .timetable import Timetable

_COLOUR = re.compile(r"^[0-9A-Fa-f]{6}$")


def compile_feed(
    source: bytes | str | os.PathLike[str],
    *,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_calendar_days: int = DEFAULT_MAX_DAYS,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    max_issues: int = 1000,
    progress: Callable[[str, float], None] | None = None,
    keep_trip_columns: Sequence[str] = (),
) -> Timetable:
    """Read and compile a GTFS zip (bytes or path). Raises :class:`GtfsError` if unusable.

    ``progress(step, share)`` follows a long load: ``stop_times`` from 0 to 1, then
    ``compile``. ``keep_trip_columns``: extra trips.txt columns to keep as text
    (``Timetable.trip_extra``), for realtime producers whose trip ids refer to them.
    """
    issues = IssueLog(max_kept=max_issues)
    with GtfsZip(
        source, max_uncompressed_bytes=max_uncompressed_bytes, max_line_bytes=max_line_bytes
    ) as z:
        z.check_required()
        agencies = _read_agencies(z, issues)
        stops = _read_stops(z, issues)
        routes = _read_routes(z, issues, agencies)
        services, day0, active = build_service_matrix(
            z.read_table("calendar.txt", CALENDAR_COLUMNS, issues),
            z.read_table("calendar_dates.txt", CALENDAR_DATES_COLUMNS, issues),
            issues,
            max_calendar_days,
        )
        trips = _read_trips(z, issues, routes, services, keep_trip_columns)
        if len(services.values) > active.shape[0]:
            extra = np.zeros((len(services.values) - active.shape[0], active.shape[1]), bool)
            active = np.vstack((active, extra))
        headsigns = Interner()
        rows = read_stop_times(
            z,
            IdIndex(trips["trip_ids"]),
            IdIndex(stops["ids"]),
            headsigns,
            issues,
            block_bytes,
            (lambda share: progress("stop_times", share)) if progress else None,
        )
        freq = read_frequencies(z, Lookup(trips["index"]), issues)
        feed_info = _read_feed_info(z, issues)
        shapes, shape_names = read_shapes(z, issues, block_bytes)
        shapes, trip_shape = link_trips(
            shapes, shape_names, trips["shape_ids"], z.has(SHAPES_FILE), issues
        )
        del shape_names
    if progress is not None:
        progress("compile", 0.0)
    n_trips = len(trips["trip_ids"])
    runs = expand_runs(rows, n_trips, freq)
    del rows
    without = n_trips - len(np.unique(runs.trip))
    if without:
        issues.add("trips.txt", None, "trip_without_stop_times", f"{without} trip(s)", "warning")
    sd_ptr, sd_time, sd_row = departure_index(runs.rows.stop, runs.rows.dep, len(stops["ids"]))
    st = runs.rows
    timetable = Timetable(
        agency_ids=agencies["ids"],
        agency_names=agencies["names"],
        agency_timezones=agencies["timezones"],
        agency_urls=agencies["urls"],
        agency_langs=agencies["langs"],
        stop_ids=stops["ids"],
        stop_codes=stops["codes"],
        stop_names=stops["names"],
        stop_platform_codes=stops["platforms"],
        stop_timezones=stops["timezones"],
        route_ids=routes["ids"],
        route_short_names=routes["short"],
        route_long_names=routes["long"],
        route_colors=routes["color"],
        route_text_colors=routes["text_color"],
        trip_ids=trips["trip_ids"],
        trip_headsigns=trips["headsigns"],
        trip_short_names=trips["short_names"],
        trip_block_ids=trips["block_ids"],
        trip_shape_ids=trips["shape_ids"],
        trip_extra=trips["extra"],
        service_ids=services.values,
        headsigns=headsigns.values,
        stop_lat=stops["lat"],
        stop_lon=stops["lon"],
        stop_location_type=stops["location_type"],
        stop_parent=stops["parent"],
        stop_wheelchair=stops["wheelchair"],
        route_type=routes["type"],
        route_agency=routes["agency"],
        route_sort_order=routes["sort_order"],
        trip_route=trips["route"],
        trip_service=trips["service"],
        trip_direction=trips["direction"],
        trip_wheelchair=trips["wheelchair"],
        trip_bikes=trips["bikes"],
        trip_shape=trip_shape,
        shape_ids=shapes.ids,
        shape_ptr=shapes.ptr,
        shape_lat=shapes.lat,
        shape_lon=shapes.lon,
        run_trip=runs.trip,
        run_start=runs.start,
        run_headway=runs.headway,
        run_exact=runs.exact,
        st_ptr=runs.ptr,
        st_stop=st.stop,
        st_seq=st.seq,
        st_arr=st.arr,
        st_dep=st.dep,
        st_pickup=st.pickup,
        st_dropoff=st.dropoff,
        st_headsign=st.headsign,
        sd_ptr=sd_ptr,
        sd_time=sd_time,
        sd_row=sd_row,
        service_active=active,
        day0=day0,
        source_hash=content_hash(source),
        feed_info=feed_info,
        issues=issues.issues,
        issue_counts=dict(issues.counts),
    )
    release_free_memory()
    return timetable


def content_hash(source: bytes | str | os.PathLike[str]) -> str:
    """SHA-256 of the feed's bytes, to tell whether a saved timetable is still current."""
    digest = hashlib.sha256()
    if isinstance(source, bytes | bytearray | memoryview):
        digest.update(source)
    else:
        with Path(source).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _read_agencies(z: GtfsZip, issues: IssueLog) -> dict[str, list[str]]:
    cols = ("agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang")
    table = z.read_table("agency.txt", cols, issues)
    out: dict[str, list[str]] = {"ids": [], "names": [], "urls": [], "timezones": [], "langs": []}
    for i, line in enumerate(table.lines):
        agency_id = table.get("agency_id")[i]
        tz = table.get("agency_timezone")[i].strip()
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            issues.add("agency.txt", line, "invalid_timezone", f"agency_timezone {tz!r}")
            continue
        if agency_id in out["ids"]:
            issues.add("agency.txt", line, "duplicate_key", f"agency_id {agency_id!r}")
            continue
        out["ids"].append(agency_id)
        out["names"].append(table.get("agency_name")[i])
        out["urls"].append(table.get("agency_url")[i])
        out["timezones"].append(tz)
        out["langs"].append(table.get("agency_lang")[i])
    if not out["ids"]:
        raise GtfsError("agency.txt has no agency with a valid agency_timezone")
    return out


def _read_stops(z: GtfsZip, issues: IssueLog) -> dict:
    cols = (
        "stop_id",
        "stop_code",
        "stop_name",
        "stop_lat",
        "stop_lon",
        "location_type",
        "parent_station",
        "platform_code",
        "wheelchair_boarding",
        "stop_timezone",
    )
    t = z.read_table("stops.txt", cols, issues)
    index = Lookup()
    ids: list[str] = []
    kept: list[int] = []
    for i, line in enumerate(t.lines):
        stop_id = t.get("stop_id")[i]
        if not stop_id:
            issues.add("stops.txt", line, "missing_field", "stop_id is empty")
        elif stop_id in index:
            issues.add("stops.txt", line, "duplicate_key", f"stop_id {stop_id!r}")
        else:
            index[stop_id] = len(ids)
            ids.append(stop_id)
            kept.append(i)
    ints = Memo(parse_int)
    location_type = np.array([ints[t.get("location_type")[i]] for i in kept], np.int64)
    bad_type = (location_type == INVALID) | (location_type > 4)
    issues.add_rows(
        "stops.txt",
        [t.lines[i] for i in kept],
        np.flatnonzero(bad_type),
        "invalid_value",
        lambda k: "location_type outside 0..4, read as 0",
        "warning",
    )
    location_type[bad_type | (location_type == EMPTY)] = 0
    lat = np.array([parse_float(t.get("stop_lat")[i]) for i in kept], np.float64)
    lon = np.array([parse_float(t.get("stop_lon")[i]) for i in kept], np.float64)
    no_pos = (np.isnan(lat) | np.isnan(lon)) & (location_type <= 2)
    issues.add_rows(
        "stops.txt",
        [t.lines[i] for i in kept],
        np.flatnonzero(no_pos),
        "missing_field",
        lambda k: f"stop {ids[k]!r} has no usable stop_lat/stop_lon (kept, not locatable)",
        "warning",
    )
    parent = np.full(len(kept), -1, np.int32)
    for k, i in enumerate(kept):
        ref = t.get("parent_station")[i]
        if ref:
            parent[k] = index[ref]
            if parent[k] < 0:
                issues.add(
                    "stops.txt",
                    t.lines[i],
                    "unknown_reference",
                    f"parent_station {ref!r}",
                    "warning",
                )
    wheelchair = np.array([max(0, ints[t.get("wheelchair_boarding")[i]]) for i in kept], np.int8)
    wheelchair[wheelchair > 2] = 0
    # GTFS: a platform with no wheelchair information inherits its station's.
    inherit = (wheelchair == 0) & (parent >= 0)
    wheelchair[inherit] = wheelchair[parent[inherit]]
    return {
        "index": index,
        "ids": ids,
        "codes": [t.get("stop_code")[i] for i in kept],
        "names": [t.get("stop_name")[i] for i in kept],
        "platforms": [t.get("platform_code")[i] for i in kept],
        "timezones": [t.get("stop_timezone")[i] for i in kept],
        "lat": lat,
        "lon": lon,
        "location_type": location_type.astype(np.int8),
        "parent": parent,
        "wheelchair": wheelchair,
    }


def _colour(value: str, line: int, issues: IssueLog) -> str:
    value = value.strip().lstrip("#")
    if value and not _COLOUR.match(value):
        issues.add("routes.txt", line, "invalid_value", f"colour {value!r} ignored", "warning")
        return ""
    return value.upper()


def _read_routes(z: GtfsZip, issues: IssueLog, agencies: dict[str, list[str]]) -> dict:
    cols = (
        "route_id",
        "agency_id",
        "route_short_name",
        "route_long_name",
        "route_type",
        "route_color",
        "route_text_color",
        "route_sort_order",
    )
    t = z.read_table("routes.txt", cols, issues)
    agency_of = {a: i for i, a in enumerate(agencies["ids"])}
    single = len(agencies["ids"]) == 1
    out: dict = {k: [] for k in ("ids", "short", "long", "color", "text_color")}
    types: list[int] = []
    owner: list[int] = []
    sort_order: list[int] = []
    index = Lookup()
    for i, line in enumerate(t.lines):
        route_id = t.get("route_id")[i]
        agency_id = t.get("agency_id")[i]
        route_type = parse_int(t.get("route_type")[i])
        agency = agency_of.get(agency_id, -1)
        if not route_id:
            issues.add("routes.txt", line, "missing_field", "route_id is empty")
            continue
        if route_id in index:
            issues.add("routes.txt", line, "duplicate_key", f"route_id {route_id!r}")
            continue
        if route_type < 0:
            issues.add("routes.txt", line, "invalid_value", "route_type missing or not a number")
            continue
        if agency < 0:
            if not single:
                issues.add("routes.txt", line, "unknown_reference", f"agency_id {agency_id!r}")
                continue
            if agency_id:
                # One agency only: the route can only be hers, whatever the id says.
                issues.add(
                    "routes.txt", line, "unknown_reference", f"agency_id {agency_id!r}", "warning"
                )
            agency = 0
        index[route_id] = len(out["ids"])
        out["ids"].append(route_id)
        out["short"].append(t.get("route_short_name")[i])
        out["long"].append(t.get("route_long_name")[i])
        out["color"].append(_colour(t.get("route_color")[i], line, issues))
        out["text_color"].append(_colour(t.get("route_text_color")[i], line, issues))
        types.append(route_type)
        owner.append(agency)
        order = parse_int(t.get("route_sort_order")[i])
        sort_order.append(order if order >= 0 else -1)
    out["index"] = index
    out["type"] = np.array(types, np.int32)
    out["agency"] = np.array(owner, np.int32)
    out["sort_order"] = np.array(sort_order, np.int32)
    return out


def _read_trips(
    z: GtfsZip, issues: IssueLog, routes: dict, services: Interner, extra: Sequence[str] = ()
) -> dict:
    cols = (
        "route_id",
        "service_id",
        "trip_id",
        "trip_headsign",
        "trip_short_name",
        "direction_id",
        "block_id",
        "shape_id",
        "wheelchair_accessible",
        "bikes_allowed",
    )
    t = z.read_table("trips.txt", (*cols, *(c for c in extra if c not in cols)), issues)
    for name in extra:
        if name not in t.columns and len(t):
            issues.add(
                "trips.txt", None, "missing_column", f"{name} (keep_trip_columns)", "warning"
            )
    n = len(t)
    trip_ids = t.get("trip_id")
    route_col = t.get("route_id")
    service_col = t.get("service_id")
    known_services = len(services.values)
    route = routes["index"].convert(route_col)
    bad = np.zeros(n, bool)
    checks = (
        (np.array([not s for s in trip_ids], bool), "missing_field", lambda i: "trip_id is empty"),
        (route < 0, "unknown_reference", lambda i: f"route_id {route_col[i]!r}"),
        (np.array([not s for s in service_col], bool), "missing_field", lambda i: "service_id"),
    )
    for mask, code, describe in checks:
        mask &= ~bad
        issues.add_rows("trips.txt", t.lines, np.flatnonzero(mask), code, describe)
        bad |= mask
    if len(set(trip_ids)) != n:
        seen: set[str] = set()
        for i, trip_id in enumerate(trip_ids):
            if trip_id in seen and not bad[i]:
                issues.add("trips.txt", t.lines[i], "duplicate_key", f"trip_id {trip_id!r}")
                bad[i] = True
            seen.add(trip_id)
    keep = np.flatnonzero(~bad)
    service = services.convert([service_col[i] for i in keep])
    for sid in services.values[known_services:]:
        issues.add(
            "trips.txt",
            None,
            "unknown_reference",
            f"service_id {sid!r} is in no calendar file: its trips never run",
            "warning",
        )
    ints = Memo(parse_int)

    def small_int(name: str) -> np.ndarray:
        col = t.get(name)
        values = ints.convert(col if len(keep) == n else [col[i] for i in keep])
        values[(values < 0) | (values > 2)] = -1
        return values.astype(np.int8)

    direction = small_int("direction_id")
    direction[direction > 1] = -1
    wheelchair = small_int("wheelchair_accessible")
    wheelchair[wheelchair < 0] = 0
    bikes = small_int("bikes_allowed")
    bikes[bikes < 0] = 0
    ids = [trip_ids[i] for i in keep]
    return {
        "index": {trip_id: k for k, trip_id in enumerate(ids)},
        "trip_ids": ids,
        "headsigns": _pick(t.get("trip_headsign"), keep, n),
        "short_names": _pick(t.get("trip_short_name"), keep, n),
        "block_ids": _pick(t.get("block_id"), keep, n),
        "shape_ids": _pick(t.get("shape_id"), keep, n),
        "route": route[keep],
        "service": service,
        "direction": direction,
        "wheelchair": wheelchair,
        "bikes": bikes,
        "extra": {name: _pick(t.get(name), keep, n) for name in extra},
    }


def _pick(column: Sequence[str], keep: np.ndarray, n: int) -> list[str]:
    """The kept values of a column (the column itself when every row was kept)."""
    return list(column) if len(keep) == n else [column[i] for i in keep]


def _read_feed_info(z: GtfsZip, issues: IssueLog) -> dict[str, str]:
    cols = (
        "feed_publisher_name",
        "feed_lang",
        "feed_version",
        "feed_start_date",
        "feed_end_date",
    )
    table = z.read_table("feed_info.txt", cols, issues)
    if not len(table):
        return {}
    return {c: table.columns[c][0] for c in cols if c in table.columns}

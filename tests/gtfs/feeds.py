"""Hand-made GTFS feeds, built in code into zip bytes, for the engine's rule tests."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"


def csv_text(header: list[str], rows: list[list[object]], *, crlf: bool = False) -> str:
    """CSV text with a header; every field is quoted when needed by the csv module."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def make_zip(files: dict[str, str | bytes]) -> bytes:
    """A zip holding ``files`` (name → text or bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content.encode() if isinstance(content, str) else content)
    return out.getvalue()


@dataclass
class FeedBuilder:
    """A small feed assembled call by call; :meth:`to_zip` writes the GTFS files."""

    agencies: list[list[object]] = field(default_factory=list)
    stops: list[list[object]] = field(default_factory=list)
    routes: list[list[object]] = field(default_factory=list)
    trips: list[list[object]] = field(default_factory=list)
    stop_times: list[list[object]] = field(default_factory=list)
    calendar: list[list[object]] | None = None
    calendar_dates: list[list[object]] | None = None
    frequencies: list[list[object]] | None = None
    shapes: list[list[object]] | None = None
    extra_files: dict[str, str | bytes] = field(default_factory=dict)

    def agency(self, agency_id: str = "A", tz: str = PARIS, name: str = "Agency") -> FeedBuilder:
        """Add an agency."""
        self.agencies.append([agency_id, name, "https://example.org", tz])
        return self

    def stop(
        self,
        stop_id: str,
        name: str | None = None,
        lat: float = 50.6366,
        lon: float = 3.0703,
        *,
        location_type: int | None = None,
        parent: str = "",
        platform: str = "",
        wheelchair: int | None = None,
    ) -> FeedBuilder:
        """Add a stop (defaults near Lille-Flandres)."""
        self.stops.append(
            [stop_id, name or stop_id, lat, lon, location_type, parent, platform, wheelchair]
        )
        return self

    def route(
        self, route_id: str, agency_id: str = "A", short: str = "", route_type: int = 3
    ) -> FeedBuilder:
        """Add a route."""
        self.routes.append([route_id, agency_id, short or route_id, "", route_type, "FF0000", ""])
        return self

    def trip(
        self,
        trip_id: str,
        calls: list[tuple[str, str]] | list[tuple[str, str, str]],
        *,
        route: str = "R",
        service: str = "S",
        headsign: str = "",
        direction: int | None = None,
        wheelchair: int | None = None,
        stop_headsigns: dict[int, str] | None = None,
        shape: str = "",
    ) -> FeedBuilder:
        """Add a trip and its stop times; a call is (stop, time) or (stop, arrival, departure)."""
        self.trips.append([route, service, trip_id, headsign, direction, wheelchair, shape])
        for seq, call in enumerate(calls, start=1):
            stop, arr, dep = (call[0], call[1], call[1]) if len(call) == 2 else call
            shs = (stop_headsigns or {}).get(seq, "")
            self.stop_times.append([trip_id, arr, dep, stop, seq, shs, None, None])
        return self

    def weekly(self, service: str, start: str, end: str, days: str = "1111111") -> FeedBuilder:
        """Add a calendar.txt row; ``days`` is seven 0/1 flags from Monday."""
        self.calendar = self.calendar or []
        self.calendar.append([service, *days, start, end])
        return self

    def exception(self, service: str, date: str, added: bool) -> FeedBuilder:
        """Add a calendar_dates.txt row (added=True: type 1, False: type 2)."""
        self.calendar_dates = self.calendar_dates or []
        self.calendar_dates.append([service, date, 1 if added else 2])
        return self

    def frequency(
        self, trip_id: str, start: str, end: str, headway_s: int, exact: int
    ) -> FeedBuilder:
        """Add a frequencies.txt row."""
        self.frequencies = self.frequencies or []
        self.frequencies.append([trip_id, start, end, headway_s, exact])
        return self

    def shape(self, shape_id: str, points: list[tuple[float, float, int]]) -> FeedBuilder:
        """Add shapes.txt rows: (lat, lon, shape_pt_sequence), written in the order given."""
        self.shapes = self.shapes or []
        self.shapes.extend([shape_id, lat, lon, seq] for lat, lon, seq in points)
        return self

    def files(self) -> dict[str, str | bytes]:
        """The feed's files as text."""
        files: dict[str, str | bytes] = {
            "agency.txt": csv_text(
                ["agency_id", "agency_name", "agency_url", "agency_timezone"], self.agencies
            ),
            "stops.txt": csv_text(
                [
                    "stop_id",
                    "stop_name",
                    "stop_lat",
                    "stop_lon",
                    "location_type",
                    "parent_station",
                    "platform_code",
                    "wheelchair_boarding",
                ],
                self.stops,
            ),
            "routes.txt": csv_text(
                [
                    "route_id",
                    "agency_id",
                    "route_short_name",
                    "route_long_name",
                    "route_type",
                    "route_color",
                    "route_text_color",
                ],
                self.routes,
            ),
            "trips.txt": self._trips_text(),
            "stop_times.txt": csv_text(
                [
                    "trip_id",
                    "arrival_time",
                    "departure_time",
                    "stop_id",
                    "stop_sequence",
                    "stop_headsign",
                    "pickup_type",
                    "drop_off_type",
                ],
                self.stop_times,
            ),
        }
        if self.calendar is not None:
            files["calendar.txt"] = csv_text(
                [
                    "service_id",
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                    "start_date",
                    "end_date",
                ],
                self.calendar,
            )
        if self.calendar_dates is not None:
            files["calendar_dates.txt"] = csv_text(
                ["service_id", "date", "exception_type"], self.calendar_dates
            )
        if self.frequencies is not None:
            files["frequencies.txt"] = csv_text(
                ["trip_id", "start_time", "end_time", "headway_secs", "exact_times"],
                self.frequencies,
            )
        if self.shapes is not None:
            files["shapes.txt"] = csv_text(
                ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"], self.shapes
            )
        files.update(self.extra_files)
        return files

    def _trips_text(self) -> str:
        """trips.txt; the shape_id column only when a trip has one (older tests' bytes stay)."""
        header = [
            "route_id",
            "service_id",
            "trip_id",
            "trip_headsign",
            "direction_id",
            "wheelchair_accessible",
            "shape_id",
        ]
        rows = [row + [""] * (len(header) - len(row)) for row in self.trips]
        if not any(row[6] for row in rows):
            header, rows = header[:6], [row[:6] for row in rows]
        return csv_text(header, rows)

    def to_zip(self) -> bytes:
        """The feed as zip bytes."""
        return make_zip(self.files())


def simple_feed(tz: str = PARIS) -> FeedBuilder:
    """One agency, route R, stops A → B → C, service S every day of 2026."""
    return (
        FeedBuilder()
        .agency("A", tz)
        .stop("A", "Alpha")
        .stop("B", "Bravo", 50.64, 3.08)
        .stop("C", "Charlie", 50.65, 3.09)
        .route("R")
        .weekly("S", "20260101", "20261231")
    )

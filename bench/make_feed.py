"""A synthetic GTFS feed of a city network, at any scale, for the timetable benchmarks.

    .venv/bin/python bench/make_feed.py --stop-times 10000000 --out /tmp/feed10m.zip

The feed is shaped like a real city's: stations with platforms (and metro entrances) spread
densely in the centre and thinly in the suburbs, so central stations are busy and outer ones
quiet; metro, tram, bus, night-bus and coach lines of 20-60 stops; weekday, school-holiday,
Saturday, Sunday and Friday/Saturday-night services with public holidays and school holidays
as calendar_dates exceptions; departures past 24:00; one metro line run from frequencies.txt
(exact_times=0) and one trunk bus line partly so (exact_times=1); dwell times at metro and tram
stops; short-turn trips; stop_headsign on some lines; pickup/drop-off types (no drop-off at
the first stop, no pickup at the last, "coordinate with driver" at a few request stops).
stop_times.txt has exactly ``--stop-times`` rows. The output depends only on the arguments
(seeded); stop_times.txt is streamed into the zip, compressed by a second thread.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import io
import math
import queue
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Bumped when the output for given arguments changes (benchmarks cache feeds by it).
GENERATOR_VERSION = 1

FEED_START = dt.date(2026, 9, 1)
FEED_END = dt.date(2027, 6, 30)
TIMEZONE = "Europe/Paris"
CENTRE = (49.4431, 1.0993)  # lat, lon of the made-up city (Rouen's)

SCHOOL_HOLIDAYS = (
    (dt.date(2026, 10, 17), dt.date(2026, 11, 1)),
    (dt.date(2026, 12, 19), dt.date(2027, 1, 3)),
    (dt.date(2027, 2, 13), dt.date(2027, 3, 1)),
    (dt.date(2027, 4, 10), dt.date(2027, 4, 26)),
)
PUBLIC_HOLIDAYS = (
    dt.date(2026, 11, 11),
    dt.date(2026, 12, 25),
    dt.date(2027, 1, 1),
    dt.date(2027, 3, 29),
    dt.date(2027, 5, 1),
    dt.date(2027, 5, 6),
    dt.date(2027, 5, 8),
    dt.date(2027, 5, 17),
)
#: Day services, with how busy each is relative to a school weekday and when it starts.
DAY_SERVICES = {"WD": (1.0, 5.0), "WDV": (0.8, 5.25), "SA": (0.75, 5.5), "SU": (0.45, 6.5)}
NIGHT_SERVICE = "NUIT"

PLACES = (
    "Gare Centrale",
    "Hôtel de Ville",
    "Théâtre des Arts",
    "Palais de Justice",
    "Cathédrale",
    "Université",
    "CHU Charles Nicolle",
    "Préfecture",
    "Musée des Beaux-Arts",
    "Jardin des Plantes",
    "Stade Diochon",
    "Parc des Expositions",
    "Médiathèque",
    "Halle aux Toiles",
    "Vieux Marché",
    "Boulingrin",
)
WAYS = ("Rue", "Avenue", "Boulevard", "Place", "Quai", "Allée", "Chemin", "Cours", "Square")
NAMES = (
    "Victor Hugo",
    "Jean Jaurès",
    "de la République",
    "Pasteur",
    "Gambetta",
    "des Lilas",
    "du Marché",
    "Saint-Michel",
    "de l'Église",
    "des Écoles",
    "Voltaire",
    "Émile Zola",
    "de la Gare",
    "du Moulin",
    "des Tilleuls",
    "Jean Moulin",
    "Carnot",
    "de la Liberté",
    "du 8 Mai 1945",
    "Foch",
    "Clemenceau",
    "de Verdun",
    "des Acacias",
    "du Château",
    "Sainte-Anne",
    "Jeanne d'Arc",
    "Flaubert",
    "Corneille",
    "des Sapins",
    "de la Paix",
    "Lafayette",
    "Saint-Sever",
    "du Mont-Riboudet",
    "de Bapeaume",
    "des Martyrs",
    "Beauvoisine",
    "Martainville",
    "Saint-Marc",
    "de Crosne",
    "Pierre Corneille",
    "des Charrettes",
    "du Gros-Horloge",
    "aux Ours",
    "de la Champmeslé",
    "Thiers",
    "Louis Pasteur",
    "des Canadiens",
    "Aristide Briand",
    "du Général Leclerc",
    "Marie Curie",
)
DISTRICTS = (
    "Centre",
    "Bellevue",
    "Les Prés",
    "Saint-Julien",
    "Grammont",
    "Madrillet",
    "Sapins",
    "Grieu",
    "Mont-Gargan",
    "Jouvenet",
    "Bihorel",
    "Darnétal",
    "Déville",
    "Maromme",
    "Canteleu",
    "Petit-Quevilly",
)
COLOURS = ("E2001A", "0072BC", "00A650", "F7A800", "9B2589", "00B2A9", "E4007C", "6D6E71")


@dataclass
class Route:
    """One line: a pattern of stations in direction 0 (direction 1 runs it backwards)."""

    route_id: str
    agency_id: str
    short_name: str
    kind: str  # metro, tram, trunk, bus, night, coach
    route_type: int
    colour: str
    text_colour: str
    stations: list[int]
    rate: float  # departures per hour and direction at peak, before scaling
    segment_s: np.ndarray  # running time between consecutive stations, seconds
    dwell_s: int  # arrival before departure at intermediate stops
    via_headsign: bool = False
    request_stops: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    platforms: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))


@dataclass
class Trip:
    """One planned trip: a slice of its route's pattern from a first departure time."""

    route: int
    service: str
    direction: int
    start_s: int
    first: int  # index into the directed pattern
    length: int
    pace: float  # multiplier on running times (peak hours are slower)
    frequencies: list[tuple[int, int, int, int]] = field(default_factory=list)


def default_stations(stop_times: int) -> int:
    return int(min(5000, max(600, round(1200 * math.sqrt(stop_times / 1e6)))))


def default_routes(stop_times: int) -> int:
    return int(min(400, max(40, round(100 * math.sqrt(stop_times / 1e6)))))


# ---------------------------------------------------------------------------------- network
def place_stations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 2) positions in metres from the centre: a dense core and sparse suburbs."""
    core = int(n * 0.65)
    xy = np.empty((n, 2))
    xy[:core] = rng.normal(0.0, 3500.0, (core, 2))
    radius = 14000.0 * np.sqrt(rng.random(n - core))
    angle = rng.random(n - core) * 2 * math.pi
    xy[core:, 0] = radius * np.cos(angle)
    xy[core:, 1] = radius * np.sin(angle)
    return xy


def station_names(rng: np.random.Generator, xy: np.ndarray) -> list[str]:
    """Unique names; landmarks go to the most central stations."""
    plain = [f"{way} {name}" for way in WAYS for name in NAMES]
    rng.shuffle(plain)
    extra = [f"{name} ({district})" for district in DISTRICTS for name in plain]
    pool = list(PLACES) + plain + extra
    if len(pool) < len(xy):
        pool += [f"Arrêt {i}" for i in range(len(xy) - len(pool))]
    order = np.argsort(np.hypot(xy[:, 0], xy[:, 1]), kind="stable")
    names = [""] * len(xy)
    for rank, station in enumerate(order.tolist()):
        names[station] = pool[rank]
    return names


def route_kinds(n_routes: int) -> list[str]:
    metro = min(6, max(2, n_routes // 60))
    tram = min(12, max(3, n_routes // 25))
    trunk = min(10, max(3, n_routes // 30))
    night = min(10, max(2, n_routes // 30))
    coach = max(2, n_routes // 10)
    bus = max(1, n_routes - metro - tram - trunk - night - coach)
    return (
        ["metro"] * metro
        + ["tram"] * tram
        + ["trunk"] * trunk
        + ["bus"] * bus
        + (["night"] * night + ["coach"] * coach)
    )


#: kind -> (route_type, stops low/high, spacing m, speed m/s, dwell s, peak rate/h, centre sigma)
KINDS = {
    "metro": (1, 20, 30, 850.0, 9.0, 20, 15.0, 900.0),
    "tram": (0, 22, 40, 500.0, 6.0, 15, 10.0, 1500.0),
    "trunk": (3, 30, 55, 420.0, 5.0, 0, 8.0, 1800.0),
    "bus": (3, 20, 60, 380.0, 4.5, 0, 4.0, 3000.0),
    "night": (3, 25, 50, 450.0, 6.0, 0, 2.0, 1500.0),
    "coach": (3, 20, 40, 900.0, 8.0, 0, 1.5, 6000.0),
}


def build_routes(rng: np.random.Generator, xy: np.ndarray, n_routes: int) -> list[Route]:
    routes: list[Route] = []
    counters: dict[str, int] = {}
    for kind in route_kinds(n_routes):
        route_type, low, high, spacing, speed, dwell, rate, sigma = KINDS[kind]
        counters[kind] = counters.get(kind, 0) + 1
        k = counters[kind]
        short = {
            "metro": f"M{k}",
            "tram": f"T{k}",
            "trunk": f"C{k}",
            "bus": str(k + 10),
            "night": f"N{k}",
            "coach": str(300 + k),
        }[kind]
        n_stops = int(rng.integers(low, high + 1))
        stations = _pattern(rng, xy, n_stops, spacing, sigma, coach=kind == "coach")
        gaps = np.hypot(*(xy[stations[1:]] - xy[stations[:-1]]).T)
        segment = np.clip(gaps, 150.0, 4000.0) / speed + (dwell or 15)
        if kind == "bus":
            rate *= float(np.exp(rng.normal(0.0, 0.45)))
        light = kind in ("metro", "tram")
        colour = COLOURS[(k - 1) % len(COLOURS)] if light else str(rng.choice(COLOURS))
        routes.append(
            Route(
                route_id=f"RUV:{short}" if kind != "coach" else f"CAR:{short}",
                agency_id="CAR" if kind == "coach" else "RUV",
                short_name=short,
                kind=kind,
                route_type=route_type,
                colour=colour,
                text_colour="000000" if colour in ("F7A800", "00B2A9") else "FFFFFF",
                stations=stations,
                rate=rate,
                segment_s=segment,
                dwell_s=dwell,
                via_headsign=kind == "bus" and rng.random() < 0.15,
                request_stops=(rng.random(n_stops) < 0.05) & (kind in ("bus", "coach")),
            )
        )
    return routes


def _pattern(
    rng: np.random.Generator,
    xy: np.ndarray,
    n_stops: int,
    spacing: float,
    sigma: float,
    coach: bool,
) -> list[int]:
    """Stations nearest to points along a gently curved line, never the same one twice."""
    angle = rng.random() * 2 * math.pi
    length = spacing * (n_stops - 1)
    if coach:
        # Coaches run from the centre out to the edge of the area.
        origin = rng.normal(0.0, 1000.0, 2)
        along = np.linspace(0.0, length, n_stops)
    else:
        origin = rng.normal(0.0, sigma, 2)
        along = np.linspace(-length / 2, length / 2, n_stops)
    bend = rng.normal(0.0, 1200.0) * np.sin(np.linspace(0, math.pi * rng.uniform(0.5, 2), n_stops))
    direction = np.array([math.cos(angle), math.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    points = origin + along[:, None] * direction + bend[:, None] * normal
    used: set[int] = set()
    out: list[int] = []
    for point in points:
        order = np.argsort(np.hypot(*(xy - point).T))
        station = next(int(s) for s in order[: len(used) + 1] if int(s) not in used)
        used.add(station)
        out.append(station)
    return out


@dataclass
class Stops:
    """stops.txt rows: used stations, their platforms and metro entrances."""

    rows: list[tuple[str, str, str, str, str, str, str, str, str]]
    platform_ids: list[str]


def build_stops(
    rng: np.random.Generator, xy: np.ndarray, names: list[str], routes: list[Route]
) -> Stops:
    """One platform per (station, mode group, direction); sets each route's platforms."""
    lat0, lon0 = CENTRE
    metres_per_lon = 111_320.0 * math.cos(math.radians(lat0))

    def latlon(x: float, y: float) -> tuple[str, str]:
        return f"{lat0 + y / 110_540.0:.6f}", f"{lon0 + x / metres_per_lon:.6f}"

    platform_of: dict[tuple[int, str, int], int] = {}
    platform_ids: list[str] = []
    platform_rows: list[tuple] = []
    metro_stations: set[int] = set()
    used: set[int] = set()
    for route in routes:
        group = route.short_name if route.kind == "metro" else route.kind
        group = "bus" if group in ("trunk", "night", "coach") else group
        for direction in (0, 1):
            pattern = route.stations if direction == 0 else route.stations[::-1]
            platforms = []
            for station in pattern:
                used.add(station)
                if route.kind == "metro":
                    metro_stations.add(station)
                key = (station, group, direction)
                if key not in platform_of:
                    platform_of[key] = len(platform_ids)
                    platform_ids.append(f"SP_{len(platform_ids) + 1:05d}")
                    code = ("1", "2")[direction] if group != "bus" else ("A", "B")[direction]
                    offset = 12.0 if direction == 0 else -12.0
                    x, y = xy[station]
                    lat, lon = latlon(x + offset, y + offset)
                    wheelchair = "1" if group != "bus" else str(rng.choice(["0", "1", "1", "2"]))
                    stop_code = f"{1000 + len(platform_ids)}" if group == "bus" else ""
                    platform_rows.append(
                        (
                            platform_ids[-1],
                            stop_code,
                            names[station],
                            lat,
                            lon,
                            "0",
                            f"SA_{station + 1:04d}",
                            code,
                            wheelchair,
                        )
                    )
                platforms.append(platform_of[key])
            route.platforms[direction].extend(platforms)
    rows: list[tuple] = []
    for station in sorted(used):
        lat, lon = latlon(*xy[station])
        rows.append((f"SA_{station + 1:04d}", "", names[station], lat, lon, "1", "", "", "0"))
        if station in metro_stations:
            for e in (1, 2):
                x, y = xy[station]
                lat, lon = latlon(x + 40.0 * e, y - 30.0 * e)
                rows.append(
                    (
                        f"SE_{station + 1:04d}_{e}",
                        "",
                        f"{names[station]} (accès {e})",
                        lat,
                        lon,
                        "2",
                        f"SA_{station + 1:04d}",
                        "",
                        "0",
                    )
                )
    return Stops(rows + platform_rows, platform_ids)


# ---------------------------------------------------------------------------------- calendar
def calendar_rows() -> tuple[list[tuple], list[tuple]]:
    """calendar.txt and calendar_dates.txt rows for WD, WDV, SA, SU and NUIT."""

    def ymd(day: dt.date) -> str:
        return day.strftime("%Y%m%d")

    start, end = ymd(FEED_START), ymd(FEED_END)
    calendar = [
        ("WD", "1", "1", "1", "1", "1", "0", "0", start, end),
        ("WDV", "0", "0", "0", "0", "0", "0", "0", start, end),
        ("SA", "0", "0", "0", "0", "0", "1", "0", start, end),
        ("SU", "0", "0", "0", "0", "0", "0", "1", start, end),
        (NIGHT_SERVICE, "0", "0", "0", "0", "1", "1", "0", start, end),
    ]
    exceptions: list[tuple] = []
    day = FEED_START
    while day <= FEED_END:
        weekday = day.weekday() < 5
        holiday = any(a <= day <= b for a, b in SCHOOL_HOLIDAYS)
        if day in PUBLIC_HOLIDAYS:
            if weekday:
                if not holiday:
                    exceptions.append(("WD", ymd(day), "2"))
            elif day.weekday() == 5:
                exceptions.append(("SA", ymd(day), "2"))
            if day.weekday() != 6:
                exceptions.append(("SU", ymd(day), "1"))
        elif weekday and holiday:
            exceptions += [("WD", ymd(day), "2"), ("WDV", ymd(day), "1")]
        day += dt.timedelta(days=1)
    return calendar, exceptions


# ---------------------------------------------------------------------------------- trips
#: Relative departure rate through a day service (hours from the service day's start).
PROFILE_H = np.array([0.0, 6.5, 6.5, 9.5, 9.5, 16.0, 16.0, 19.5, 19.5, 22.0, 22.0, 30.0])
PROFILE_RATE = np.array([0.5, 0.5, 1.0, 1.0, 0.6, 0.6, 1.0, 1.0, 0.45, 0.45, 0.25, 0.25])

#: M1 frequency windows (start h, end h, headway s) on a school weekday.
METRO_WINDOWS = ((5.5, 7.0, 360), (7.0, 9.5, 150), (9.5, 16.5, 240), (16.5, 19.5, 150))
METRO_LATE = (19.5, 25.0, 420)
#: C1 runs as frequencies (exact_times=1) in the weekday peaks.
TRUNK_WINDOWS = ((7.0, 9.0, 300), (16.5, 19.0, 300))


@dataclass
class Group:
    """The departures of one route, service and direction: a rate profile to integrate."""

    route: int
    service: str
    direction: int
    first_h: float
    last_h: float
    rate: float  # peak departures per hour, before the global scale
    phase: float
    night: bool = False
    skip: tuple[tuple[float, float, int], ...] = ()

    @functools.cached_property
    def cumulative(self) -> tuple[np.ndarray, np.ndarray]:
        """Knots (hours, cumulative departures per unit of scale)."""
        if self.night:
            hours = np.array([self.first_h, self.last_h])
            rates = np.array([self.rate, self.rate])
        else:
            hours = np.clip(PROFILE_H, self.first_h, self.last_h)
            rates = PROFILE_RATE * self.rate
        cum = np.concatenate(([0.0], np.cumsum(np.diff(hours) * (rates[:-1] + rates[1:]) / 2)))
        return hours, cum

    def departures(self, scale: float) -> np.ndarray:
        hours, cum = self.cumulative
        total = cum[-1] * scale
        if total < self.phase:
            return np.zeros(0)
        marks = (np.arange(int(total - self.phase) + 1) + self.phase) / scale
        when = np.interp(marks, cum, hours)
        for a, b, _ in self.skip:
            when = when[(when < a) | (when >= b)]
        return when


def plan_groups(rng: np.random.Generator, routes: list[Route]) -> list[Group]:
    groups: list[Group] = []
    for r, route in enumerate(routes):
        if route.short_name == "M1":
            continue  # frequencies.txt only
        services = [NIGHT_SERVICE] if route.kind == "night" else list(DAY_SERVICES)
        for service in services:
            for direction in (0, 1):
                if route.kind == "night":
                    first, last, factor = 24.5, 29.5, 1.0
                else:
                    factor, first = DAY_SERVICES[service]
                    first += rng.uniform(0.0, 0.75)
                    # Rail runs past midnight; most buses stop between 22:30 and 25:00.
                    last = 25.5 if route.kind in ("metro", "tram") else rng.uniform(22.5, 25.0)
                skip = TRUNK_WINDOWS if route.short_name == "C1" and service == "WD" else ()
                groups.append(
                    Group(
                        r,
                        service,
                        direction,
                        first,
                        last,
                        route.rate * factor,
                        float(rng.random()),
                        night=route.kind == "night",
                        skip=skip,
                    )
                )
    return groups


def frequency_trips(routes: list[Route]) -> list[Trip]:
    """M1 on every day service (exact_times=0) and C1 in the weekday peaks (exact_times=1)."""
    trips: list[Trip] = []
    for r, route in enumerate(routes):
        if route.short_name == "M1":
            for service, (factor, _) in DAY_SERVICES.items():
                windows = [
                    (int(a * 3600), int(b * 3600), int(round(h / factor / 30) * 30), 0)
                    for a, b, h in (*METRO_WINDOWS, METRO_LATE)
                ]
                if service == "SU":
                    windows[0] = (int(6.5 * 3600), windows[0][1], windows[0][2], 0)
                for direction in (0, 1):
                    trips.append(
                        Trip(r, service, direction, windows[0][0], 0, len(route.stations), 1.0)
                    )
                    trips[-1].frequencies = windows
        elif route.short_name == "C1":
            windows = [(int(a * 3600), int(b * 3600), h, 1) for a, b, h in TRUNK_WINDOWS]
            for direction in (0, 1):
                trip = Trip(r, "WD", direction, windows[0][0], 0, len(route.stations), 1.1)
                trip.frequencies = windows
                trips.append(trip)
    return trips


def pace_at(hours: np.ndarray) -> np.ndarray:
    """Running-time multiplier: slower in the peaks, faster late in the evening."""
    peak = ((hours >= 7.0) & (hours < 9.5)) | ((hours >= 16.5) & (hours < 19.5))
    late = hours >= 21.0
    return np.where(peak, 1.15, np.where(late, 0.88, 1.0))


def make_trips(
    rng: np.random.Generator, routes: list[Route], groups: list[Group], scale: float
) -> list[Trip]:
    trips: list[Trip] = []
    for g in groups:
        route = routes[g.route]
        n = len(route.stations)
        hours = g.departures(scale)
        paces = pace_at(hours)
        # Short turns: a tenth of the bus trips skip the outer quarter of the line.
        cut = min(n // 4, n - 20)
        short = (rng.random(len(hours)) < 0.1) & (route.kind in ("bus", "trunk")) & (cut >= 3)
        for h, pace, is_short in zip(hours.tolist(), paces.tolist(), short.tolist(), strict=True):
            start = round(h * 3600)
            if route.route_type == 3:
                start = start // 60 * 60
            first = cut if is_short else 0
            trips.append(Trip(g.route, g.service, g.direction, start, first, n - first, pace))
    return trips


def estimate_rows(routes: list[Route], groups: list[Group], scale: float) -> float:
    total = 0.0
    for g in groups:
        n = len(routes[g.route].stations)
        total += len(g.departures(scale)) * n
    return total


def fit_trips(
    rng: np.random.Generator, routes: list[Route], groups: list[Group], target: int
) -> list[Trip]:
    """Trips whose stop times add up to exactly ``target`` rows."""
    fixed = frequency_trips(routes)
    fixed_rows = sum(t.length for t in fixed)
    if target < fixed_rows + 1000:
        raise SystemExit(f"--stop-times must be at least {fixed_rows + 1000} for this network")
    lo, hi = 1e-3, 1.0
    while estimate_rows(routes, groups, hi) + fixed_rows < target:
        hi *= 2
    for _ in range(30):
        mid = (lo + hi) / 2
        if estimate_rows(routes, groups, mid) + fixed_rows < target:
            lo = mid
        else:
            hi = mid
    scale = hi * 1.01
    while True:
        trips = make_trips(np.random.default_rng(rng.integers(1 << 62)), routes, groups, scale)
        total = fixed_rows + sum(t.length for t in trips)
        if total >= target:
            break
        scale *= 1.01
    # Drop random trips until at or just under the target, then top up with garage runs.
    order = rng.permutation(len(trips))
    dropped = np.zeros(len(trips), bool)
    k = 0
    while total > target or 0 < target - total < 20:
        victim = int(order[k])
        k += 1
        dropped[victim] = True
        total -= trips[victim].length
    kept = [t for t, gone in zip(trips, dropped.tolist(), strict=True) if not gone]
    left = target - total
    parts = [left] if left <= 60 else [left // 2, left - left // 2]
    longest = max(range(len(routes)), key=lambda r: len(routes[r].stations))
    for i, length in enumerate(p for p in parts if p > 0):
        if len(routes[longest].stations) < length:
            raise SystemExit("no route is long enough for the top-up trips")
        # Garage runs enter service part-way along the line, early in the morning.
        first = len(routes[longest].stations) - length
        kept.append(Trip(longest, "WD", i % 2, 5 * 3600 + 60 * i, first, length, 1.0))
    kept += fixed
    kept.sort(
        key=lambda t: (
            t.route,
            list(DAY_SERVICES).index(t.service) if t.service in DAY_SERVICES else 9,
            t.direction,
            t.start_s,
        )
    )
    return kept


# ---------------------------------------------------------------------------------- writing
@functools.cache
def hhmmss_table(limit_s: int) -> list[str]:
    """Every HH:MM:SS from 0 to ``limit_s`` seconds, by index."""
    return [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(limit_s + 1)]


def stop_time_chunks(
    routes: list[Route],
    trips: list[Trip],
    trip_ids: list[str],
    platform_ids: list[str],
    names: list[str],
) -> Iterator[bytes]:
    """stop_times.txt, header first, in blocks of a few megabytes."""
    yield (
        b"trip_id,arrival_time,departure_time,stop_id,stop_sequence,stop_headsign,"
        b"pickup_type,drop_off_type\n"
    )
    clock = hhmmss_table(60 * 3600)
    # Per (route, direction): the fixed tail of every row and the cumulative running times.
    tails: dict[tuple[int, int, int], list[str]] = {}
    cumulative: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    lines: list[str] = []
    size = 0
    for trip, trip_id in zip(trips, trip_ids, strict=True):
        route = routes[trip.route]
        d = trip.direction
        key = (trip.route, d, trip.first)
        tail = tails.get(key)
        if tail is None:
            tail = tails[key] = _tails(route, d, trip.first, platform_ids, names)
        cum = cumulative.get((trip.route, d))
        if cum is None:
            seg = route.segment_s if d == 0 else route.segment_s[::-1]
            cum = cumulative[(trip.route, d)] = (
                np.concatenate(([0.0], np.cumsum(seg))),
                np.full(len(route.stations), float(route.dwell_s)),
            )
        run, dwell = cum
        run = run[trip.first :] - run[trip.first]
        dep = trip.start_s + run * trip.pace
        if route.route_type == 3:
            dep = np.round(dep / 60.0) * 60.0
            arr = dep
        else:
            dep = np.round(dep)
            # Rail dwells at intermediate stops; the terminus has one time.
            arr = dep - dwell[trip.first :]
            arr[0] = dep[0]
            dep[-1] = arr[-1]
        prefix = trip_id + ","
        lines.append(
            "".join(
                [
                    f"{prefix}{clock[a]},{clock[b]},{t}"
                    for a, b, t in zip(
                        arr.astype(np.int64).tolist(),
                        dep.astype(np.int64).tolist(),
                        tail,
                        strict=True,
                    )
                ]
            )
        )
        size += len(tail)
        if size >= 50_000:
            yield "".join(lines).encode()
            lines, size = [], 0
    if lines:
        yield "".join(lines).encode()


def _tails(
    route: Route, direction: int, first: int, platform_ids: list[str], names: list[str]
) -> list[str]:
    """``stop_id,stop_sequence,stop_headsign,pickup_type,drop_off_type\\n`` of each call."""
    platforms = route.platforms[direction][first:]
    stations = (route.stations if direction == 0 else route.stations[::-1])[first:]
    request = (route.request_stops if direction == 0 else route.request_stops[::-1])[first:]
    n = len(platforms)
    terminus = names[stations[-1]]
    via = f"{terminus} via {names[stations[n // 2]]}" if route.via_headsign else ""
    out = []
    for i, platform in enumerate(platforms):
        headsign = via if i < n // 3 else ""
        pickup = "1" if i == n - 1 else ("3" if request[i] else "0")
        drop_off = "1" if i == 0 else ("3" if request[i] else "0")
        out.append(f"{platform_ids[platform]},{i + 1},{headsign},{pickup},{drop_off}\n")
    return out


def member(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """A zip entry with a fixed date and mode, so the same arguments give the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(2026, 8, 28, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = zf.compresslevel  # type: ignore[attr-defined]
    info.external_attr = 0o644 << 16
    return info


def write_csv(zf: zipfile.ZipFile, name: str, header: list[str], rows: list[tuple]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    zf.writestr(member(zf, name), text.getvalue())


def write_streamed(zf: zipfile.ZipFile, name: str, chunks: Iterator[bytes], big: bool) -> None:
    """Write ``chunks`` as one member; deflate runs in a second thread (zlib drops the GIL)."""
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    failure: list[BaseException] = []

    def drain(handle: io.BufferedIOBase) -> None:
        try:
            while (block := pending.get()) is not None:
                handle.write(block)
        except BaseException as exc:  # handed to the producer, which re-raises it
            failure.append(exc)
            while pending.get() is not None:
                pass

    with zf.open(member(zf, name), "w", force_zip64=big) as handle:
        writer = threading.Thread(target=drain, args=(handle,))
        writer.start()
        try:
            for block in chunks:
                pending.put(block)
        finally:
            pending.put(None)
            writer.join()
    if failure:
        raise failure[0]


def write_feed(args: argparse.Namespace) -> dict[str, int]:
    rng = np.random.default_rng(args.seed)
    n_stations = args.stations or default_stations(args.stop_times)
    n_routes = args.routes or default_routes(args.stop_times)
    xy = place_stations(rng, n_stations)
    names = station_names(rng, xy)
    routes = build_routes(rng, xy, n_routes)
    stops = build_stops(rng, xy, names, routes)
    calendar, exceptions = calendar_rows()
    trips = fit_trips(rng, routes, plan_groups(rng, routes), args.stop_times)
    trip_ids: list[str] = []
    counters: dict[tuple[int, str, int], int] = {}
    for trip in trips:
        key = (trip.route, trip.service, trip.direction)
        counters[key] = counters.get(key, 0) + 1
        route_id = routes[trip.route].route_id.split(":")[1]
        trip_ids.append(f"{route_id}-{trip.service}-{trip.direction}-{counters[key]:05d}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(
        tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=args.compresslevel
    ) as zf:
        write_csv(
            zf,
            "agency.txt",
            ["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"],
            [
                ("RUV", "Réseau Urbain de Valmont", "https://example.org/ruv", TIMEZONE, "fr"),
                ("CAR", "Cars de Valmont", "https://example.org/cars", TIMEZONE, "fr"),
            ],
        )
        write_csv(
            zf,
            "stops.txt",
            [
                "stop_id",
                "stop_code",
                "stop_name",
                "stop_lat",
                "stop_lon",
                "location_type",
                "parent_station",
                "platform_code",
                "wheelchair_boarding",
            ],
            stops.rows,
        )
        write_csv(
            zf,
            "routes.txt",
            [
                "route_id",
                "agency_id",
                "route_short_name",
                "route_long_name",
                "route_type",
                "route_color",
                "route_text_color",
                "route_sort_order",
            ],
            [
                (
                    r.route_id,
                    r.agency_id,
                    r.short_name,
                    f"{names[r.stations[0]]} - {names[r.stations[-1]]}",
                    r.route_type,
                    r.colour,
                    r.text_colour,
                    i + 1,
                )
                for i, r in enumerate(routes)
            ],
        )
        write_csv(
            zf,
            "trips.txt",
            [
                "route_id",
                "service_id",
                "trip_id",
                "trip_headsign",
                "direction_id",
                "wheelchair_accessible",
                "bikes_allowed",
            ],
            [
                (
                    routes[t.route].route_id,
                    t.service,
                    trip_id,
                    names[
                        (
                            routes[t.route].stations
                            if t.direction == 0
                            else routes[t.route].stations[::-1]
                        )[-1]
                    ],
                    t.direction,
                    1 if routes[t.route].kind != "coach" else 2,
                    1 if routes[t.route].kind in ("tram", "coach") else 2,
                )
                for t, trip_id in zip(trips, trip_ids, strict=True)
            ],
        )
        write_csv(
            zf,
            "calendar.txt",
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
            calendar,
        )
        write_csv(zf, "calendar_dates.txt", ["service_id", "date", "exception_type"], exceptions)
        clock = hhmmss_table(60 * 3600)
        write_csv(
            zf,
            "frequencies.txt",
            ["trip_id", "start_time", "end_time", "headway_secs", "exact_times"],
            [
                (trip_id, clock[a], clock[b], h, exact)
                for t, trip_id in zip(trips, trip_ids, strict=True)
                for a, b, h, exact in t.frequencies
            ],
        )
        write_csv(
            zf,
            "feed_info.txt",
            [
                "feed_publisher_name",
                "feed_publisher_url",
                "feed_lang",
                "feed_version",
                "feed_start_date",
                "feed_end_date",
            ],
            [
                (
                    "Beffroi benchmarks (synthetic)",
                    "https://example.org",
                    "fr",
                    f"synthetic-v{GENERATOR_VERSION}-{args.stop_times}-seed{args.seed}",
                    FEED_START.strftime("%Y%m%d"),
                    FEED_END.strftime("%Y%m%d"),
                )
            ],
        )
        write_streamed(
            zf,
            "stop_times.txt",
            stop_time_chunks(routes, trips, trip_ids, stops.platform_ids, names),
            big=args.stop_times > 20_000_000,
        )
    tmp.replace(out)
    return {
        "stops": len(stops.rows),
        "stations": sum(1 for row in stops.rows if row[5] == "1"),
        "routes": len(routes),
        "trips": len(trips),
        "stop_times": args.stop_times,
        "frequency_trips": sum(1 for t in trips if t.frequencies),
    }


def default_path(stop_times: int, seed: int = 2026) -> Path:
    """Where the benchmarks keep a generated feed of this size (reused across runs)."""
    return Path(tempfile.gettempdir()) / (
        f"beffroi-bench-feed-v{GENERATOR_VERSION}-{stop_times}-seed{seed}.zip"
    )


def ensure_feed(stop_times: int, seed: int = 2026) -> Path:
    """The cached synthetic feed of this size, generated first if missing."""
    path = default_path(stop_times, seed)
    if not path.exists():
        args = argparse.Namespace(
            stop_times=stop_times, out=path, seed=seed, stations=0, routes=0, compresslevel=6
        )
        write_feed(args)
    return path


def parse_count(text: str) -> int:
    """``1000000``, ``1_000_000``, ``1M`` or ``500k``."""
    text = text.strip().replace("_", "").replace(",", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--stop-times", type=parse_count, default=1_000_000, help="rows of stop_times.txt (1M, 10M)"
    )
    parser.add_argument("--out", type=Path, help="zip to write (default: under the temp folder)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--stations", type=int, default=0, help="stations (default: by size)")
    parser.add_argument("--routes", type=int, default=0, help="routes (default: by size)")
    parser.add_argument("--compresslevel", type=int, default=6, help="deflate level (default 6)")
    args = parser.parse_args()
    if args.out is None:
        args.out = default_path(args.stop_times, args.seed)
    started = time.perf_counter()
    counts = write_feed(args)
    elapsed = time.perf_counter() - started
    size = args.out.stat().st_size
    summary = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in counts.items())
    print(f"{args.out}: {size / 1e6:.1f} MB in {elapsed:.1f}s ({summary})")


if __name__ == "__main__":
    main()

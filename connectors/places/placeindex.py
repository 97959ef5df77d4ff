"""A snapshot's places ready to query: nearest first, by category and text, open or not.

Built once per snapshot version. Each place's ``opening_hours`` is parsed once per distinct
value (a city's thousand pharmacies share a few dozen values), and a query evaluates each
distinct value once, so "open now near here" costs a distance sort plus a few microseconds
per distinct value met, not a parse per place.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Container, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from aggregator.api import sync
from connectors.places.geo import PlaceIndex
from connectors.places.hours import Hours, HoursCalendar, HoursState

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
_TEXT_FIELDS = ("name", "address", "city", "description")


def fold(text: str) -> str:
    """Lower case without accents, so "hotel de ville" finds "Hôtel de Ville"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class PlacesIndex:
    """One source's places, their parsed hours and folded texts; immutable once built."""

    _calendars: ClassVar[dict[tuple[str, str, str | None], HoursCalendar]] = {}

    @classmethod
    def calendar_for(cls, zone: ZoneInfo, country: str, subdivision: str | None) -> HoursCalendar:
        """One calendar per time zone and holiday set, shared by snapshots (and its parse
        cache with them: a refresh re-reads the same values)."""
        key = (zone.key, country, subdivision)
        calendar = cls._calendars.get(key)
        if calendar is None:
            calendar = cls._calendars[key] = HoursCalendar(zone, country, subdivision)
        return calendar

    def __init__(
        self, places: Sequence[Mapping[str, Any]], holidays: Sequence[Any], zone: str
    ) -> None:
        self.calendar = self.calendar_for(ZoneInfo(zone), holidays[0], holidays[1])
        self.geo = PlaceIndex(places)
        self.by_id: dict[str, Mapping[str, Any]] = {p["id"]: p for p in places}
        self.hours: dict[str, Hours] = {}
        self.text: dict[str, str] = {}
        for place in places:
            raw = place.get("opening_hours")
            if raw is not None:
                self.hours[place["id"]] = self.calendar.parse(raw, place["lat"], place["lon"])
            words = (place.get(name) for name in _TEXT_FIELDS)
            self.text[place["id"]] = fold(" ".join(w for w in words if isinstance(w, str)))
        self.by_name = sorted(places, key=lambda p: p["id"])
        self._hashes: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.by_id)

    def content_hashes(self) -> dict[str, str]:
        """Place id -> hash of the place as published (not of its state now), for the sync
        change log; computed once per snapshot."""
        if self._hashes is None:
            self._hashes = sync.content_hashes(self.by_id.values())
        return self._hashes

    def matching_ids(
        self,
        lat: float | None,
        lon: float | None,
        radius_m: float,
        categories: frozenset[str] | None,
        words: Sequence[str],
    ) -> set[str]:
        """Ids of the places the filters select, whatever their opening hours."""
        return {
            place["id"]
            for _away, place in self.candidates(lat, lon, radius_m)
            if self.matches(place, categories, words)
        }

    def candidates(
        self, lat: float | None, lon: float | None, radius_m: float
    ) -> Iterator[tuple[float | None, Mapping[str, Any]]]:
        """Places within ``radius_m`` of the point nearest first, or all by id without one."""
        if lat is None or lon is None:
            yield from ((None, place) for place in self.by_name)
            return
        yield from self.geo.nearest(lat, lon, radius_m=radius_m, limit=len(self.geo))

    def state(self, place_id: str, at: datetime, memo: dict[int, HoursState]) -> HoursState:
        """The place's state at ``at``; ``memo`` keeps one evaluation per distinct value."""
        hours = self.hours.get(place_id)
        if hours is None:
            return "unknown"
        key = id(hours)
        state = memo.get(key)
        if state is None:
            state = memo[key] = self.calendar.state(hours, at)
        return state

    def matches(
        self,
        place: Mapping[str, Any],
        categories: frozenset[str] | None,
        words: Sequence[str],
    ) -> bool:
        if categories is not None and place.get("category") not in categories:
            return False
        text = self.text[place["id"]]
        return all(word in text for word in words)

    def search(
        self,
        lat: float | None,
        lon: float | None,
        radius_m: float,
        *,
        categories: frozenset[str] | None = None,
        words: Sequence[str] = (),
        open_at: datetime | None = None,
        after: Sequence[Any] | None = None,
        limit: int = 20,
        ids: Container[str] | None = None,
    ) -> list[tuple[tuple[float, str], Mapping[str, Any]]]:
        """Up to ``limit + 1`` matches after the cursor position ``after``, each with its
        sort key ``(distance rounded to 0.1 m, id)`` (0 without a point), nearest first.

        ``ids``: only these places (those of a commune). The one extra tells the caller a
        next page exists. Places at the same rounded
        distance as the last one are all returned, since their order is by id.
        """
        memo: dict[int, HoursState] = {}
        hits: list[tuple[tuple[float, str], Mapping[str, Any]]] = []
        last: float | None = None
        for away, place in self.candidates(lat, lon, radius_m):
            key = (round(away, 1) if away is not None else 0.0, place["id"])
            if after is not None and list(key) <= list(after):
                continue
            if ids is not None and place["id"] not in ids:
                continue
            if not self.matches(place, categories, words):
                continue
            if open_at is not None and self.state(place["id"], open_at, memo) != "open":
                continue
            if last is not None and key[0] != last:
                break
            hits.append((key, place))
            if len(hits) > limit and last is None:
                last = key[0]
        hits.sort(key=lambda hit: hit[0])
        return hits

    def opening(
        self, place_id: str, at: datetime, *, week: bool = False, language: str = "en"
    ) -> dict[str, Any]:
        """``opening_hours``, ``open_now``, ``next_change`` (and ``week``) of one place."""
        hours = self.hours.get(place_id)
        if hours is None:
            out: dict[str, Any] = {"opening_hours": None, "open_now": None, "next_change": None}
            if week:
                out["week"] = []
            return out
        state = self.calendar.state(hours, at)
        change = self.calendar.next_change(hours, at)
        out = {
            "opening_hours": {"raw": hours.raw, "parsed": hours.parsed, "error": hours.error},
            "open_now": None if state == "unknown" else state == "open",
            "next_change": (
                None if change is None else {"at": change[0].isoformat(), "state": change[1]}
            ),
        }
        if week:
            out["week"] = self.calendar.week(hours, at, language=language)
        return out

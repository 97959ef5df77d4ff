"""An in-memory index of event occurrences, built once per snapshot set, read per request.

Built when a snapshot changes (never per request), it answers what ``/v1/events``,
``/v1/agenda`` and ``/v1/categories`` need in a few vectorised numpy steps:

* occurrences are kept sorted by ``(start, id)``; that order is also the keyset of the
  cursor, so a page boundary is a position in the data, not an offset, and an item is
  never served twice nor skipped when the data change between two pages;
* text: an inverted index of French-folded, lightly stemmed words (``fold``/``stem``), with
  prefix matching through a sorted vocabulary; postings are sorted position arrays;
* time, channel, source, free, accessibility and geo filters are numpy masks over the
  candidates; the geo filter is a bounding box then a haversine distance;
* duplicates across sources (same UID, or same start + similar title + within ~100 m)
  are merged at build time, keeping the richer record and both provenances;
* ``content_hashes`` and ``matching_ids`` feed the sync change log (aggregator.api.sync).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from difflib import SequenceMatcher
from typing import Any

import numpy as np
import orjson

from connectors.events.model import ACCESSIBILITY_CODES, CHANNELS, richness
from connectors.events.text import fold, search_terms

__all__ = ["EventIndex", "EventPage", "EventQuery", "category_key"]

EARTH_RADIUS_M = 6_371_008.8
#: How close two places must be for two same-time, same-title events to be one.
DUPLICATE_DISTANCE_M = 100.0
DUPLICATE_TITLE_RATIO = 0.85
_MIN_PREFIX = 3
#: Localised records kept per language (a bound on memory; past it the cache starts over).
LOCALIZED_CACHE_SIZE = 20_000
_SLUG = re.compile(r"[^a-z0-9]+")


def category_key(label: str) -> str:
    """The code of a category label: "Fête de la musique" → "fete-de-la-musique"."""
    return _SLUG.sub("-", fold(label)).strip("-")


@dataclass(frozen=True)
class EventQuery:
    """One request's filters; times are epoch seconds, the position is a cursor's content."""

    start: float | None = None
    end: float | None = None
    text: str | None = None
    categories: tuple[str, ...] = ()
    channel: str | None = None
    sources: tuple[str, ...] = ()
    free: bool | None = None
    accessibility: tuple[str, ...] = ()
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    sort: str = "start"  # or "distance" (needs lat/lon)
    after: tuple[Any, ...] | None = None
    limit: int = 20
    #: Only occurrences in this commune (INSEE code): ``within`` is its mask over this
    #: index's positions (see connectors.events.routes), built from the commune tags.
    commune: str | None = None
    within: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass
class EventPage:
    """A page of results: (record, distance in metres or None) pairs, and where to go on."""

    items: list[tuple[dict[str, Any], float | None]]
    total: int
    next_position: tuple[Any, ...] | None


@dataclass
class _Build:
    records: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    starts: list[float] = field(default_factory=list)


def _epoch(text: str | None) -> float:
    return datetime.fromisoformat(text).timestamp() if text else math.nan


@functools.lru_cache(maxsize=65536)
def _epoch_cached(text: str | None) -> float:
    """``_epoch`` for the build: many occurrences share a time (all-day, same hour)."""
    return _epoch(text)


def _distance_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Haversine distance in metres; works on numpy arrays and on floats."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def _title(record: Mapping[str, Any]) -> str:
    titles = record.get("title") or {}
    return fold(next(iter(titles.values()), "")) if titles else ""


def _coords(record: Mapping[str, Any]) -> tuple[float, float] | None:
    location = record.get("location") or {}
    lat, lon = location.get("lat"), location.get("lon")
    return (float(lat), float(lon)) if lat is not None and lon is not None else None


def _same_event(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a["source"] == b["source"]:
        return False
    if a.get("uid") and a.get("uid") == b.get("uid"):
        return True
    title_a, title_b = _title(a), _title(b)
    if not title_a or SequenceMatcher(None, title_a, title_b).ratio() < DUPLICATE_TITLE_RATIO:
        return False
    ca, cb = _coords(a), _coords(b)
    if ca is not None and cb is not None:
        return float(_distance_m(ca[0], ca[1], cb[0], cb[1])) <= DUPLICATE_DISTANCE_M
    name_a = fold(((a.get("location") or {}).get("name")) or "")
    return bool(name_a) and name_a == fold(((b.get("location") or {}).get("name")) or "")


def merge_duplicates(
    records: Iterable[Mapping[str, Any]], epochs: Sequence[float] | None = None
) -> _Build:
    """Merge the same occurrence seen in several sources (DESIGN §5), keeping both provenances.

    ``epochs``, when given, are the records' start instants (epoch seconds), in order. The
    result's records come with theirs in ``starts``. Records are copied only when merged.
    """
    records = list(records)
    if epochs is None:
        epochs = [_epoch_cached(r["start"]) for r in records]
    by_start: dict[float, list[int]] = defaultdict(list)
    for i, epoch in enumerate(epochs):
        by_start[epoch].append(i)
    out = _Build()
    for epoch, group in by_start.items():
        if len(group) == 1:
            out.records.append(records[group[0]])
            out.starts.append(epoch)
            continue
        kept: list[dict[str, Any]] = []
        copied: set[int] = set()
        members = sorted((records[i] for i in group), key=lambda r: (-richness(r), r["id"]))
        for record in members:
            position = next((j for j, k in enumerate(kept) if _same_event(k, record)), None)
            if position is None:
                kept.append(record)  # type: ignore[arg-type]
                continue
            if position not in copied:  # the twin changes: the caller's record must not
                kept[position] = dict(kept[position])
                copied.add(position)
            twin = kept[position]
            twin["sources"] = [*twin["sources"], *record["sources"]]
            twin["merged_ids"] = [*twin.get("merged_ids", ()), record["id"]]
            out.aliases[record["id"]] = twin["id"]
        out.records.extend(kept)
        out.starts.extend([epoch] * len(kept))
    return out


class EventIndex:
    """Occurrences of every event source, sorted by (start, id), with search structures."""

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        built_at: datetime,
        previous: EventIndex | None = None,
    ) -> None:
        if isinstance(records, Mapping):
            records = [r for rows in records.values() for r in rows]
        merged = merge_duplicates(records)
        self.built_at = built_at.timestamp()
        self.aliases = merged.aliases
        # Each start is parsed once (in merge_duplicates); the order is (start, id).
        order = sorted(
            range(len(merged.records)),
            key=lambda i: (merged.starts[i], merged.records[i]["id"]),
        )
        rows = [merged.records[i] for i in order]
        self.records: list[dict[str, Any]] = rows
        self.keys: list[tuple[float, str]] = [
            (merged.starts[i], row["id"]) for i, row in zip(order, rows, strict=True)
        ]
        self.by_id = {r["id"]: i for i, r in enumerate(rows)}
        n = len(rows)
        self.starts = np.array([k[0] for k in self.keys], dtype=np.float64)
        ends = np.array([_epoch_cached(r.get("end")) for r in rows], dtype=np.float64)
        self.ends = np.where(np.isnan(ends), self.starts, ends)
        self.max_duration = float((self.ends - self.starts).max()) if n else 0.0
        coords = [_coords(r) or (math.nan, math.nan) for r in rows]
        self.lat = np.array([c[0] for c in coords], dtype=np.float64)
        self.lon = np.array([c[1] for c in coords], dtype=np.float64)
        self.channel = np.array([CHANNELS.index(r["channel"]) for r in rows], dtype=np.int8)
        self.source_names = sorted({r["source"] for r in rows})
        self.source = np.array([self.source_names.index(r["source"]) for r in rows], dtype=np.int16)
        self.free = np.array([_free_code(r) for r in rows], dtype=np.int8)
        self.access = np.array([_access_bits(r) for r in rows], dtype=np.int16)
        self._build_postings(rows)
        # Changes between indexes are tracked by the sync change log (aggregator.api.sync),
        # by content hash: ``previous`` is not needed here any more.
        self._fingerprints: dict[str, bytes] = {}
        self._hashes: dict[str, str] | None = None
        #: Source id -> snapshot version this index was built from (set by its builder).
        self.generation: dict[str, int] = {}
        self._localized: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}

    # --- building ---------------------------------------------------------------------

    def _build_postings(self, rows: list[dict[str, Any]]) -> None:
        # Occurrences of one event share their text: each text group is tokenised once and
        # the postings list groups, not positions (``group_of`` maps a position to its group).
        group_by_key: dict[tuple[str, bytes], int] = {}
        keys_seen: dict[tuple[str, int, int, int], tuple[str, bytes]] = {}
        texts: list[str] = []
        groups: list[int] = []
        category_positions: dict[str, list[int]] = defaultdict(list)
        category_codes: dict[str, str] = {}
        self.category_labels: dict[str, str] = {}
        for position, record in enumerate(rows):
            title, keywords, location = record["title"], record["keywords"], record["location"]
            # The occurrences of one series share these objects (rows are alive: ids hold).
            ident = (record["event_id"], id(title), id(keywords), id(location))
            key = keys_seen.get(ident)
            if key is None:
                text = orjson.dumps([title, keywords, location])
                key = (record["event_id"], hashlib.md5(text, usedforsecurity=False).digest())
                keys_seen[ident] = key
            group = group_by_key.get(key)
            if group is None:
                group = group_by_key[key] = len(texts)
                texts.append(_searchable(record))
            groups.append(group)
            for label in record.get("categories") or ():
                code = category_codes.get(label)
                if code is None:
                    code = category_codes[label] = category_key(label)
                if code:
                    self.category_labels.setdefault(code, label)
                    category_positions[code].append(position)
        term_groups: dict[str, list[int]] = defaultdict(list)
        for group, text in enumerate(texts):
            for term in set(search_terms(text)):
                term_groups[term].append(group)
        self.group_count = len(texts)
        self.group_of = np.asarray(groups, dtype=np.int32)
        # The vocabulary, sorted, and its postings laid end to end in that order: the words
        # sharing a prefix are a contiguous range, so their postings are one slice.
        self.vocabulary = sorted(term_groups)
        sizes = [len(term_groups[w]) for w in self.vocabulary]
        self.posting_offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.posting_offsets[1:])
        self.posting_groups = (
            np.concatenate([np.asarray(term_groups[w], dtype=np.int32) for w in self.vocabulary])
            if sizes
            else np.empty(0, np.int32)
        )
        self.category_postings = {
            code: np.asarray(positions, dtype=np.int64)
            for code, positions in category_positions.items()
        }

    def fingerprint(self, record_id: str) -> bytes:
        """A digest of one record's content, computed when a later build compares."""
        digest = self._fingerprints.get(record_id)
        if digest is None:
            record = self.records[self.by_id[record_id]]
            digest = hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).digest()
            self._fingerprints[record_id] = digest
        return digest

    # --- reading ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.records)

    def get(self, record_id: str) -> dict[str, Any] | None:
        """One occurrence by id, also by the id of a duplicate merged into it."""
        position = self.by_id.get(self.aliases.get(record_id, record_id))
        return None if position is None else self.records[position]

    def localized(
        self,
        record: Mapping[str, Any],
        language: str,
        fallbacks: Sequence[str],
        render: Callable[[Mapping[str, Any]], dict[str, Any]],
    ) -> dict[str, Any]:
        """``render(record)`` for one of this index's records, made once per language.

        The index is immutable, so a record's localised form is too; the API layer says how
        to make it. Treat the answer as read-only (copy it before adding keys).
        """
        cache = self._localized.get((language, *fallbacks))
        if cache is None:
            cache = self._localized[(language, *fallbacks)] = {}
        rid = record["id"]
        out = cache.get(rid)
        if out is None:
            if len(cache) >= LOCALIZED_CACHE_SIZE:
                cache.clear()
            out = cache[rid] = render(record)
        return out

    def occurrences_of(self, event_id: str) -> list[dict[str, Any]]:
        """Every occurrence of one event, in start order."""
        return [r for r in self.records if r["event_id"] == event_id]

    def position_of(self, record: Mapping[str, Any], distance: float | None = None) -> tuple:
        """The keyset position of a record (what a cursor carries)."""
        key = (_epoch(record["start"]), record["id"])
        return key if distance is None else (distance, *key)

    def query(self, query: EventQuery) -> EventPage:
        """Matching occurrences, sorted by start or distance, one page after ``query.after``."""
        candidates = self._filter(query, with_categories=True)
        distances = None
        if query.lat is not None and query.lon is not None:
            lat, lon = self.lat[candidates], self.lon[candidates]
            distances = _distance_m(query.lat, query.lon, lat, lon)
            # An event without coordinates cannot be placed near anything: not in "near me".
            placed = np.isfinite(distances)
            candidates, distances = candidates[placed], distances[placed]
            if query.radius_m is not None:
                keep = distances <= query.radius_m
                candidates, distances = candidates[keep], distances[keep]
        total = len(candidates)
        if query.sort == "distance" and distances is not None:
            order = np.lexsort((candidates, distances))
            candidates, distances = candidates[order], distances[order]
            if query.after is not None:
                cut_distance, cut_key = float(query.after[0]), tuple(query.after[1:])
                cut = bisect.bisect_right(self.keys, cut_key)
                later = (distances > cut_distance) | (
                    (distances == cut_distance) & (candidates >= cut)
                )
                candidates, distances = candidates[later], distances[later]
        elif query.after is not None:
            cut = bisect.bisect_right(self.keys, tuple(query.after))
            keep = candidates >= cut
            candidates = candidates[keep]
            distances = distances[keep] if distances is not None else None
        page = candidates[: query.limit]
        items = [
            (self.records[p], float(distances[i]) if distances is not None else None)
            for i, p in enumerate(page.tolist())
        ]
        next_position = None
        if len(candidates) > query.limit and items:
            last, distance = items[-1]
            by_distance = query.sort == "distance" and distances is not None
            next_position = self.position_of(last, distance if by_distance else None)
        return EventPage(items=items, total=total, next_position=next_position)

    def categories(self, query: EventQuery | None = None) -> list[dict[str, Any]]:
        """Categories present among the matches of ``query`` (its own categories ignored)."""
        matched = self._filter(query or EventQuery(), with_categories=False)
        out = []
        for code, positions in self.category_postings.items():
            hits = np.intersect1d(positions, matched, assume_unique=True)
            if len(hits):
                events = len({self.records[p]["event_id"] for p in hits.tolist()})
                out.append(
                    {
                        "key": code,
                        "label": self.category_labels[code],
                        "count": len(hits),
                        "events": events,
                    }
                )
        return sorted(out, key=lambda c: (-c["count"], c["key"]))

    def content_hashes(self) -> dict[str, str]:
        """Record id -> content hash, for the sync change log (computed once per index)."""
        if self._hashes is None:
            self._hashes = {rid: self.fingerprint(rid).hex()[:24] for rid in self.by_id}
        return self._hashes

    def matching_ids(self, query: EventQuery) -> set[str]:
        """Ids of every occurrence matching ``query``'s filters (no paging, no sort)."""
        candidates = self._filter(query, with_categories=True)
        if query.lat is not None and query.lon is not None:
            distances = _distance_m(
                query.lat, query.lon, self.lat[candidates], self.lon[candidates]
            )
            keep = np.isfinite(distances)
            if query.radius_m is not None:
                keep &= distances <= query.radius_m
            candidates = candidates[keep]
        return {self.records[p]["id"] for p in candidates.tolist()}

    # --- filtering --------------------------------------------------------------------

    def _term_groups(self, term: str) -> np.ndarray:
        """A mask of the text groups holding ``term`` (or, from 3 letters, a word it begins)."""
        lo = bisect.bisect_left(self.vocabulary, term)
        if len(term) >= _MIN_PREFIX:
            hi = bisect.bisect_left(self.vocabulary, term + "\uffff", lo)
        else:
            hi = lo + 1 if lo < len(self.vocabulary) and self.vocabulary[lo] == term else lo
        mask = np.zeros(self.group_count, dtype=bool)
        if hi > lo:
            mask[self.posting_groups[self.posting_offsets[lo] : self.posting_offsets[hi]]] = True
        return mask

    def _text_positions(self, text: str, lo: int = 0, hi: int | None = None) -> np.ndarray | None:
        """Sorted positions in ``[lo, hi)`` whose text holds every term of ``text``."""
        terms = search_terms(text)
        if not terms:
            return None
        matched: np.ndarray | None = None
        for term in dict.fromkeys(terms):
            mask = self._term_groups(term)
            matched = mask if matched is None else np.logical_and(matched, mask, out=matched)
            if not matched.any():
                return np.empty(0, np.int64)
        assert matched is not None
        return lo + np.flatnonzero(matched[self.group_of[lo:hi]])

    def _filter(self, query: EventQuery, *, with_categories: bool) -> np.ndarray:
        n = len(self.records)
        lo, hi = 0, n
        if query.start is not None:
            lo = int(np.searchsorted(self.starts, query.start - self.max_duration, "left"))
        if query.end is not None:
            hi = int(np.searchsorted(self.starts, query.end, "left"))
        candidates = np.arange(lo, hi, dtype=np.int64)
        if query.text:
            found = self._text_positions(query.text, lo, hi)
            if found is not None:
                candidates = found
        if query.start is not None and len(candidates):
            # An occurrence under way at ``start`` is still on (a festival started yesterday).
            candidates = candidates[
                (self.ends[candidates] > query.start) | (self.starts[candidates] >= query.start)
            ]
        if query.channel is not None:
            code = CHANNELS.index(query.channel) if query.channel in CHANNELS else -1
            candidates = candidates[self.channel[candidates] == code]
        if query.sources:
            codes = [self.source_names.index(s) for s in query.sources if s in self.source_names]
            candidates = candidates[np.isin(self.source[candidates], codes)]
        if query.within is not None:
            candidates = candidates[query.within[candidates]]
        if query.free is not None:
            candidates = candidates[self.free[candidates] == int(query.free)]
        if query.accessibility:
            bits = _bits(query.accessibility)
            candidates = candidates[(self.access[candidates] & bits) == bits]
        if with_categories and query.categories:
            wanted = [self.category_postings.get(category_key(c)) for c in query.categories]
            arrays = [a for a in wanted if a is not None]
            allowed = np.unique(np.concatenate(arrays)) if arrays else np.empty(0, np.int64)
            candidates = candidates[np.isin(candidates, allowed, assume_unique=True)]
        if query.lat is not None and query.lon is not None and query.radius_m is not None:
            # A cheap bounding box first; the exact distance is computed on what is left.
            dlat = math.degrees(query.radius_m / EARTH_RADIUS_M)
            dlon = dlat / max(math.cos(math.radians(query.lat)), 1e-6)
            lat, lon = self.lat[candidates], self.lon[candidates]
            candidates = candidates[
                (np.abs(lat - query.lat) <= dlat) & (np.abs(lon - query.lon) <= dlon)
            ]
        return candidates


def _searchable(record: Mapping[str, Any]) -> str:
    parts: list[str] = list((record.get("title") or {}).values())
    for words in (record.get("keywords") or {}).values():
        parts.extend(words)
    parts.extend(record.get("categories") or ())
    location = record.get("location") or {}
    parts.extend(str(location.get(k) or "") for k in ("name", "city"))
    for text in (record.get("description") or {}).values():
        parts.append(text[:2000])
    return " ".join(parts)


def _free_code(record: Mapping[str, Any]) -> int:
    free = (record.get("price") or {}).get("free")
    return -1 if free is None else int(bool(free))


def _bits(codes: Iterable[str]) -> int:
    return sum(1 << ACCESSIBILITY_CODES.index(c) for c in codes if c in ACCESSIBILITY_CODES)


def _access_bits(record: Mapping[str, Any]) -> int:
    return _bits(record.get("accessibility") or ())

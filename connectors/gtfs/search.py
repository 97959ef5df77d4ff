"""Stop lookup by name (accent- and case-insensitive word prefixes) and by position."""

from __future__ import annotations

import math
import unicodedata
from bisect import bisect_left

import numpy as np

EARTH_RADIUS_M = 6_371_008.8
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o"})


def normalize_words(text: str) -> list[str]:
    """Words without accents, case or punctuation: "Lille-Flandres" → lille, flandres."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(c if c.isalnum() else " " for c in bare).split()


class NameIndex:
    """A sorted word list over stop names: each query word must prefix some word of the name.

    Only stops and stations are indexed (entrances, generic nodes and boarding areas are
    not places a rider searches for); a platform whose station also matches is folded into
    the station, so "gare lille flandres" does not list every quay.
    """

    def __init__(self, names: list[str], location_type: np.ndarray, parent: np.ndarray) -> None:
        self._parent = parent
        self._is_station = location_type == 1
        self._words: list[list[str]] = []
        pairs: list[tuple[str, int]] = []
        for index, name in enumerate(names):
            words = normalize_words(name) if location_type[index] <= 1 else []
            self._words.append(words)
            pairs.extend((word, index) for word in set(words))
        pairs.sort()
        self._tokens = [word for word, _ in pairs]
        self._token_stop = np.array([index for _, index in pairs], dtype=np.int32)

    def search(self, query: str, limit: int = 10) -> list[tuple[int, float]]:
        """``(stop index, score)`` best first; every query word must match a name word."""
        words = normalize_words(query)
        if not words:
            return []
        scores: dict[int, float] | None = None
        for word in dict.fromkeys(words):
            lo = bisect_left(self._tokens, word)
            hi = bisect_left(self._tokens, word + "\U0010ffff")
            hits: dict[int, float] = {}
            for k in range(lo, hi):
                stop = int(self._token_stop[k])
                # A whole-word match counts more than a prefix match.
                gain = 2.0 if self._tokens[k] == word else 1.0
                hits[stop] = max(hits.get(stop, 0.0), gain)
            if scores is None:
                scores = hits
            else:
                scores = {s: v + hits[s] for s, v in scores.items() if s in hits}
            if not scores:
                return []
        assert scores is not None
        ranked: list[tuple[float, int, int]] = []
        for stop, score in scores.items():
            parent = int(self._parent[stop])
            if parent >= 0 and parent in scores:
                continue
            name_words = self._words[stop]
            if name_words[: len(words)] == words:
                score += 1.5  # the name starts with what was typed
            elif name_words and name_words[0].startswith(words[0]):
                score += 0.5
            score -= 0.1 * max(0, len(name_words) - len(words))  # fewer unmatched words
            if self._is_station[stop]:
                score += 0.25
            ranked.append((-score, len(name_words), stop))
        ranked.sort()
        return [(stop, -neg) for neg, _, stop in ranked[:limit]]


class GeoIndex:
    """Stops sorted by latitude: a radius query scans one latitude band, vectorised."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        ok = np.flatnonzero(~(np.isnan(lat) | np.isnan(lon)))
        order = ok[np.argsort(lat[ok], kind="stable")]
        self._stop = order.astype(np.int32)
        self._lat = lat[order]
        self._lon = lon[order]

    def nearest(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        limit: int,
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """``(stop index, metres)`` within ``radius_m``, nearest first; ``allowed`` masks stops."""
        dlat = math.degrees(radius_m / EARTH_RADIUS_M)
        a, b = np.searchsorted(self._lat, (lat - dlat, lat + dlat), side="left")
        blat, blon, bstop = self._lat[a:b], self._lon[a:b], self._stop[a:b]
        if allowed is not None:
            keep = allowed[bstop]
            blat, blon, bstop = blat[keep], blon[keep], bstop[keep]
        p1, p2 = math.radians(lat), np.radians(blat)
        dp = p2 - p1
        dl = np.radians(blon - lon)
        h = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
        dist = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
        inside = np.flatnonzero(dist <= radius_m)
        inside = inside[np.argsort(dist[inside], kind="stable")][:limit]
        return [(int(bstop[i]), float(dist[i])) for i in inside]

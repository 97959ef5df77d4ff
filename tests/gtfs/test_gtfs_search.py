"""Finding stops by name and by position."""

from __future__ import annotations

from feeds import FeedBuilder

from connectors.gtfs import compile_feed, normalize_words


def _names_feed() -> bytes:
    feed = (
        FeedBuilder()
        .agency()
        .stop("LF", "Gare Lille-Flandres", 50.6366, 3.0703, location_type=1)
        .stop("LF1", "Gare Lille-Flandres Quai 1", 50.6366, 3.0704, parent="LF")
        .stop("LE", "Gare Lille Europe", 50.6392, 3.0755, location_type=1)
        .stop("HV", "Hôtel de Ville", 50.6310, 3.0700)
        .stop("FL", "Flandres-Dunkerque", 50.6300, 3.0500)
        .stop("CO", "Cœur de Ville", 50.6200, 3.0600)
        .route("R")
        .weekly("S", "20260101", "20261231")
        .trip("T", [("LF1", "08:00:00"), ("HV", "08:10:00")])
    )
    return feed.to_zip()


def _ids(tt, hits) -> list[str]:
    return [tt.stop_ids[i] for i, _ in hits]


def test_normalize_words_drops_accents_case_and_hyphens():
    """Names are split into bare lower-case words."""
    assert normalize_words("Gare Lille-Flandres") == ["gare", "lille", "flandres"]
    assert normalize_words("HÔTEL de  Ville") == ["hotel", "de", "ville"]
    assert normalize_words("Cœur") == ["coeur"]


def test_name_search_matches_across_accents_and_hyphens():
    """ "gare lille flandres" finds "Gare Lille-Flandres" first, folding its platform in."""
    tt = compile_feed(_names_feed())
    hits = tt.search_stops("gare lille flandres")
    assert _ids(tt, hits) == ["LF"]
    assert _ids(tt, tt.search_stops("hotel de ville")) == ["HV"]
    assert _ids(tt, tt.search_stops("HÔTEL")) == ["HV"]
    assert _ids(tt, tt.search_stops("coeur")) == ["CO"]


def test_name_search_matches_word_prefixes_and_ranks():
    """Each typed word may be the start of a name word; better matches rank first."""
    tt = compile_feed(_names_feed())
    assert sorted(_ids(tt, tt.search_stops("gare lil"))) == ["LE", "LF"]
    # "flandres" as a first word beats "flandres" as a later word.
    assert _ids(tt, tt.search_stops("flandres")) == ["FL", "LF"]
    assert _ids(tt, tt.search_stops("europe gare")) == ["LE"]
    assert tt.search_stops("zzz") == []
    assert tt.search_stops("  - ") == []


def test_nearest_stops_are_sorted_by_distance_within_radius():
    """Stops within the radius come nearest first, with distances in metres."""
    tt = compile_feed(_names_feed())
    hits = tt.nearest_stops(50.6366, 3.0703, radius_m=650)
    assert _ids(tt, hits) == ["LF", "LF1", "LE", "HV"]
    assert _ids(tt, tt.nearest_stops(50.6366, 3.0703, radius_m=600)) == ["LF", "LF1", "LE"]
    distances = [d for _, d in hits]
    assert distances == sorted(distances)
    assert distances[0] == 0.0
    assert 5 < distances[1] < 10  # 0.0001° of longitude at 50.6° N is about 7 m
    assert _ids(tt, tt.nearest_stops(50.6366, 3.0703, radius_m=600, limit=2)) == ["LF", "LF1"]
    assert tt.nearest_stops(0.0, 0.0, radius_m=1000) == []

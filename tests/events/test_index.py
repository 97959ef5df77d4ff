"""The event index: filters, French text search, geo, keyset pagination, dedup, categories."""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.events.index import EventIndex, EventQuery
from connectors.events.model import make_occurrence
from events.helpers import PARIS

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=PARIS)
BUILT = datetime(2026, 5, 31, 12, 0, tzinfo=PARIS)
GRAND_PLACE = (50.6370, 3.0635)
OPERA = (50.6378, 3.0650)  # ~130 m from the Grand-Place
ROUBAIX = (50.6942, 3.1746)


def occ(uid, title, hours=0, *, source="src", place=GRAND_PLACE, **kwargs):
    start = T0 + timedelta(hours=hours)
    location = {"name": "Grand-Place", "lat": place[0], "lon": place[1]} if place else None
    return make_occurrence(
        source=source,
        uid=uid,
        recurrence=start.strftime("%Y%m%dT%H%M"),
        channel=kwargs.pop("channel", "events"),
        title={"fr": title},
        start=start,
        end=start + timedelta(hours=2),
        timezone="Europe/Paris",
        location=location,
        **kwargs,
    )


def ids(page):
    return [record["id"] for record, _ in page.items]


def ts(hours):
    return (T0 + timedelta(hours=hours)).timestamp()


def test_time_range_keeps_occurrences_under_way():
    """from/to select overlapping occurrences, including one that started before ``from``."""
    index = EventIndex([occ("a", "A", 0), occ("b", "B", 5), occ("c", "C", 30)], built_at=BUILT)
    page = index.query(EventQuery(start=ts(1), end=ts(24)))
    assert ids(page) == ["src:a:20260601T1000", "src:b:20260601T1500"]


def test_text_search_is_accent_case_and_plural_insensitive():
    """ "FETES lumiere" finds "Fête des Lumières"; "concer" finds "Concerts" by prefix."""
    index = EventIndex(
        [occ("a", "Fête des Lumières"), occ("b", "Concerts au parc", 1), occ("c", "Marché", 2)],
        built_at=BUILT,
    )
    assert ids(index.query(EventQuery(text="FETES lumiere"))) == ["src:a:20260601T1000"]
    assert ids(index.query(EventQuery(text="concer"))) == ["src:b:20260601T1100"]
    assert ids(index.query(EventQuery(text="le marche"))) == ["src:c:20260601T1200"]
    assert ids(index.query(EventQuery(text="opéra"))) == []


def test_text_search_reads_keywords_descriptions_and_places():
    """Keywords, the plain description and the place name are searchable too."""
    record = occ("a", "Soirée", keywords={"fr": ["jazz"]}, description={"fr": "Avec des chevaux"})
    index = EventIndex([record], built_at=BUILT)
    for text in ("jazz", "cheval", "grand place"):
        assert ids(index.query(EventQuery(text=text))) == [record["id"]], text


def test_geo_radius_sorts_by_distance_and_reports_it():
    """lat/lon/radius keep what is near, with distance_m, nearest first when asked."""
    index = EventIndex(
        [
            occ("far", "Loin", 0, place=ROUBAIX),
            occ("opera", "Opéra", 1, place=OPERA),
            occ("gp", "Place", 2),
            occ("none", "Nulle part", 3, place=None),
        ],
        built_at=BUILT,
    )
    page = index.query(
        EventQuery(lat=GRAND_PLACE[0], lon=GRAND_PLACE[1], radius_m=1000, sort="distance")
    )
    assert ids(page) == ["src:gp:20260601T1200", "src:opera:20260601T1100"]
    assert page.items[0][1] == 0.0
    assert 80 < page.items[1][1] < 200


def test_channel_source_free_accessibility_and_category_filters():
    """Each filter narrows the results independently."""
    index = EventIndex(
        [
            occ("a", "Conseil municipal", channel="agenda", categories=["Conseil"]),
            occ("b", "Bal", 1, price={"free": True, "text": {}}, accessibility=["motor"]),
            occ("c", "Bal payant", 2, source="other", price={"free": False, "text": {}}),
        ],
        built_at=BUILT,
    )
    assert ids(index.query(EventQuery(channel="agenda"))) == ["src:a:20260601T1000"]
    assert ids(index.query(EventQuery(sources=("other",)))) == ["other:c:20260601T1200"]
    assert ids(index.query(EventQuery(free=True))) == ["src:b:20260601T1100"]
    assert ids(index.query(EventQuery(accessibility=("motor",)))) == ["src:b:20260601T1100"]
    assert ids(index.query(EventQuery(categories=("conseil",)))) == ["src:a:20260601T1000"]


def test_pagination_serves_every_item_once():
    """Walking the cursor through ties of equal start times serves each item exactly once."""
    records = [occ(f"e{i:02d}", f"E{i}", i // 3) for i in range(25)]
    index = EventIndex(records, built_at=BUILT)
    seen, after = [], None
    while True:
        page = index.query(EventQuery(limit=4, after=after))
        seen += ids(page)
        after = page.next_position
        if after is None:
            break
    assert sorted(seen) == sorted(r["id"] for r in records)
    assert len(seen) == len(set(seen))


def test_pagination_survives_data_changing_between_pages():
    """A cursor from one index version used on the next: no repeat, no miss of stable items."""
    records = [occ(f"e{i:02d}", f"E{i}", i) for i in range(10)]
    first = EventIndex(records, built_at=BUILT)
    page1 = first.query(EventQuery(limit=4))
    # Between the pages: an item already served is removed, one before the cursor is added,
    # and one after it is added.
    changed = [r for r in records if r["uid"] != "e01"]
    changed += [occ("early", "Avant", -5), occ("late", "Après", 20)]
    second = EventIndex(changed, built_at=BUILT + timedelta(minutes=5), previous=first)
    page2 = second.query(EventQuery(limit=100, after=page1.next_position))
    served = ids(page1) + ids(page2)
    assert len(served) == len(set(served))
    stable = [r["id"] for r in records if r["uid"] != "e01"]
    assert set(stable) <= set(served)
    assert "src:late:20260602T0600" in served


def test_distance_pagination_is_stable_with_ties():
    """Sorted by distance with many events at one place, pages never repeat an item."""
    records = [
        occ(f"e{i}", "Concert", i % 4, place=OPERA if i % 2 else GRAND_PLACE) for i in range(12)
    ]
    index = EventIndex(records, built_at=BUILT)
    query = dict(lat=GRAND_PLACE[0], lon=GRAND_PLACE[1], radius_m=500, sort="distance", limit=5)
    seen, after = [], None
    while True:
        page = index.query(EventQuery(after=after, **query))
        seen += ids(page)
        if page.next_position is None:
            break
        after = page.next_position
    assert len(seen) == 12 and len(set(seen)) == 12


def test_same_event_from_two_sources_is_merged_with_both_provenances():
    """Same start, nearly the same title, ~30 m apart: one record, the richer one, two sources."""
    rich = occ(
        "oa-1",
        "Fête de la musique",
        source="openagenda",
        url="https://oa/1",
        description={"fr": "Scènes ouvertes"},
        categories=["Musique"],
    )
    poor = occ("ics-9", "Fete de la Musique !", source="mairie", place=(50.6372, 3.0637))
    other = occ("x", "Fête de la musique", source="mairie", place=ROUBAIX)
    index = EventIndex({"openagenda": [rich], "mairie": [poor, other]}, built_at=BUILT)
    assert len(index) == 2
    merged = index.get(poor["id"])
    assert merged["id"] == rich["id"]
    assert [s["source"] for s in merged["sources"]] == ["openagenda", "mairie"]


def test_same_uid_in_two_sources_is_merged():
    """Two sources carrying the same UID at the same start are one occurrence."""
    index = EventIndex(
        [occ("u1", "Conseil", source="a"), occ("u1", "Séance du conseil", source="b")],
        built_at=BUILT,
    )
    assert len(index) == 1


def test_categories_with_counts():
    """Categories come with occurrence and event counts, for the requested range only."""
    index = EventIndex(
        [
            occ("a", "A", 0, categories=["Musique"]),
            occ("a", "A", 24, categories=["Musique"]),
            occ("b", "B", 1, categories=["Musique", "Enfants"]),
            occ("c", "C", 100, categories=["Sport"]),
        ],
        built_at=BUILT,
    )
    facets = index.categories(EventQuery(start=ts(-1), end=ts(48)))
    assert facets == [
        {"key": "musique", "label": "Musique", "count": 3, "events": 2},
        {"key": "enfants", "label": "Enfants", "count": 1, "events": 1},
    ]


def test_content_hashes_change_with_content_only():
    """The sync log's input: the same record rebuilt hashes the same; a change does not."""
    first = EventIndex([occ("a", "A"), occ("b", "B", 1)], built_at=BUILT)
    later = BUILT + timedelta(hours=1)
    second = EventIndex([occ("a", "A"), occ("b", "Bis", 1)], built_at=later, previous=first)
    one, two = first.content_hashes(), second.content_hashes()
    assert one["src:a:20260601T1000"] == two["src:a:20260601T1000"]
    assert one["src:b:20260601T1100"] != two["src:b:20260601T1100"]

"""CSV exports of the lists (/v1/events.csv, /v1/agenda.csv, /v1/places.csv,
/v1/bikes/stations.csv, /v1/parkings.csv) on the demo's real data.

Every export is read back by two independent parsers: the standard library's csv module in
strict mode (it raises on a malformed quote) and pandas' C parser; both must find the JSON
list's rows, under the same filters, in the same order. Also: RFC 4180's CRLF and doubled
quotes on real titles, the 303 from format=csv, the ODbL licence in a Link header and in the
rows, formulas neutralised without touching negative numbers, the JSON route's problems for
bad filters, the bound, ETag/304 and gzip."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import shutil
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
import pandas
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from
from upstream_server import Reply

from aggregator.api import csv_export, export_cache
from aggregator.api.app import create_app
from aggregator.runtime import RUNTIME

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "config" / "demo.yaml"
#: The demo's sources, machBar's calendar standing for a council's agenda (channel agenda),
#: plus Lille's park-and-ride car parks (real names and positions, invented availability:
#: tests/fixtures/bikes/PROVENANCE.md), which the demo does not have.
PARKINGS = """
  - id: relais
    type: parkings
    url: file:demo-data/parkings-relais-ods-v1-handmade.json
    id_field: libelle
    licence: etalab-2.0
    attribution: Métropole Européenne de Lille
    fields: {name: nom, city: commune, capacity: capacite, free_spaces: nbplacesdispo,
             state: etat, last_updated: datemiseajour}
    values:
      state: {OUVERT: open, FERME: closed, COMPLET: full}
"""
PARIS_2025 = {"source": "paris-events", "from": "2025-01-01T00:00:00Z", "to": "2025-12-31"}
PARIS_2022 = {"source": "paris-events", "from": "2022-01-01T00:00:00Z", "to": "2022-12-31"}
NIORT = {"lat": "46.3235", "lon": "-0.4588", "radius": "50000"}
ROUEN = {"lat": "49.4402", "lon": "1.0944", "radius": "5000"}
CALMETTE = {"lat": "50.6080246", "lon": "3.03906918", "radius": "10000"}
#: Each export, the JSON list it mirrors, and a query of the demo selecting real rows.
EXPORTS = [
    ("/v1/events", PARIS_2025),
    ("/v1/events", PARIS_2022),
    ("/v1/events", {}),
    ("/v1/agenda", {"from": "2023-11-01T00:00:00Z", "to": "2024-10-31T00:00:00Z"}),
    ("/v1/places", {}),
    ("/v1/places", {**NIORT, "open_at": "2023-11-08T10:00:00+01:00"}),
    ("/v1/bikes/stations", ROUEN),
    ("/v1/parkings", CALMETTE),
]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("demo")
    shutil.copytree(ROOT / "config" / "demo-data", base / "demo-data")
    shutil.copy(
        ROOT / "tests" / "fixtures" / "bikes" / "parkings-relais-ods-v1-handmade.json",
        base / "demo-data",
    )
    return base


#: One demo server for the module (loading the demo's timetables takes seconds); the tests
#: only read from it.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(demo_dir: Path) -> AsyncIterator[TestClient]:
    demo = DEMO.read_text().replace(
        "    categories: [atelier]\n", "    categories: [atelier]\n    channel: agenda\n"
    )
    assert "channel: agenda" in demo
    runtime = runtime_from(demo + PARKINGS, base_dir=demo_dir)
    for source_id in runtime.connectors:
        assert (await runtime.poll_once(source_id)).outcome == "changed", source_id
    await runtime.live.settled()
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def json_rows(client: TestClient, path: str, query: dict[str, str]) -> list[dict]:
    """Every item of the JSON list under ``query``, page after page."""
    rows: list[dict] = []
    cursor = None
    while True:
        asked = {**query, "limit": "100", **({"cursor": cursor} if cursor else {})}
        answer = await client.get(f"{path}?{urlencode(asked)}")
        assert answer.status == 200, await answer.text()
        body = orjson.loads(await answer.read())
        rows += body["data"]
        cursor = body["meta"]["next_cursor"]
        if not cursor:
            return rows


def strict_rows(body: bytes) -> list[dict[str, str]]:
    """The file read by the csv module in strict mode (a stray quote raises csv.Error)."""
    reader = csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""), strict=True)
    return list(reader)


def pandas_rows(body: bytes) -> list[dict[str, str]]:
    """The file read by pandas' C parser, every cell as the text it holds."""
    frame = pandas.read_csv(
        io.BytesIO(body), dtype=str, keep_default_na=False, engine="c", encoding="utf-8"
    )
    return frame.to_dict("records")


async def export(client: TestClient, path: str, query: dict[str, str]) -> bytes:
    answer = await client.get(f"{path}.csv?{urlencode(query)}")
    assert answer.status == 200, await answer.text()
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    return await answer.read()


@pytest.mark.parametrize(("path", "query"), EXPORTS)
async def test_two_parsers_read_the_json_lists_rows(
    client: TestClient, path: str, query: dict[str, str]
) -> None:
    body = await export(client, path, query)
    listed = await json_rows(client, path, query)
    assert listed, (path, query)  # the query selects real rows of the demo
    strict = strict_rows(body)
    assert strict == pandas_rows(body)
    assert [row["id"] for row in strict] == [item["id"] for item in listed]
    assert body.count(b"\r\n") >= len(listed) + 1  # CRLF after the header and every row
    header = body.split(b"\r\n", 1)[0].decode().split(",")
    assert header[:2] in (["id", "event_id"], ["id", "source"])
    assert header[-4:] == ["commune_code", "commune_name", "licence", "attribution"]
    for row, item in zip(strict, listed, strict=True):
        assert row["source"] == item["source"]
        # The commune cells are the JSON list's ``commune`` (empty where it is null).
        commune = item["commune"] or {"code": "", "name": ""}
        assert (row["commune_code"], row["commune_name"]) == (commune["code"], commune["name"])
        lat = item["lat"] if "lat" in item else (item.get("location") or {}).get("lat")
        assert row["lat"] == ("" if lat is None else repr(lat))
        if item.get("distance_m") is not None:
            assert float(row["distance_m"]) == item["distance_m"]


async def test_real_titles_with_commas_quotes_and_newlines_are_quoted(client):
    """RFC 4180 on the Paris agenda's own titles: a cell holding a comma, a quote or a line
    break is quoted, its quotes doubled; read back, every title is the JSON list's."""
    body = await export(client, "/v1/events", PARIS_2022)
    listed = await json_rows(client, "/v1/events", PARIS_2022)
    titles = {item["id"]: item["title"] for item in listed}
    title = '"1,2,3 Nous irons au bois." |  Une visite animation dans les jardins du musée '
    title += "Bourdelle"
    assert title in titles.values()
    assert b'"""1,2,3 Nous irons au bois."" |  Une visite' in body  # quoted, quotes doubled
    rows = strict_rows(body)
    assert {row["id"]: row["title"] for row in rows} == titles
    described = [row for row in rows if "\n" in row["description"]]
    assert described  # real descriptions span lines, inside one quoted cell
    by_id = {item["id"]: item for item in listed}
    for row in described:
        assert row["description"] == by_id[row["id"]]["description"]
    # Lists joined with the documented separator, times with their offset.
    tagged = next(row for row in rows if by_id[row["id"]]["keywords"])
    assert tagged["keywords"].split(csv_export.LIST_SEPARATOR) == by_id[tagged["id"]]["keywords"]
    assert all(row["start"][-6] in "+-" and row["start"][-3] == ":" for row in rows)


async def test_format_csv_on_the_json_list_is_a_303_to_its_export(client):
    for path, query in EXPORTS:
        asked = urlencode({**query, "format": "csv"})
        answer = await client.get(f"{path}?{asked}", allow_redirects=False)
        assert answer.status == 303, path
        location = urlsplit(answer.headers["Location"])
        assert location.path == f"{path}.csv"
        assert parse_qsl(location.query) == list(query.items())
        assert answer.headers["X-Content-Type-Options"] == "nosniff"  # the conventions apply
        followed = await client.get(f"{path}?{asked}")
        assert followed.status == 200 and followed.content_type == "text/csv"
    # The list checks the whole request first (its problem, not a redirect to one), then
    # leaves out what an export does not take.
    paged = await client.get("/v1/events?format=csv&limit=5&q=Paris", allow_redirects=False)
    assert paged.status == 303 and paged.headers["Location"] == "/v1/events.csv?q=Paris"
    for bad in (
        "format=csv&limit=500",
        "format=csv&fields=nothing",
        "format=csv&cursor=x",
        "format=xls",
    ):
        refused = await client.get(f"/v1/events?{bad}", allow_redirects=False)
        assert refused.status == 400, bad
        assert refused.content_type == "application/problem+json"
    plain = await client.get("/v1/events?format=json&limit=1")
    assert plain.status == 200 and plain.content_type == "application/json"


async def test_an_odbl_source_says_so_in_a_link_header_and_in_its_rows(client):
    """The Niort pharmacies are OpenStreetMap data (ODbL): what is derived from them is
    share-alike, and the file says so even once saved without its headers."""
    answer = await client.get("/v1/places.csv")
    assert answer.headers.getall("Link") == [
        '<https://spdx.org/licenses/ODbL-1.0.html>; rel="license"'
    ]
    rows = strict_rows(await answer.read())
    assert rows and {(r["licence"], r["attribution"]) for r in rows} == {
        ("ODbL-1.0", "© OpenStreetMap contributors")
    }
    meta = orjson.loads(await (await client.get("/v1/places")).read())["meta"]
    assert meta["sources"]["niort-pharmacies"]["share_alike"] is True
    parkings = await client.get(f"/v1/parkings.csv?{urlencode(CALMETTE)}")
    assert parkings.headers.getall("Link") == [
        '<https://spdx.org/licenses/etalab-2.0.html>; rel="license"'
    ]
    # A source without a licence gives empty cells and no Link.
    bikes = await client.get(f"/v1/bikes/stations.csv?{urlencode(ROUEN)}")
    assert "Link" not in bikes.headers
    assert {r["licence"] for r in strict_rows(await bikes.read())} == {""}


async def test_real_cells_that_start_like_formulas_are_neutralised(client):
    """Phone numbers written "+33 5 49 ..." (Niort's pharmacies) would run as formulas in a
    spreadsheet (and show #NAME?): they get a leading apostrophe; "+33549240041", a plain
    number, does not. Negative longitudes (Niort is west of Greenwich) stay numbers."""
    rows = strict_rows(await export(client, "/v1/places", {}))
    places = {p["id"]: p for p in await json_rows(client, "/v1/places", {})}
    spaced = [r for r in rows if places[r["id"]]["contact"]["phone"] or ""]
    assert any(r["phone"].startswith("'+33 ") for r in spaced)
    for row in spaced:
        phone = places[row["id"]]["contact"]["phone"]
        assert row["phone"] == (phone if " " not in phone else "'" + phone)
    assert any(r["phone"] == "+33549240041" for r in rows)
    assert all(float(r["lon"]) < 0 and r["lon"].startswith("-") for r in rows)


@pytest.mark.asyncio(loop_scope="function")
async def test_hostile_formulas_from_an_upstream_are_neutralised(upstream):
    """OWASP's payloads in a places feed: each text cell starting with = + - @ (or a tab)
    is prefixed with an apostrophe; plain numbers, negative coordinates included, are not."""
    names = [
        '=HYPERLINK("http://evil.example","Mairie")',
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "-3.5",
        "Mairie annexe",
    ]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-3.5 - i / 100, 47.0]},
            "properties": {"id": f"p{i}", "name": name, "phone": "+33 2 98 00 00 0" + str(i)},
        }
        for i, name in enumerate(names)
    ]
    upstream.route(
        "/places.geojson",
        Reply(body=orjson.dumps({"type": "FeatureCollection", "features": features})),
    )
    runtime = runtime_from(
        f"""
        connectors:
          - id: mairies
            type: places
            url: "{upstream.url("/places.geojson")}"
            format: geojson
            id_field: id
            category: town_hall
            fields: {{name: name, phone: phone}}
        """
    )
    assert (await runtime.poll_once("mairies")).outcome == "changed"
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        body = await export(client, "/v1/places", {})
    rows = {row["id"]: row for row in strict_rows(body)}
    assert [rows[f"mairies:p{i}"]["name"] for i in range(len(names))] == [
        '\'=HYPERLINK("http://evil.example","Mairie")',
        "'+cmd|' /C calc'!A0",
        "'-2+3+cmd|' /C calc'!A0",
        "'@SUM(1+1)*cmd|' /C calc'!A0",
        "'=1+1",  # the connector trims the tab; the apostrophe still comes first
        "-3.5",  # a number, not a formula
        "Mairie annexe",
    ]
    assert rows["mairies:p0"]["lon"] == "-3.5" and rows["mairies:p3"]["lon"] == "-3.53"
    assert all(row["phone"].startswith("'+33 2 98") for row in rows.values())
    assert pandas_rows(body) == list(rows.values())
    assert csv_export.neutralised("\t=1+1") == "'\t=1+1"
    assert csv_export.neutralised("\r=1+1") == "'\r=1+1"
    for number in ("-3.5", "+33", "-.5", "1e-05", "-1E+3"):
        assert csv_export.neutralised(number) == number


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/events", {"from": "2026-01-02", "to": "2026-01-01"}),
        ("/v1/events", {"radius": "100"}),
        ("/v1/events", {"lat": "91", "lon": "0"}),
        ("/v1/events", {"accessibility": "wings"}),
        ("/v1/agenda", {"sort": "distance"}),
        ("/v1/places", {"lat": "46.3"}),
        ("/v1/places", {"open_now": "true", "open_at": "2023-11-08T10:00:00Z"}),
        ("/v1/places", {"category": "castle"}),
        ("/v1/places", {"source": "nowhere"}),
        ("/v1/bikes/stations", {"lat": "49.44"}),
        ("/v1/bikes/stations", {**ROUEN, "radius": "50001"}),
        ("/v1/parkings", {**CALMETTE, "source": "lovelo-bikes"}),
        ("/v1/events", {"lang": "xx"}),
    ],
)
async def test_bad_filters_get_the_json_lists_problems(client, path, query):
    asked = urlencode(query)
    problems = []
    for url in (f"{path}?{asked}", f"{path}.csv?{asked}"):
        answer = await client.get(url, headers={"Accept-Language": "fr"})
        assert answer.status == 400, url
        assert answer.content_type == "application/problem+json"
        problem = orjson.loads(await answer.read())
        problems.append({k: v for k, v in problem.items() if k != "instance"})
    assert problems[0] == problems[1]


async def test_paging_parameters_are_refused_by_name(client):
    """An export is the whole filtered set: limit, cursor and fields are not its parameters."""
    for name, value in (("limit", "5"), ("cursor", "abc"), ("fields", "id"), ("sync", "start")):
        answer = await client.get(f"/v1/events.csv?{name}={value}")
        assert answer.status == 400
        problem = orjson.loads(await answer.read())
        assert problem["errors"][0]["parameter"] == name


async def test_an_export_over_the_bound_is_a_problem_not_a_truncated_file(client, monkeypatch):
    """Past the bound the answer names it and asks for narrower filters (here the bound is
    lowered to the demo's size: the Paris agenda has more rows than 5)."""
    monkeypatch.setattr(csv_export, "MAX_ROWS", 5)
    # Finished exports of the earlier tests were made under the real bound: start afresh.
    monkeypatch.setattr(export_cache, "_caches", weakref.WeakKeyDictionary())
    refused = []
    for path, query in EXPORTS:
        monkeypatch.setattr(f"{_module_of(path)}.MAX_ROWS", 5)
        listed = await json_rows(client, path, query)
        answer = await client.get(f"{path}.csv?{urlencode(query)}")
        if len(listed) <= 5:
            assert answer.status == 200, path
            continue
        assert answer.status == 400, path
        refused.append(path)
        problem = orjson.loads(await answer.read())
        assert problem["code"] == "export_too_large"
        assert "5" in problem["detail"] and "from/to" in problem["detail"]
        assert (await client.get(problem["type"])).status == 200  # the type is described
    # Not vacuous: each kind of export (events, places, near a point) passed the bound once.
    assert {"/v1/events", "/v1/agenda", "/v1/places", "/v1/bikes/stations"} <= set(refused)


def _module_of(path: str) -> str:
    """The module whose MAX_ROWS an export's handler reads."""
    if path in ("/v1/events", "/v1/agenda"):
        return "connectors.events.csv_export"
    if path == "/v1/places":
        return "connectors.places.csv_export"
    return "connectors.places.near_export"


async def test_etag_304_gzip_and_language_like_the_json_answers(client):
    query = urlencode(PARIS_2025)
    first = await client.get(f"/v1/events.csv?{query}")
    body = await first.read()
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert first.headers["Content-Disposition"] == 'attachment; filename="events.csv"'
    assert first.headers["Content-Language"] == "fr"
    again = await client.get(f"/v1/events.csv?{query}", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    assert again.headers["ETag"] == etag
    english = await client.get(f"/v1/events.csv?{query}&lang=en", headers={"If-None-Match": etag})
    assert english.status == 200 and english.headers["ETag"] != etag
    zipped = await client.get(f"/v1/events.csv?{query}", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    raw = await client.session.get(
        client.make_url(f"/v1/events.csv?{query}"),
        headers={"Accept-Encoding": "gzip"},
        auto_decompress=False,
    )
    assert gzip.decompress(await raw.read()) == body


async def test_the_document_describes_each_export(client):
    document = orjson.loads(await (await client.get("/v1/openapi.json")).read())
    for path, _query in EXPORTS:
        operation = document["paths"][f"{path}.csv"]["get"]
        assert list(operation["responses"]["200"]["content"]) == [csv_export.CSV_MEDIA_TYPE]
        assert "304" in operation["responses"]
        names = {p["name"] for p in operation["parameters"]}
        json_names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert names == json_names - csv_export.NOT_IN_EXPORT
        listing = document["paths"][path]["get"]
        assert "303" in listing["responses"]
        (format_,) = [p for p in listing["parameters"] if p["name"] == "format"]
        assert format_["schema"]["enum"] == ["json", "csv"]


async def test_a_repeat_or_a_revalidation_is_answered_from_the_finished_export(client, monkeypatch):
    """The file is built once per data generation, query (in any order) and language."""
    monkeypatch.setattr(export_cache, "_caches", weakref.WeakKeyDictionary())
    cache = export_cache.cache_of(client.server.app[RUNTIME].live)
    first = await client.get(f"/v1/events.csv?{urlencode(PARIS_2025)}")
    body = await first.read()
    assert (cache.builds, cache.hits, len(cache)) == (1, 0, 1)
    etag = first.headers["ETag"]
    revalidated = await client.get(
        f"/v1/events.csv?{urlencode(PARIS_2025)}", headers={"If-None-Match": etag}
    )
    assert revalidated.status == 304 and revalidated.headers["ETag"] == etag
    reordered = await client.get(f"/v1/events.csv?{urlencode(dict(reversed(PARIS_2025.items())))}")
    assert await reordered.read() == body and reordered.headers["ETag"] == etag
    assert (cache.builds, cache.hits) == (1, 2)
    english = await client.get(f"/v1/events.csv?{urlencode(PARIS_2025)}&lang=en")
    assert english.status == 200 and english.headers["ETag"] != etag
    assert (cache.builds, cache.hits, len(cache)) == (2, 2, 2)


def _export(size: int) -> csv_export.Export:
    return csv_export.Export(b"x" * size, None, str(size), (), True)


async def test_the_export_cache_is_bounded_and_follows_data_and_clock():
    now = [0.0]
    cache = export_cache.ExportCache(max_bytes=10_000, max_entries=3, clock=lambda: now[0])
    built: list[str] = []

    async def build(name: str, size: int) -> csv_export.Export:
        built.append(name)
        return _export(size)

    def key(name: str, generation: int = 1) -> export_cache.ExportKey:
        return ("/v1/places", (("q", name),), "fr", generation)

    await cache.get_or_build(key("a"), lambda: build("a", 4000), 60)
    await cache.get_or_build(key("b"), lambda: build("b", 4000), 60)
    assert cache.bytes <= 10_000 and len(cache) == 2
    # A third does not fit beside both: the oldest leaves.
    await cache.get_or_build(key("c"), lambda: build("c", 4000), 60)
    assert len(cache) == 2 and cache.bytes <= 10_000
    await cache.get_or_build(key("b"), lambda: build("b", 4000), 60)
    await cache.get_or_build(key("a"), lambda: build("a", 4000), 60)
    assert built == ["a", "b", "c", "a"]
    # Larger than the whole budget: answered, never kept.
    await cache.get_or_build(key("huge"), lambda: build("huge", 20_000), 60)
    assert len(cache) == 2 and cache.bytes <= 10_000
    # An entry lives for its answer's max-age; an answer without one (0) is not kept.
    now[0] = 61.0
    await cache.get_or_build(key("a"), lambda: build("a", 100), 60)
    await cache.get_or_build(key("n"), lambda: build("n", 100), 0)
    await cache.get_or_build(key("n"), lambda: build("n", 100), 0)
    assert built[-3:] == ["a", "n", "n"] and len(cache) == 1
    # New data: everything kept is of the old data and leaves.
    await cache.get_or_build(key("a", 2), lambda: build("a", 100), 60)
    assert built[-1] == "a" and len(cache) == 1
    # Many small entries: the count bounds them too.
    for i in range(10):
        await cache.get_or_build(key(str(i), 2), lambda: build("s", 10), 60)
    assert len(cache) == 3


async def test_concurrent_requests_for_one_export_build_it_once():
    cache = export_cache.ExportCache()
    release = asyncio.Event()
    calls = []

    async def build() -> csv_export.Export:
        calls.append(1)
        await release.wait()
        return _export(10)

    key: export_cache.ExportKey = ("/v1/events", (), "fr", 1)
    waiting = [asyncio.ensure_future(cache.get_or_build(key, build, 60)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*waiting)
    assert len(calls) == 1 and all(a is answers[0] for a in answers)

    async def too_large() -> csv_export.Export:
        calls.append(1)
        await asyncio.sleep(0)
        raise csv_export.ExportTooLarge()

    other: export_cache.ExportKey = ("/v1/events", (("q", "x"),), "fr", 1)
    failing = [asyncio.ensure_future(cache.get_or_build(other, too_large, 60)) for _ in range(2)]
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(r, csv_export.ExportTooLarge) for r in results)
    assert len(calls) == 2 and len(cache) == 1  # built once, and a problem is not kept


async def test_at_most_two_different_exports_are_built_at_once():
    cache = export_cache.ExportCache(max_concurrent_builds=2)
    running, most = [0], [0]

    async def build() -> csv_export.Export:
        running[0] += 1
        most[0] = max(most[0], running[0])
        for _ in range(3):
            await asyncio.sleep(0)
        running[0] -= 1
        return _export(10)

    keys = [("/v1/places", (("q", str(i)),), "fr", 1) for i in range(5)]
    await asyncio.gather(*(cache.get_or_build(k, build, 60) for k in keys))
    assert most[0] == 2 and cache.builds == 5


async def test_a_request_going_away_does_not_cancel_the_build_others_wait_for():
    cache = export_cache.ExportCache()
    release = asyncio.Event()

    async def build() -> csv_export.Export:
        await release.wait()
        return _export(10)

    key: export_cache.ExportKey = ("/v1/events", (), "fr", 1)
    first = asyncio.ensure_future(cache.get_or_build(key, build, 60))
    second = asyncio.ensure_future(cache.get_or_build(key, build, 60))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert (await second).body == b"x" * 10
    assert first.cancelled() and cache.builds == 1 and len(cache) == 1

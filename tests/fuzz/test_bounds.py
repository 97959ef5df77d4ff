"""Bounds on everything a client controls, against the real server on the demo data:
limits, time ranges, radius, query length, cursor tampering, header sizes, odd query strings
and path ids. Every refusal is a 4xx problem document; nothing is a 5xx."""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from fuzz.live import LiveServer


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def fetch(
    server: LiveServer, target: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> Answer:
    """One request with ``target`` sent as is (no re-encoding), on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def assert_problem(
    answer: Answer, status: int | tuple[int, ...], parameter: str | None = None
) -> dict:
    """``answer`` is a problem+json with one of ``status``, naming ``parameter`` if given."""
    statuses = (status,) if isinstance(status, int) else status
    assert answer.status in statuses, (answer.status, answer.body[:300])
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == answer.status and problem["title"] and problem["detail"]
    if parameter is not None:
        assert [e["parameter"] for e in problem["errors"]] == [parameter], problem
    return problem


def assert_ok(answer: Answer) -> dict:
    assert answer.status == 200, (answer.status, answer.body[:300])
    return answer.json()


SF = "/v1/stops/caltrain:san_francisco/departures"
NEAR_SF = "lat=37.7764&lon=-122.3949"
PARIS = "lat=48.8566&lon=2.3522"
ROUEN = "lat=49.4431&lon=1.0993"

# --------------------------------------------------------------------------- limits

LIMITS = [
    # (path with its other parameters, parameter, maximum)
    ("/v1/stops?q=san", "limit", 100),
    ("/v1/events?", "limit", 100),
    ("/v1/agenda?", "limit", 100),
    (f"/v1/bikes/stations?{ROUEN}", "limit", 100),
    (f"/v1/parkings?{PARIS}", "limit", 100),
    (f"{SF}?", "limit", 100),
    (f"{SF}?group=line_direction", "per_group", 10),
    (f"/v1/departures?{NEAR_SF}", "stops", 20),
    (f"/v1/departures?{NEAR_SF}", "per_stop", 20),
    ("/v1/sources/lovelo-stations/records?", "limit", 100),
    ("/v1/alerts?", "limit", 100),
    ("/v1/vehicles?", "limit", 100),
]


@pytest.mark.parametrize(("path", "parameter", "maximum"), LIMITS)
@pytest.mark.parametrize("bad", ["0", "-1", "{max+1}", "99999999999999999999999", "1.5", "ten", ""])
def test_limits_outside_their_bounds_are_400(
    live_server: LiveServer, path: str, parameter: str, maximum: int, bad: str
) -> None:
    """A limit below 1, above its maximum, huge, fractional or not a number is a 400."""
    value = bad.replace("{max+1}", str(maximum + 1))
    sep = "" if path.endswith("?") else "&"
    answer = fetch(live_server, f"{path}{sep}{parameter}={value}")
    assert_problem(answer, 400, parameter)


@pytest.mark.parametrize(("path", "parameter", "maximum"), LIMITS)
def test_limits_at_their_maximum_are_served_and_honoured(
    live_server: LiveServer, path: str, parameter: str, maximum: int
) -> None:
    """The maximum limit is accepted and never exceeded."""
    sep = "" if path.endswith("?") else "&"
    body = assert_ok(fetch(live_server, f"{path}{sep}{parameter}={maximum}"))
    data = body["data"]
    if parameter == "limit" and isinstance(data, list):
        assert len(data) <= maximum
    elif parameter == "limit":
        assert len(data["departures"]) <= maximum


# --------------------------------------------------------------------------- time ranges

TIME_REFUSALS = [
    ("/v1/events?from=2023-11-01T00:00:00Z&to=2024-11-02T00:00:00Z", "to"),  # 367 days
    ("/v1/events?from=2023-11-08T00:00:00Z&to=2023-11-08T00:00:00Z", "to"),  # empty
    ("/v1/events?from=2023-11-08T00:00:00Z&to=2023-11-01T00:00:00Z", "to"),  # reversed
    ("/v1/agenda?from=2023-11-01T00:00:00Z&to=2025-01-01T00:00:00Z", "to"),
    ("/v1/categories?from=2023-11-01T00:00:00Z&to=2030-01-01T00:00:00Z", "to"),
    ("/v1/events?from=tomorrow", "from"),
    ("/v1/events?from=2023-11-07T25:00:00Z", "from"),
    ("/v1/events?updated_since=yesterday", "updated_since"),
    (f"{SF}?duration=25h", "duration"),
    (f"{SF}?duration=30s", "duration"),
    (f"{SF}?duration=0", "duration"),
    (f"{SF}?duration=-1h", "duration"),
    (f"{SF}?duration=1e308s", "duration"),
    (f"{SF}?duration=99999999999999999999999h", "duration"),
    (f"{SF}?duration=nan", "duration"),
    (f"{SF}?at=now", "at"),
    (f"/v1/departures?{NEAR_SF}&duration=48h", "duration"),
    ("/v1/alerts?active_at=soon", "active_at"),
    ("/v1/trips/caltrain:310?date=2023-02-30", "date"),
]


@pytest.mark.parametrize(("path", "parameter"), TIME_REFUSALS)
def test_time_ranges_and_instants_outside_bounds_are_400(
    live_server: LiveServer, path: str, parameter: str
) -> None:
    """Ranges over their span, reversed or empty, and unreadable instants are 400s."""
    assert_problem(fetch(live_server, path), 400, parameter)


FAR_INSTANTS = [
    "/v1/events?from=0001-01-01T00:00:00%2B14:00",
    "/v1/events?sync=start&from=0001-01-01T00:00:00%2B14:00",
    "/v1/events?sync=start&to=9999-12-31T23:59:59Z",
    "/v1/alerts?active_at=9999-12-31T23:59:59Z",
    "/v1/alerts?active_at=0001-01-01T00:00:00%2B14:00",
    "/v1/trips/caltrain:310?date=0001-01-01",
]


@pytest.mark.parametrize("path", FAR_INSTANTS)
def test_far_past_and_future_instants_are_answered(live_server: LiveServer, path: str) -> None:
    """Instants at the edges of the calendar are answered (empty) or refused, never a 5xx."""
    answer = fetch(live_server, path)
    if answer.status != 200:
        assert_problem(answer, 400)


EDGE_CRASHES = [
    pytest.param(
        "/v1/events?from=9999-12-31T23:00:00Z",
        id="events-from-9999 (connectors/events/routes.py:49 start + DEFAULT_SPAN)",
    ),
    pytest.param(
        "/v1/agenda?from=9999-12-30T00:00:00Z&to=9999-12-31T00:00:00Z",
        id="agenda-from-9999-even-with-to (default evaluated eagerly, events/routes.py:49)",
    ),
    pytest.param(
        "/v1/categories?from=9999-12-31T23:00:00Z", id="categories-from-9999 (events/routes.py:49)"
    ),
    pytest.param(
        f"{SF}?at=9999-12-31T23:00:00Z",
        id="stop-departures-at-9999 (connectors/gtfs/departures.py:91 _candidate_days)",
    ),
    pytest.param(
        f"{SF}?at=0001-01-01T00:00:00Z",
        id="stop-departures-at-0001 (connectors/gtfs/departures.py:90 _candidate_days)",
    ),
    pytest.param(
        f"/v1/departures?{NEAR_SF}&at=9999-12-31T23:00:00Z",
        id="nearby-departures-at-9999 (gtfs/departures.py:91)",
    ),
    pytest.param(
        "/v1/trips/caltrain:310?date=9999-12-31",
        id="trip-date-9999 (connectors/gtfs/trip_detail.py:66 _iso fromtimestamp)",
    ),
]


@pytest.mark.parametrize("path", EDGE_CRASHES)
def test_edge_of_calendar_instants_are_400_not_500(live_server: LiveServer, path: str) -> None:
    """An instant the server cannot compute with is a 400 naming it (or an empty 200)."""
    answer = fetch(live_server, path)
    assert answer.status < 500, answer.body[:300]


# --------------------------------------------------------------------------- radius and points

RADII = [
    ("/v1/stops?" + NEAR_SF, 5000),
    ("/v1/departures?" + NEAR_SF, 5000),
    ("/v1/bikes/stations?" + ROUEN, 5000),
    ("/v1/parkings?" + PARIS, 10000),
    ("/v1/events?" + PARIS, 50000),
]


@pytest.mark.parametrize(("path", "maximum"), RADII)
@pytest.mark.parametrize("bad", ["0", "-5", "{max+1}", "1e999", "nan", "inf", "far"])
def test_radius_outside_bounds_is_400(
    live_server: LiveServer, path: str, maximum: int, bad: str
) -> None:
    """A radius of zero, negative, over the endpoint's maximum or not finite is a 400."""
    value = bad.replace("{max+1}", str(maximum + 1))
    assert_problem(fetch(live_server, f"{path}&radius={value}"), 400, "radius")


@pytest.mark.parametrize(("path", "maximum"), RADII)
def test_radius_at_its_maximum_is_served_within_it(
    live_server: LiveServer, path: str, maximum: int
) -> None:
    """The maximum radius is accepted and every result with a distance lies within it."""
    body = assert_ok(fetch(live_server, f"{path}&radius={maximum}"))
    items = body["data"]
    for item in items:
        distance = item.get("distance_m", item.get("stop", {}).get("distance_m"))
        assert distance is None or distance <= maximum + 1


@pytest.mark.parametrize(
    "point",
    ["lat=90.0001&lon=0", "lat=0&lon=180.5", "lat=-91&lon=0", "lat=nan&lon=0", "lat=1", "lon=1"],
)
@pytest.mark.parametrize(
    "path", ["/v1/stops", "/v1/departures", "/v1/bikes/stations", "/v1/events"]
)
def test_points_off_the_globe_or_half_given_are_400(
    live_server: LiveServer, path: str, point: str
) -> None:
    """Latitudes past ±90, longitudes past ±180, NaN or a lone lat/lon are 400s."""
    assert_problem(fetch(live_server, f"{path}?{point}"), 400)


@pytest.mark.parametrize(
    "bbox", ["1,2,3", "1,2,3,4,5", "4,3,2,1", "nan,0,1,1", "a,b,c,d", "-181,0,0,1", ","]
)
def test_vehicle_bboxes_that_are_not_boxes_are_400(live_server: LiveServer, bbox: str) -> None:
    """A bbox that is not four ordered finite degrees is a 400."""
    assert_problem(fetch(live_server, f"/v1/vehicles?bbox={bbox}"), 400, "bbox")


# --------------------------------------------------------------------------- query length

TEXT_ENDPOINTS = ["/v1/stops?q=", "/v1/events?q=", "/v1/agenda?q=", "/v1/categories?q="]


@pytest.mark.parametrize("path", TEXT_ENDPOINTS)
def test_a_10000_character_search_is_4xx(live_server: LiveServer, path: str) -> None:
    """A 10,000-character q is refused (by aiohttp's 8190-byte request-line cap), not searched."""
    answer = fetch(live_server, path + "gare%20" * 1428 + "ab")
    assert 400 <= answer.status < 500
    assert_ok(fetch(live_server, "/healthz"))


@pytest.mark.parametrize("path", TEXT_ENDPOINTS)
@pytest.mark.parametrize("length", [513, 2000, 8000])
def test_a_search_past_512_characters_is_a_400_problem(
    live_server: LiveServer, path: str, length: int
) -> None:
    """A q longer than the 512-character cap (yet within the request line) is a 400 on q."""
    assert_problem(fetch(live_server, path + "a" * length), 400, "q")


@pytest.mark.parametrize("path", TEXT_ENDPOINTS)
def test_a_512_character_search_is_answered(live_server: LiveServer, path: str) -> None:
    """A search of exactly 512 characters (the cap) is answered."""
    assert_ok(fetch(live_server, path + quote("é" * 512)))


@pytest.mark.parametrize(
    "text", ["%2A", ".%2A%2B%3F%5B(", "%00", "%E2%80%8B", "%F0%9F%9A%8B", "'%20OR%201=1--", "%5C"]
)
def test_odd_search_texts_are_answered(live_server: LiveServer, text: str) -> None:
    """Regex, SQL, NUL, zero-width and emoji search texts are plain text to search."""
    for path in ("/v1/stops?q=", "/v1/events?q="):
        assert_ok(fetch(live_server, path + text))


def test_a_query_string_past_aiohttp_line_limit_is_4xx(live_server: LiveServer) -> None:
    """A 20,000-character request line is refused by the HTTP layer, and the server lives on."""
    answer = fetch(live_server, "/v1/events?q=" + "a" * 20_000)
    assert 400 <= answer.status < 500
    assert_ok(fetch(live_server, "/healthz"))


# --------------------------------------------------------------------------- cursors


def _first_cursor(server: LiveServer, path: str) -> str:
    body = assert_ok(fetch(server, path))
    cursor = body["meta"]["next_cursor"]
    assert cursor, "the demo data must give at least two pages"
    return cursor


EVENTS_PAGE = "/v1/events?from=2023-11-01T00:00:00Z&to=2024-11-01T00:00:00Z&limit=5"
RECORDS_PAGE = "/v1/sources/lovelo-stations/records?limit=5"


def _tamperings(cursor: str) -> list[str]:
    """Edits of ``cursor``: each position changed, truncations, extensions, encodings."""
    swaps = {c: ("B" if c == "A" else "A") for c in set(cursor)}
    edited = [cursor[:i] + swaps[cursor[i]] + cursor[i + 1 :] for i in range(0, len(cursor), 3)]
    return [
        *edited,
        cursor[:-1],
        cursor[:12],
        cursor + "A",
        cursor + "==",
        cursor[::-1],
        cursor.upper(),
        quote(cursor + "é"),
        "%FF" + cursor,
        "",
    ]


@pytest.mark.parametrize("page", [EVENTS_PAGE, RECORDS_PAGE])
def test_tampered_cursors_are_400_never_another_page(live_server: LiveServer, page: str) -> None:
    """Every edit of a genuine cursor is a 400 on cursor (or, padding bits only, the same page)."""
    cursor = _first_cursor(live_server, page)
    genuine = assert_ok(fetch(live_server, f"{page}&cursor={cursor}"))["data"]
    for altered in _tamperings(cursor):
        answer = fetch(live_server, f"{page}&cursor={altered}")
        if answer.status == 200:
            assert answer.json()["data"] == genuine, altered
        else:
            assert_problem(answer, 400, "cursor")


def test_a_cursor_replayed_on_another_query_is_400(live_server: LiveServer) -> None:
    """A cursor belongs to its query: another filter, window or endpoint refuses it."""
    events = _first_cursor(live_server, EVENTS_PAGE)
    records = _first_cursor(live_server, RECORDS_PAGE)
    others = [
        f"/v1/events?from=2023-11-02T00:00:00Z&to=2024-11-01T00:00:00Z&limit=5&cursor={events}",
        f"{EVENTS_PAGE}&q=atelier&cursor={events}",
        f"/v1/agenda?from=2023-11-01T00:00:00Z&to=2024-11-01T00:00:00Z&cursor={events}",
        f"{EVENTS_PAGE}&cursor={records}",
        f"/v1/sources/paris-events/records?cursor={records}",
        f"{RECORDS_PAGE}&cursor={events}",
    ]
    for path in others:
        assert_problem(fetch(live_server, path), 400, "cursor")


def test_a_cursor_from_another_deployment_is_400(live_server: LiveServer) -> None:
    """A well-formed cursor signed with another secret is refused."""
    from aggregator.api.pagination import CursorCodec

    forged = CursorCodec("not the server's secret").encode("records:lovelo-stations", "zzz")
    assert_problem(fetch(live_server, f"{RECORDS_PAGE}&cursor={forged}"), 400, "cursor")


# --------------------------------------------------------------------------- headers


def test_a_20kb_header_is_4xx_and_the_server_lives_on(live_server: LiveServer) -> None:
    """One 20 KB header value is refused by aiohttp with a 4xx, not a crash."""
    answer = fetch(live_server, "/v1/sources", {"X-Padding": "a" * 20_000})
    assert 400 <= answer.status < 500
    assert_ok(fetch(live_server, "/healthz"))


def test_headers_totalling_far_more_than_a_page_are_4xx(live_server: LiveServer) -> None:
    """Two hundred 1 KB headers are refused or answered, never a 5xx, and the server lives on."""
    headers = {f"X-H{i}": "b" * 1000 for i in range(200)}
    answer = fetch(live_server, "/healthz", headers)
    assert answer.status < 500
    assert_ok(fetch(live_server, "/healthz"))


@pytest.mark.parametrize(
    "value",
    [
        ",".join(f"x{i}-zz;q=0.{i % 10}" for i in range(560)),  # ~7.9 KB, under aiohttp's cap
        "fr;q=nan, en;q=inf, de;q=-1, *;q=1",
        ";;;,,,;q=;q==,=",
        "\u00e9\u00e8".encode().decode("latin-1"),
        "en-" + "A" * 7000,
    ],
    ids=["8kb-list", "odd-weights", "separators", "latin1-bytes", "long-tag"],
)
def test_hostile_accept_language_is_answered(live_server: LiveServer, value: str) -> None:
    """A big (under 8 KB) or malformed Accept-Language falls back to a served language."""
    answer = fetch(live_server, "/v1/events?limit=1", {"Accept-Language": value})
    body = assert_ok(answer)
    assert body["meta"]["language"] in ("fr", "en")


def test_a_20kb_accept_language_is_4xx(live_server: LiveServer) -> None:
    """A 20 KB Accept-Language is refused by aiohttp's header cap, and the server lives on."""
    value = ",".join(f"x{i}-zz;q=0.5" for i in range(1700))
    assert 400 <= fetch(live_server, "/v1/events", {"Accept-Language": value}).status < 500
    assert_ok(fetch(live_server, "/healthz"))


@pytest.mark.parametrize(
    "value",
    ['W/"x", ' * 1000, "*", '"', "W/", "\x7f"],
    ids=["1000-tags", "star", "quote", "w", "del"],
)
def test_hostile_if_none_match_is_answered(live_server: LiveServer, value: str) -> None:
    """Odd If-None-Match values give a 200 or a 304 (a DEL byte: aiohttp's 400), never a 5xx."""
    status = fetch(live_server, "/v1/sources", {"If-None-Match": value}).status
    assert status in ((400,) if value == "\x7f" else (200, 304))


def test_a_raw_garbage_request_is_answered_4xx(live_server: LiveServer) -> None:
    """Bytes that are not HTTP get a 4xx (or a closed connection), and the server lives on."""
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03GARBAGE\r\n\r\n")
        reply = sock.recv(200)
    assert reply == b"" or reply.split(b" ")[1].startswith(b"4")
    assert_ok(fetch(live_server, "/healthz"))


# --------------------------------------------------------------------------- query strings


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/events?limt=5", "limt"),
        ("/v1/stops?q=gare&radious=5", "radious"),
        ("/healthz?verbose=1", "verbose"),
        ("/v1/sources?%FF=1", None),
        ("/v1/sources?=1", None),
    ],
)
def test_unknown_parameters_are_400(
    live_server: LiveServer, path: str, parameter: str | None
) -> None:
    """A parameter the route does not declare is a 400 naming it."""
    assert_problem(fetch(live_server, path), 400, parameter)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/events?limit=1&limit=2",
        "/v1/events?limit=1&limit=abc",
        "/v1/events?lang=fr&lang=en",
        "/v1/stops?q=gare&q=levis",
        f"{SF}?limit=1&limit=200",
        "/v1/sources/lovelo-stations/records?limit=1&limit=1&limit=1",
    ],
)
def test_repeated_parameters_are_answered_deterministically(
    live_server: LiveServer, path: str
) -> None:
    """A repeated parameter gives the same 200/400 twice (its first value counts), never a 5xx."""
    first, second = fetch(live_server, path), fetch(live_server, path)
    assert first.status == second.status and first.status in (200, 400)
    if first.status == 200:
        assert first.json()["data"] == second.json()["data"]


@pytest.mark.parametrize(
    "query",
    ["q=%FF%FE", "q=%C3%28", "q=%ED%A0%80", "q=%", "q=%G0", "q=%C3", "lang=%FF", "cursor=%FF%FF"],
)
def test_non_utf8_percent_encoding_is_answered(live_server: LiveServer, query: str) -> None:
    """Percent-encoded bytes that are not UTF-8 are searched as replaced text or refused."""
    answer = fetch(live_server, f"/v1/events?{query}")
    if answer.status != 200:
        assert_problem(answer, 400)


# --------------------------------------------------------------------------- path ids

ODD_IDS = [
    "%00",
    "%FF",
    "%FF%FE",
    "%C3%28",
    "..%2F..%2Fetc%2Fpasswd",
    "caltrain%3A",
    ":",
    "caltrain:",
    ":san_francisco",
    "caltrain:san_francisco:extra",
    "%20",
    "%F0%9F%9A%8B",
    "a" * 2000,
    "nope:x",
    "lovelo-stations:1",
]
ID_ROUTES = [
    "/v1/stops/{}",
    "/v1/stops/{}/departures",
    "/v1/lines/{}",
    "/v1/trips/{}",
    "/v1/events/{}",
    "/v1/sources/{}",
    "/v1/sources/{}/records",
]


@pytest.mark.parametrize("route", ID_ROUTES)
def test_odd_path_ids_are_404_problems(live_server: LiveServer, route: str) -> None:
    """Ids with NUL, invalid UTF-8, traversal, emoji or extra parts are 404 (or 400) problems."""
    for odd in ODD_IDS:
        answer = fetch(live_server, route.format(odd))
        assert_problem(answer, (400, 404))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_writes_are_405_problems(live_server: LiveServer, method: str) -> None:
    """The API is read-only: a write method is a 405 problem with Allow."""
    answer = fetch(live_server, "/v1/events", method=method)
    assert_problem(answer, 405)
    assert "GET" in answer.headers["Allow"]

"""``include=references`` on the demo's real Caltrain data (and BART's real alert): items name
their lines and stops by id, the answer's ``references`` gives each once and says the same as
the whole objects of the answer without it, which stays exactly as it was."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from

from aggregator.api.app import create_app

CONFIG_DIR = Path(__file__).parents[1] / "config"
FOURTH_AND_KING = "lat=37.7764&lon=-122.3949"
#: The answers that offer references, as an app asks them.
ANSWERS = [
    "/v1/stops/caltrain:san_francisco/departures?limit=100&duration=24h",
    "/v1/stops/caltrain:lawrence/departures?group=line_direction",
    f"/v1/departures?{FOURTH_AND_KING}&radius=2000",
    "/v1/trips/caltrain:310",
    "/v1/vehicles",
    "/v1/vehicles.geojson",
    "/v1/alerts",
]


async def _client(config: str):
    runtime = runtime_from(config, base_dir=CONFIG_DIR)
    for source_id in runtime.connectors:
        assert (await runtime.poll_once(source_id)).outcome == "changed", source_id
    return TestClient(TestServer(create_app(runtime, poll=False)))


@pytest.fixture
async def client():
    """The demo's Caltrain timetable and realtime captures, at the demo's instant."""
    demo = yaml.safe_load((CONFIG_DIR / "demo.yaml").read_text())
    demo["connectors"] = [c for c in demo["connectors"] if c["id"] in ("caltrain", "caltrain-rt")]
    async with await _client(yaml.safe_dump(demo)) as test_client:
        yield test_client


async def get_json(client, path: str, status: int = 200, **headers: str) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status == status, (path, await response.text())
    return await response.json(content_type=None)


def body_of(answer: dict[str, Any]) -> Any:
    """``data``, or a GeoJSON answer without its ``meta`` and ``references`` members."""
    if "data" in answer:
        return answer["data"]
    return {k: v for k, v in answer.items() if k not in ("meta", "references")}


def with_references(path: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}include=references"


def resolved(item: Any, references: dict[str, Any], stops: dict[str, Any]) -> Any:
    """``item`` (an answer by reference) with its ids replaced by what the answer without
    references carries there: the whole line, and the stop cut to the members it had inline."""
    if isinstance(item, list):
        return [resolved(value, references, stops) for value in item]
    if not isinstance(item, dict):
        return item
    out = {}
    for key, value in item.items():
        if key == "line_id":
            out["line"] = None if value is None else references["lines"][value]
        elif key == "stop_id" and value in stops:  # a departure's or a call's stop
            out["stop"] = stops[value]
        elif key == "line_ids":
            out["lines"] = [references["lines"][v] for v in value]
        elif key == "stop_ids":
            out["stops"] = [stops[v] for v in value]
        else:
            out[key] = resolved(value, references, stops)
    return out


def inline_stops(item: Any, found: dict[str, Any], top: bool = False) -> dict[str, Any]:
    """Every inline stop object of an answer without references (under "stop" or "stops"),
    by id, as it is written there; not a board's own stop (``top``), which stays whole."""
    if isinstance(item, list):
        for value in item:
            inline_stops(value, found)
    elif isinstance(item, dict):
        for key, value in item.items():
            if key == "stop" and (top or "lines" in value):
                continue
            if key == "stop" and isinstance(value, dict):
                found[value["id"]] = value
            elif key == "stops" and isinstance(value, list):
                found.update((stop["id"], stop) for stop in value)
            else:
                inline_stops(value, found)
    return found


@pytest.mark.parametrize("path", ANSWERS[:-1])
async def test_by_reference_says_what_the_whole_answer_says(client, path):
    """Resolving every id through ``references`` gives back the answer without it, item for
    item; each referenced stop agrees with the inline one on every member they share; a
    nearby board's stop lists its lines by id."""
    whole = await get_json(client, path)
    by_ref = await get_json(client, with_references(path))
    assert "references" not in whole
    references = by_ref["references"]
    assert references["lines"] or references["stops"]
    inline = inline_stops(body_of(whole), {}, top=isinstance(whole.get("data"), dict))
    for stop_id, stop in inline.items():
        referenced = references["stops"][stop_id]
        assert {k: referenced[k] for k in stop} == stop, stop_id
    data = body_of(by_ref)
    if path.startswith("/v1/departures"):  # a nearby board's stop: lines → line_ids
        for board, whole_board in zip(data, whole["data"], strict=True):
            board["stop"]["lines"] = [references["lines"][i] for i in board["stop"].pop("line_ids")]
            assert board["stop"] == whole_board["stop"]
    assert resolved(data, references, inline) == body_of(whole)


@pytest.mark.parametrize("path", ANSWERS[:-1])
async def test_each_line_and_stop_is_sent_once_and_every_id_resolves(client, path):
    """No whole line or stop object is left in the items; every line_id and stop_id of the
    items is a key of references, and references hold nothing the items do not name."""
    by_ref = await get_json(client, with_references(path))
    references = by_ref["references"]
    named_lines: set[str] = set()
    named_stops: set[str] = set()

    def walk(item: Any, top: bool) -> None:
        if isinstance(item, list):
            for value in item:
                walk(value, False)
        elif isinstance(item, dict):
            assert "line" not in item and "lines" not in item, item
            for key, value in item.items():
                if key in ("line_id", "stop_id") and value is not None:
                    (named_lines if key == "line_id" else named_stops).add(value)
                elif key in ("line_ids", "stop_ids"):
                    (named_lines if key == "line_ids" else named_stops).update(value)
                elif key == "stop" and top:
                    continue  # the board's own stop, the subject of the answer
                else:
                    walk(value, False)

    data = by_ref["data"] if "data" in by_ref else by_ref["features"]
    walk(data, isinstance(data, dict))
    assert named_lines == set(references["lines"])
    # A vehicle may name a stop its timetable lacks: such ids have no reference.
    assert set(references["stops"]) <= named_stops
    if not path.startswith("/v1/vehicles"):
        assert set(references["stops"]) == named_stops
    for line_id, line in references["lines"].items():
        assert line["id"] == line_id and line["mode"] == "rail"
    for stop_id, stop in references["stops"].items():
        assert stop["id"] == stop_id and "lines" not in stop


async def test_a_busy_board_names_few_lines_for_many_departures(client):
    """San Francisco's next 24 h: dozens of departures, a handful of lines and platforms,
    each sent once; the raw body is smaller for it."""
    path = "/v1/stops/caltrain:san_francisco/departures?limit=100&duration=24h"
    whole = await client.get(path, headers={"Accept-Encoding": "identity"})
    by_ref = await client.get(with_references(path), headers={"Accept-Encoding": "identity"})
    answer = await by_ref.json()
    departures = answer["data"]["departures"]
    assert len(departures) > 40
    assert 1 < len(answer["references"]["lines"]) <= 6
    assert 1 <= len(answer["references"]["stops"]) <= 2  # the station's two platforms
    assert len(await by_ref.read()) < len(await whole.read())


async def test_without_include_the_answers_are_unchanged_and_etags_differ(client):
    """The default answers carry whole lines and stops and no references member; the two
    forms have different ETags, and each one's ETag gets its 304."""
    path = "/v1/stops/caltrain:lawrence/departures?limit=3"
    whole = await client.get(path)
    body = await whole.json()
    assert set(body) == {"data", "meta"}
    departure = body["data"]["departures"][0]
    assert departure["line"]["id"] == "caltrain:L1" and departure["stop"]["name"]
    assert "line_id" not in departure and "stop_id" not in departure
    by_ref = await client.get(with_references(path))
    assert whole.headers["ETag"] != by_ref.headers["ETag"]
    again = await client.get(
        with_references(path), headers={"If-None-Match": by_ref.headers["ETag"]}
    )
    assert again.status == 304


async def test_a_trip_by_reference(client):
    """A trip names its line and each call's stop by id; the referenced stops have the calls'
    coordinates."""
    answer = await get_json(client, "/v1/trips/caltrain:310?include=references")
    trip = answer["data"]
    assert trip["line_id"] == "caltrain:L3" and "line" not in trip
    stops = answer["references"]["stops"]
    assert len(trip["calls"]) == len(stops) == 20
    first = stops[trip["calls"][0]["stop_id"]]
    assert first["name"] == "San Francisco Caltrain Station"
    assert (first["lat"], first["lon"]) == (37.776348, -122.394935)


async def test_fields_keep_the_ids_an_app_joins_on(client):
    """fields= accepts line_id, and cuts items to it beside id."""
    answer = await get_json(client, "/v1/vehicles?include=references&fields=line_id")
    assert answer["data"] and all(set(v) == {"id", "line_id"} for v in answer["data"])
    assert {v["line_id"] for v in answer["data"]} <= set(answer["references"]["lines"])


async def test_a_bad_include_is_a_400_naming_it(client):
    for path in (
        "/v1/vehicles?include=lines",
        "/v1/trips/caltrain:310?include=",
        "/v1/stops?q=san&include=references",
    ):
        problem = await get_json(client, path, 400)
        assert problem["errors"][0]["parameter"] == "include", path


async def test_bart_alert_by_reference():
    """BART's real alert of 2019-08-07 names its agency only: by reference, its lists of
    lines and stops are empty id lists, references are empty, the rest is the same alert."""
    async with await _client((CONFIG_DIR / "bart-alert.yaml").read_text()) as bart:
        whole = await get_json(bart, "/v1/alerts?lang=en")
        by_ref = await get_json(bart, "/v1/alerts?lang=en&include=references")
    [alert] = whole["data"]
    assert alert["id"] == "bart:BSA_187874" and alert["agencies"] == ["BART"]
    assert alert["cause"] == "medical_emergency" and "Montgomery" in alert["header"]
    [referenced] = by_ref["data"]
    assert referenced["line_ids"] == [] and referenced["stop_ids"] == []
    assert by_ref["references"] == {"lines": {}, "stops": {}}
    assert resolved(referenced, by_ref["references"], {}) == alert


def test_the_reference_shows_a_real_alert_and_answers_by_reference():
    """docs/API.md (scripts/api_examples.py) shows an alert example with an alert in it, from
    a configuration shipped with the project, and the include=references examples."""
    import re
    import sys

    sys.path.insert(0, str(CONFIG_DIR.parent / "scripts"))
    from api_examples import OTHER_CONFIGS

    reference = (CONFIG_DIR.parent / "docs" / "API.md").read_text()
    sections = re.split(r"\n(?=### `)", reference.split("<!-- examples:start -->")[1])
    alerts = [s for s in sections if s.startswith("### `GET /v1/alerts`")]
    shown = [s for s in alerts if '"id": "bart:BSA_187874"' in s]
    assert shown and '"data": []' not in shown[0]
    assert all((CONFIG_DIR / name).is_file() for _m, _r, _p, name, _n in OTHER_CONFIGS)
    by_reference = [s for s in sections if "include=references" in s.split("```json")[0]]
    assert len(by_reference) == 2 and all('"references": {' in s for s in by_reference)

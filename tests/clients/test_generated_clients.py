"""Clients generated from the served /v1/openapi.json work: openapi-python-client's calls every
public GET route of a real demo server and gets typed answers; openapi-typescript's types
compile a small app (tests/clients/app.ts) with tsc, and every demo answer fits the document
read strictly (no member it does not declare)."""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
from fuzz.live import LiveServer, demo_data_dir

from . import tools

PACKAGE = "beffroi_demo_client"
#: GET routes a request/response client cannot call: the stream never ends, the admin API needs
#: the operator's token.
NOT_CALLED = {"/v1/stream": "a Server-Sent Events stream never ends"}
RIVE_DROITE = {"lat": 49.4485, "lon": 1.0946}  # Rouen, where the demo's bike stations are
FOURTH_AND_KING = {"lat": 37.7764, "lon": -122.3947}  # San Francisco's Caltrain station
#: Query arguments (as the generated functions name them) a route needs to answer 200.
ARGUMENTS: dict[str, dict[str, Any]] = {
    "/v1/stops": {"q": "San Francisco"},
    "/v1/stops.geojson": {"q": "San Francisco"},
    "/v1/departures": FOURTH_AND_KING,
    "/v1/home": FOURTH_AND_KING,
    "/v1/bikes/stations": RIVE_DROITE,
    "/v1/bikes/stations.geojson": RIVE_DROITE,
    "/v1/parkings": RIVE_DROITE,
    "/v1/parkings.geojson": RIVE_DROITE,
    "/v1/bikes/stations.csv": RIVE_DROITE,
    "/v1/parkings.csv": RIVE_DROITE,
    "/v1/waste/collections": {"lat": 44.8452, "lon": -0.5909},
}


#: The months the demo's Paris events (the ones with prices, images, ages, places) take place.
PARIS_2025 = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 12, 31, tzinfo=dt.UTC))
#: More answers the strict check reads: other shapes of the same routes.
MORE_QUERIES: dict[str, list[dict[str, Any]]] = {
    "/v1/events": [
        {"source": "paris-events", "from": PARIS_2025[0].isoformat(), "to": "2025-12-31"},
        {"sync": "start"},
    ],
    "/v1/stops/{stop_id}/departures": [
        {"group": "line_direction"},
        {"include": "references"},
        {"group": "line_direction", "include": "references"},
    ],
    "/v1/departures": [
        {**FOURTH_AND_KING, "at": "2023-11-08T03:00:00-08:00", "duration": 60},
        {**FOURTH_AND_KING, "include": "references"},
    ],
    "/v1/sources/{source_id}/records": [{"limit": 3}],
    "/v1/trips/{trip_id}": [{"include": "references"}],
    "/v1/vehicles": [{"include": "references"}],
    "/v1/vehicles.geojson": [{"include": "references"}],
    "/v1/alerts": [{"include": "references"}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(demo_data_dir(tmp_path_factory.mktemp("demo-data"))).start()
    yield live
    live.stop()


def get_json(server: LiveServer, path: str) -> Any:
    with urllib.request.urlopen(server.base_url + path, timeout=30) as answer:
        return orjson.loads(answer.read())


@pytest.fixture(scope="module")
def document(server: LiveServer) -> dict[str, Any]:
    """The document exactly as the server serves it."""
    return get_json(server, "/v1/openapi.json")


@pytest.fixture(scope="module")
def document_file(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "openapi.json"
    path.write_bytes(orjson.dumps(document))
    return path


@pytest.fixture(scope="module")
def python_client(document_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The package openapi-python-client generates, imported; its warnings fail the test."""
    command = tools.python_generator()
    out = tmp_path_factory.mktemp("python-client")
    target = out / PACKAGE
    done = tools.run(
        [
            *command,
            "generate",
            "--path",
            str(document_file),
            "--output-path",
            str(target),
            "--meta",
            "none",
        ],
        cwd=out,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    # A schema it cannot read is a warning, and the model or answer is left out of the client.
    assert not re.search(r"warning|unable|error", report, re.IGNORECASE), report
    sys.path.insert(0, str(out))
    try:
        package = importlib.import_module(PACKAGE)
        importlib.import_module(f"{PACKAGE}.models")
        yield package
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def demo_ids(server: LiveServer) -> dict[str, str]:
    """Real ids of the demo, for the path parameters."""
    stop = get_json(server, "/v1/stops?q=San%20Francisco&limit=1")["data"][0]["id"]
    board = get_json(server, f"/v1/stops/{urllib.parse.quote(stop)}/departures?limit=1")
    departure = board["data"]["departures"][0]
    return {
        "stop_id": stop,
        "line_id": departure["line"]["id"],
        "trip_id": departure["trip_id"],
        "event_id": get_json(server, "/v1/events?limit=1")["data"][0]["id"],
        "source_id": get_json(server, "/v1/sources")["data"][0]["id"],
        "place_id": get_json(server, "/v1/places?lat=46.3235&lon=-0.4588&limit=1")["data"][0]["id"],
        "item_id": get_json(server, "/v1/news?limit=1")["data"][0]["id"],
        "code": "invalid_parameter",
        "collection_id": "caltrain",
        "feature_id": stop,
    }


def public_gets(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, operations["get"])
        for path, operations in document["paths"].items()
        if "get" in operations and "security" not in operations["get"] and path not in NOT_CALLED
    ]


def strict(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` where an object with properties has no other member: an answer carrying a
    member the document does not declare (a meta field, a new property) fails to validate."""
    strict_document = copy.deepcopy(document)

    def tighten(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                tighten(value)
        elif isinstance(node, list):
            for value in node:
                tighten(value)

    tighten(strict_document["components"])
    tighten(strict_document["paths"])
    return strict_document


def test_every_public_route_answers_typed_models_through_the_python_client(
    python_client: Any, document: dict[str, Any], demo_ids: dict[str, str], server: LiveServer
) -> None:
    client = python_client.Client(base_url=server.base_url, raise_on_unexpected_status=True)
    models = python_client.models
    called = []
    for path, operation in public_gets(document):
        needed = [p["name"] for p in operation["parameters"] if p.get("required")]
        missing = [n for n in needed if n not in demo_ids and n not in ARGUMENTS.get(path, {})]
        assert not missing, f"{path}: add its required {missing} to ARGUMENTS (or demo_ids)"
        tag = re.sub(r"\W", "_", operation["tags"][0].lower())
        module = importlib.import_module(f"{PACKAGE}.api.{tag}.{operation['operationId']}")
        arguments = {n: demo_ids[n] for n in needed if n in demo_ids}
        response = module.sync_detailed(client=client, **arguments, **ARGUMENTS.get(path, {}))
        assert response.status_code == 200, (path, response.content[:300])
        parsed = response.parsed
        assert parsed is not None and not isinstance(parsed, models.Problem), path
        (media, content), *_ = operation["responses"]["200"]["content"].items()
        schema = content["schema"]
        if "json" not in media:
            assert isinstance(parsed, str) and parsed, path  # the status page, the metrics
        elif "data" in schema.get("properties", {}):
            assert isinstance(parsed.meta, models.Meta), path
            assert_typed(parsed.data, schema["properties"]["data"], models, path)
        else:
            assert_typed(parsed, schema, models, path)
        called.append(path)
    assert "/v1/lines/{line_id}.geojson" in called and "/v1/home" in called


def assert_typed(value: Any, schema: dict[str, Any], models: Any, path: str) -> None:
    """``value`` is the generated model ``schema`` names (each item, for an array of one)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        assert type(value).__name__ == name, (path, type(value), name)
    elif schema.get("type") == "array":
        assert isinstance(value, list), (path, type(value))
        for item in value:
            assert_typed(item, schema["items"], models, path)
    elif "oneOf" in schema or "anyOf" in schema:  # the one member the value is
        members = schema.get("oneOf") or schema["anyOf"]
        fits = []
        for member in members:
            try:
                assert_typed(value, member, models, path)
            except AssertionError:
                continue
            fits.append(member)
        assert fits, (path, type(value), members)
    else:
        assert type(value).__module__.startswith(f"{PACKAGE}.models"), (path, type(value))


def test_detail_answers_are_their_own_models(
    python_client: Any, demo_ids: dict[str, str], server: LiveServer
) -> None:
    """A line's and a stop's detail are read as LineDetail and StopDetail, not their summaries;
    a board's meta.now and a home's parts come out typed."""
    from importlib import import_module

    client = python_client.Client(base_url=server.base_url, raise_on_unexpected_status=True)
    transit = f"{PACKAGE}.api.transit"
    line = import_module(f"{transit}.get_v1_lines_line_id").sync(demo_ids["line_id"], client=client)
    assert type(line.data).__name__ == "LineDetail"
    assert line.data.directions and line.data.directions[0].stops[0].name
    assert line.data.agency.name == "Caltrain"
    stop = import_module(f"{transit}.get_v1_stops_stop_id").sync(demo_ids["stop_id"], client=client)
    assert type(stop.data).__name__ == "StopDetail"
    assert [p.id for p in stop.data.platforms]
    board = import_module(f"{transit}.get_v1_stops_stop_id_departures").sync(
        demo_ids["stop_id"], client=client, limit=3
    )
    assert board.meta.now.isoformat() == "2023-11-07T17:06:00-08:00"  # the demo's clock
    assert board.meta.realtime["caltrain"].available is True
    departure = board.data.departures[0]
    assert departure.status.value in {"on_time", "delayed", "early", "scheduled"}
    assert departure.line.mode.value == "rail"
    by_reference = import_module(f"{transit}.get_v1_stops_stop_id_departures").sync(
        demo_ids["stop_id"],
        client=client,
        limit=3,
        include=python_client.models.GetV1StopsStopIdDeparturesInclude.REFERENCES,
    )
    first = by_reference.data.departures[0]
    assert first.line_id == departure.line.id and first.stop_id == departure.stop.id
    assert type(by_reference.references).__name__ == "References"
    assert by_reference.references.lines[first.line_id].mode.value == "rail"
    assert by_reference.references.stops[first.stop_id].name == departure.stop.name
    home = import_module(f"{PACKAGE}.api.home.get_v1_home").sync(client=client, **FOURTH_AND_KING)
    assert type(home.data.departures.items[0]).__name__ == "NearbyBoard"
    assert len(home.meta.weekend) == 2
    events = import_module(f"{PACKAGE}.api.events.get_v1_events").sync(
        client=client, limit=50, source="paris-events", from_=PARIS_2025[0], to=PARIS_2025[1]
    )
    assert events.meta.total >= len(events.data) > 0
    priced = [e for e in events.data if e.price and e.price.text]
    assert priced and all(isinstance(e.price.text, str) for e in priced)


def test_every_demo_answer_fits_the_document_read_strictly(
    document: dict[str, Any], demo_ids: dict[str, str], server: LiveServer
) -> None:
    """No answer carries a member its schema does not declare (meta included): what the
    server emits is what a generated client is told about."""
    strict_document = strict(document)
    for path, operation in public_gets(strict_document):
        (media, content), *_ = operation["responses"]["200"]["content"].items()
        if "json" not in media:
            continue
        concrete = path
        for name, value in demo_ids.items():
            concrete = concrete.replace("{" + name + "}", urllib.parse.quote(value, safe=":"))
        validator = jsonschema_rs.validator_for(
            {**content["schema"], "components": strict_document["components"]}
        )
        for arguments in [ARGUMENTS.get(path, {}), *MORE_QUERIES.get(path, [])]:
            query = urllib.parse.urlencode(arguments)
            body = get_json(server, concrete + (f"?{query}" if query else ""))
            errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
            assert not errors, (path, arguments, errors[:5])


def test_geojson_is_its_own_operation_and_the_format_parameter_still_answers_it(
    server: LiveServer, demo_ids: dict[str, str], document: dict[str, Any]
) -> None:
    line = urllib.parse.quote(demo_ids["line_id"], safe=":")
    shape = get_json(server, f"/v1/lines/{line}.geojson")
    legacy = get_json(server, f"/v1/lines/{line}?format=geojson")
    assert shape["type"] == "FeatureCollection" and shape["features"]
    assert {k: v for k, v in shape.items() if k != "meta"} == {
        k: v for k, v in legacy.items() if k != "meta"
    }
    detail = get_json(server, f"/v1/lines/{line}")
    assert detail["data"]["directions"]
    for path in ("/v1/stops", "/v1/vehicles", "/v1/bikes/stations", "/v1/parkings"):
        json_route = document["paths"][path]["get"]
        assert list(json_route["responses"]["200"]["content"]) == ["application/json"]
        geo = document["paths"][path + ".geojson"]["get"]
        assert list(geo["responses"]["200"]["content"]) == ["application/geo+json"]
        assert "format" not in {p["name"] for p in geo["parameters"]}
    query = urllib.parse.urlencode({**ARGUMENTS["/v1/stops"], "format": "json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{server.base_url}/v1/stops.geojson?{query}", timeout=30)
    assert refused.value.code == 400  # the GeoJSON route has no format to choose


def test_the_typescript_types_compile_an_app(document_file: Path, tmp_path: Path) -> None:
    """openapi-typescript's types of the document type-check tests/clients/app.ts, whose
    @ts-expect-error lines prove the types are precise (not any, unknown or empty records)."""
    bin_dir = tools.npm_tools()
    generated = tools.run(
        [str(bin_dir / "openapi-typescript"), str(document_file), "-o", str(tmp_path / "api.ts")],
        cwd=tmp_path,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    types = (tmp_path / "api.ts").read_text()
    untyped = [
        line.strip()
        for line in types.splitlines()
        if "Record<string, never>" in line or "unknown[]" in line
    ]
    # openapi-typescript's own placeholders for sections the document leaves out.
    assert untyped == [
        "export type webhooks = Record<string, never>;",
        "export type $defs = Record<string, never>;",
    ], untyped
    shutil.copy(tools.HERE / "app.ts", tmp_path / "app.ts")
    (tmp_path / "tsconfig.json").write_bytes(
        orjson.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "target": "ES2022",
                    "module": "ESNext",
                    "moduleResolution": "bundler",
                    "lib": ["ES2022"],
                    "types": [],
                },
                "files": ["app.ts"],
            }
        )
    )
    checked = tools.run([str(bin_dir / "tsc"), "-p", str(tmp_path / "tsconfig.json")], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

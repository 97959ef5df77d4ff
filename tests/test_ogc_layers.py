"""The OGC collections as connector types offer them (``Connector.feature_kind``): a type
the core has never heard of serves its own collection, and the event layers, made from the
combined event index, do not keep an index alive once the live data has replaced it."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geojson
import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient, TestServer
from fuzz.live import loaded_runtime
from support import CONNECTOR_TYPES

from aggregator.api.app import create_app
from aggregator.api.features_layers import (
    Context,
    FeatureKind,
    Layer,
    feature_kinds,
    indexed_layer,
    record_layer,
    selected,
)
from aggregator.api.schemas import obj
from aggregator.config import parse_config
from aggregator.live import freeze_heap
from aggregator.model import Snapshot
from aggregator.registry import config_models
from aggregator.runtime import Runtime
from connectors.events.api import INDEX_NAME as EVENT_INDEX
from connectors.records import JsonRecordsConnector

#: The demo's real data (config/demo-data: Lovélo, Rouen, GBFS station_information).
DEMO_DATA = Path(__file__).parents[1] / "config" / "demo-data"

#: What a third-party package might declare: docks, with a name and a capacity.
DOCK = obj(
    {
        "id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "capacity": {"type": ["integer", "null"]},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
    },
    ["id", "lat", "lon"],
    title="Dock",
)


def _docks(snapshot: Snapshot) -> list[dict[str, Any]]:
    return [r for r in snapshot.data if r.get("lat") is not None and r.get("lon") is not None]


def _dock_layer(_source_id: str, docks: list[dict[str, Any]]) -> Layer:
    return record_layer(docks, lambda dock, _ctx: selected(dock, DOCK))


DOCKS = FeatureKind("docks", "Docks", DOCK, indexed_layer("docks", _docks, _dock_layer))


class DocksConnector(JsonRecordsConnector):
    """A connector type from outside this repository's connectors: mapped records that it
    offers as an OGC collection of its own kind."""

    type_name = "docks"

    @classmethod
    def feature_kind(cls) -> FeatureKind:
        return DOCKS


async def test_a_connector_type_unknown_to_the_core_serves_its_collection(tmp_path: Path):
    shutil.copy(DEMO_DATA / "lovelo-station-information.json", tmp_path)
    types = {**CONNECTOR_TYPES, "docks": DocksConnector}
    config = parse_config(
        textwrap.dedent(
            """
            connectors:
              - id: lovelo-docks
                type: docks
                url: file:lovelo-station-information.json
                records_path: data.stations
                id_field: station_id
                fields:
                  name: name
                  lat: {path: lat, type: float, required: true}
                  lon: {path: lon, type: float, required: true}
                  capacity: {path: capacity, type: int}
            defaults:
              allow_file_urls: true
            """
        ),
        filename="test.yaml",
        connector_types=config_models(types),
        environ={},
        base_dir=tmp_path,
    )
    runtime = Runtime(config, types)
    assert (await runtime.poll_once("lovelo-docks")).outcome == "changed"
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        listed = await (await client.get("/ogc/collections")).json()
        assert [(c["id"], c["kind"]) for c in listed["collections"]] == [("lovelo-docks", "docks")]
        answer = await client.get("/ogc/collections/lovelo-docks/items?limit=100")
        assert answer.status == 200, await answer.text()
        page = geojson.loads(await answer.text())
        assert page.is_valid, page.errors()
        records = runtime.live.snapshot("lovelo-docks").data
        assert page["numberMatched"] == len(records) > 0
        first = min(records, key=lambda r: r["id"])
        feature = page["features"][0]
        assert feature["id"] == first["id"]
        # Served to the micrometre (six decimals), as every /ogc coordinate.
        assert feature["geometry"]["coordinates"] == pytest.approx(
            [first["lon"], first["lat"]], abs=1e-6
        )
        assert feature["properties"] == {
            "id": first["id"],
            "name": first["name"],
            "capacity": first["capacity"],
        }
        spec = await (await client.get("/v1/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert "docks" in schemas["OgcCollection"]["properties"]["kind"]["enum"]
    assert sorted(schemas["OgcDocksProperties"]["properties"]) == ["capacity", "id", "name"]


def test_two_kinds_of_one_name_are_refused():
    other = dataclasses.replace(DOCKS, title="Other docks")

    class OtherDocks(DocksConnector):
        @classmethod
        def feature_kind(cls) -> FeatureKind:
            return other

    assert [k.name for k in feature_kinds([DocksConnector, DocksConnector])] == ["docks"]
    try:
        feature_kinds([DocksConnector, OtherDocks])
    except ValueError as error:
        assert "docks" in str(error)
    else:
        raise AssertionError("two kinds named docks were accepted")


async def test_an_event_layer_does_not_outlive_the_index_it_was_made_from(tmp_path: Path):
    """Each new version of an event source makes a new combined index; a layer served from
    each must not pin the replaced ones (their records, arrays and search structures)."""
    from fuzz.live import demo_data_dir

    runtime = await loaded_runtime(demo_data_dir(tmp_path))
    kind = runtime.connector_types["opendatasoft"].feature_kind()
    assert kind is not None
    ctx = Context(runtime, "en", datetime(2019, 6, 1, tzinfo=UTC))
    seen: list[weakref.ref[Any]] = []
    for _ in range(5):
        snapshot = runtime.live.snapshot("paris-events")
        assert snapshot is not None
        runtime.live.adopt(dataclasses.replace(snapshot, version=snapshot.version + 1))
        await runtime.live.settled()
        index = runtime.live.combined(EVENT_INDEX)
        assert not any(ref() is index for ref in seen)  # a new index each time
        layer = kind.layer(runtime, "paris-events")
        assert layer is not None and len(layer) > 0
        assert layer.properties(0, ctx)["source"] == "paris-events"  # served, as a request does
        seen.append(weakref.ref(index))
    del index, layer, snapshot
    freeze_heap(sweep=True)  # the server's own full collection
    alive = [ref for ref in seen if ref() is not None]
    assert alive == [seen[-1]], f"{len(alive)} of {len(seen)} event indexes still alive"
    assert seen[-1]() is runtime.live.combined(EVENT_INDEX)


async def test_without_a_type_offering_a_kind_there_are_no_collections_and_a_valid_document():
    """A build whose only type offers no collection: /ogc lists none, and the document's OGC
    schemas are still valid JSON Schema (an empty anyOf is not)."""
    types = {"json_records": JsonRecordsConnector}
    config = parse_config(
        "connectors: []\n", filename="test.yaml", connector_types=config_models(types), environ={}
    )
    async with TestClient(TestServer(create_app(Runtime(config, types), poll=False))) as client:
        listed = await (await client.get("/ogc/collections")).json()
        assert listed["collections"] == []
        spec = await (await client.get("/v1/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for name in ("OgcCollection", "OgcFeature", "OgcFeatureAnswer"):
        jsonschema_rs.meta.validate(schemas[name])
    assert schemas["OgcFeature"]["properties"]["properties"]["type"] == "object"
    assert not any(name.endswith("Properties") and name.startswith("Ogc") for name in schemas)

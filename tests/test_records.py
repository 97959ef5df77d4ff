"""The json_records and csv_records connectors' pure parse step, on real and broken data."""

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.clock import Clock
from aggregator.connector import ConnectorContext
from aggregator.redact import Redactor
from connectors.records import (
    CsvRecordsConfig,
    CsvRecordsConnector,
    FeedError,
    JsonRecordsConfig,
    JsonRecordsConnector,
)

DEMO_STATIONS = (
    Path(__file__).parents[1] / "config" / "demo-data" / "lovelo-station-information.json"
)
CONTEXT = ConnectorContext(
    timezone=ZoneInfo("Europe/Paris"),
    languages=("fr", "en"),
    base_dir=None,
    allow_file_urls=True,
    redactor=Redactor(),
    clock=Clock(),
)


def json_connector(**overrides):
    config = {
        "id": "stations",
        "type": "json_records",
        "url": "https://example.org/stations.json",
        "records_path": "data.stations",
        "id_field": "station_id",
        "fields": {
            "name": "name",
            "lat": {"path": "lat", "type": "float", "required": True},
            "capacity": {"path": "capacity", "type": "int"},
        },
    } | overrides
    return JsonRecordsConnector(JsonRecordsConfig.model_validate(config), CONTEXT)


def csv_connector(**overrides):
    config = {
        "id": "parkings",
        "type": "csv_records",
        "url": "https://example.org/parkings.csv",
        "id_field": "code",
        "fields": {"name": "libelle", "free": {"path": "places", "type": "int"}},
    } | overrides
    return CsvRecordsConnector(CsvRecordsConfig.model_validate(config), CONTEXT)


def test_real_gbfs_station_list_maps_every_station():
    """Lovélo's real station_information maps to 122 records with namespaced ids."""
    result = json_connector().parse(DEMO_STATIONS.read_bytes())
    assert result.record_count == 122
    assert result.issues == ()
    first = result.data[0]
    assert first == {
        "id": "stations:5288",
        "name": "131 - CALENDE",
        "lat": 49.43954661258192,
        "capacity": 10,
    }


def test_bad_rows_are_reported_and_skipped_the_rest_kept():
    """Rows without id, duplicated, or missing a required field are skipped with a reason."""
    body = (
        b'{"data": {"stations": ['
        b'{"station_id": "1", "name": "A", "lat": 50.1},'
        b'{"name": "no id", "lat": 50.2},'
        b'{"station_id": "1", "name": "dup", "lat": 50.3},'
        b'{"station_id": "3", "name": "no lat"},'
        b'{"station_id": "4", "name": "D", "lat": "50.4", "capacity": "many"}'
        b"]}}"
    )
    result = json_connector().parse(body)
    assert [r["id"] for r in result.data] == ["stations:1", "stations:4"]
    assert result.issue_count == 4
    assert "record 2: id field 'station_id' is missing" in result.issues
    assert "record 3: duplicate id '1', first one kept" in result.issues
    assert any("record 4 (id '3'): required field 'lat' is missing" in i for i in result.issues)
    assert any("record 5 (id '4'): field 'capacity'" in i for i in result.issues)
    assert result.data[1]["capacity"] is None


def test_not_json_is_a_feed_error():
    """A body that is not JSON fails the whole parse with a plain message."""
    with pytest.raises(FeedError, match="not JSON"):
        json_connector().parse(b"<html>maintenance</html>")


def test_records_path_must_lead_to_a_list():
    """A records_path that does not point at a list names the path in the error."""
    with pytest.raises(FeedError, match=r"no list of records at 'data\.stations'"):
        json_connector().parse(b'{"data": {}}')


def test_csv_with_semicolons_and_bom():
    """A French-style CSV export (BOM, ';' separator) is read with its header row."""
    body = "\ufeffcode;libelle;places\r\nP1;Gare Lille-Flandres;120\r\nP2;Euralille;\r\n"
    result = csv_connector().parse(body.encode("utf-8"))
    assert result.data == [
        {"id": "parkings:P1", "name": "Gare Lille-Flandres", "free": 120},
        {"id": "parkings:P2", "name": "Euralille", "free": None},
    ]


def test_csv_in_windows_1252_is_read_and_flagged():
    """A CSV that is not UTF-8 is decoded as Windows-1252 and the issue is reported."""
    body = "code,libelle,places\nP1,Théâtre Sébastopol,8\n".encode("cp1252")
    result = csv_connector().parse(body)
    assert result.data[0]["name"] == "Théâtre Sébastopol"
    assert result.issues[0].startswith("the body is not valid UTF-8")


def test_csv_without_the_id_column_is_a_feed_error():
    """A CSV lacking the configured id column lists the columns it has."""
    with pytest.raises(FeedError, match=r"no column 'code' \(columns: id, libelle\)"):
        csv_connector().parse(b"id,libelle\n1,x\n")


def test_id_field_cannot_be_mapped_over():
    """Mapping an output field called 'id' is refused at validation time."""
    with pytest.raises(ValueError, match="'id' is reserved"):
        json_connector(fields={"id": "station_id"})

"""``json_records`` and ``csv_records``: a document of records mapped to ours by YAML alone.

Open-data portals export datasets as JSON or CSV; an operator points a source at the
export, says where the records are and which field is the id, and maps the fields::

    - id: lovelo-stations
      type: json_records
      url: https://example.org/station_information.json
      records_path: data.stations
      id_field: station_id
      fields:
        name: name
        lat: {path: lat, type: float}
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from pydantic import Field, field_validator

from aggregator.config.models import UrlConnectorConfig
from aggregator.config.types import ByteSize
from aggregator.connector import UrlConnector
from aggregator.mapping import FieldSpec, RecordMapping, compile_path, lookup, map_rows
from aggregator.model import ParseResult
from connectors.linecap import DEFAULT_MAX_LINE_BYTES, long_lines


class FeedError(ValueError):
    """The payload as a whole cannot be used (not JSON, no records where configured, ...)."""


class _RecordsConfig(UrlConnectorConfig):
    id_field: str
    fields: dict[str, str | FieldSpec] = Field(default_factory=dict)

    @field_validator("id_field")
    @classmethod
    def _id_path_compiles(cls, value: str) -> str:
        compile_path(value)
        return value

    @field_validator("fields")
    @classmethod
    def _field_paths_compile(cls, value: dict[str, str | FieldSpec]) -> dict[str, str | FieldSpec]:
        for name, spec in value.items():
            if name == "id":
                raise ValueError("'id' is reserved: it is built from the source id and id_field")
            if isinstance(spec, str):
                compile_path(spec)
        return value


class JsonRecordsConfig(_RecordsConfig):
    records_path: str | None = None

    @field_validator("records_path")
    @classmethod
    def _records_path_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_path(value)
        return value


class CsvRecordsConfig(_RecordsConfig):
    delimiter: str | None = None
    encoding: str = "auto"
    #: A longer line refuses the body: the csv module would build a row of all its fields.
    max_line_bytes: ByteSize = Field(default=DEFAULT_MAX_LINE_BYTES, ge=1024)

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("the delimiter must be a single character, e.g. ';'")
        return value


def map_records(
    source_id: str, rows: Iterable[Any], id_field: str, mapping: RecordMapping
) -> ParseResult:
    """Map each input row; a bad row is reported and skipped, the others are kept."""
    mapped = map_rows(source_id, rows, id_field, mapping.apply)
    return ParseResult(
        data=mapped.records,
        record_count=len(mapped.records),
        issues=tuple(mapped.issues),
        issue_total=mapped.issue_total,
        stats={
            "rows": mapped.row_total,
            "records": len(mapped.records),
            "issues": mapped.issue_total,
        },
    )


class JsonRecordsConnector(UrlConnector[JsonRecordsConfig]):
    """Records from a JSON document: a list, or a list found at ``records_path``."""

    type_name = "json_records"
    config_model = JsonRecordsConfig

    def parse(self, payload: bytes) -> ParseResult:
        rows = json_rows(payload, self.config.records_path)
        return map_records(
            self.config.id, rows, self.config.id_field, RecordMapping(self.config.fields)
        )


class CsvRecordsConnector(UrlConnector[CsvRecordsConfig]):
    """Records from a CSV export: one row per record, columns named by the header row."""

    type_name = "csv_records"
    config_model = CsvRecordsConfig

    def parse(self, payload: bytes) -> ParseResult:
        config = self.config
        reader, decode_issue = csv_rows(
            payload,
            id_field=config.id_field,
            delimiter=config.delimiter,
            encoding=config.encoding,
            max_line_bytes=config.max_line_bytes,
        )
        try:
            result = map_records(
                self.config.id, reader, self.config.id_field, RecordMapping(self.config.fields)
            )
        except csv.Error as exc:  # e.g. a quoted field running on past the field size limit
            raise FeedError(f"the CSV cannot be read at line {reader.line_num}: {exc}") from None
        if decode_issue:
            return ParseResult(
                data=result.data,
                record_count=result.record_count,
                issues=(decode_issue, *result.issues),
                issue_total=result.issue_count + 1,
                stats=result.stats,
            )
        return result


def json_rows(payload: bytes, records_path: str | None) -> list[Any]:
    """The list of records of a JSON document: the document itself, or the list at
    ``records_path`` (``features`` of GeoJSON, ``records`` / ``results`` of Opendatasoft)."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise FeedError(f"the body is not JSON ({exc})") from None
    rows = lookup(document, compile_path(records_path)) if records_path else document
    if not isinstance(rows, list):
        where = f"at {records_path!r}" if records_path else "at the top level"
        raise FeedError(f"no list of records {where} of the JSON document")
    return rows


def csv_rows(
    payload: bytes, *, id_field: str, delimiter: str | None, encoding: str, max_line_bytes: int
) -> tuple[csv.DictReader, str | None]:
    """A reader over a CSV export's rows (checked: line lengths, header, id column), and the
    decoding issue to report, if any."""
    cap = max_line_bytes
    if too_long := long_lines(payload, cap):
        raise FeedError(
            f"line {too_long[0].number} of the CSV is longer than {cap} bytes "
            "(max_line_bytes); raise max_line_bytes if the export really has lines that long"
        )
    text, decode_issue = _decode(payload, encoding)
    if not text.strip():
        raise FeedError("the CSV body is empty")
    delimiter = delimiter or _sniff_delimiter(text)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise FeedError("the CSV has no header row")
    if id_field not in reader.fieldnames:
        raise FeedError(
            f"the CSV has no column {id_field!r} (columns: {', '.join(reader.fieldnames[:20])})"
        )
    return reader, decode_issue


def _decode(payload: bytes, encoding: str) -> tuple[str, str | None]:
    """Text of the payload; French exports are often Windows-1252 despite claiming UTF-8."""
    if encoding != "auto":
        try:
            return payload.decode(encoding), None
        except (UnicodeDecodeError, LookupError) as exc:
            raise FeedError(f"the body cannot be decoded as {encoding}: {exc}") from None
    try:
        return payload.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace"), (
            "the body is not valid UTF-8; read as Windows-1252 (set 'encoding' to silence this)"
        )


def _sniff_delimiter(text: str) -> str:
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    counts: Mapping[str, int] = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","

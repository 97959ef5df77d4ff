"""Property tests: config value types, field mappings and every feed parser on garbled input
raise their documented error types (or report issues), never a stray IndexError/KeyError."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from google.transit import gtfs_realtime_pb2 as pb
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from aggregator.clock import Clock
from aggregator.config.types import parse_byte_size, parse_duration, parse_schedule
from aggregator.connector import ConnectorContext
from aggregator.mapping import (
    FieldSpec,
    MappingProblem,
    NothingMapped,
    RecordMapping,
    compile_path,
    lookup,
)
from aggregator.model import ParseResult
from aggregator.redact import Redactor
from connectors.events.ics import IcsConfig, IcsConnector
from connectors.gtfs.compile import compile_feed
from connectors.gtfs.errors import GtfsError
from connectors.gtfs.timetable import Timetable
from connectors.gtfs_rt.decode import FeedDecodeError, decode_feed, read_header
from connectors.records import (
    CsvRecordsConfig,
    CsvRecordsConnector,
    FeedError,
    JsonRecordsConfig,
    JsonRecordsConnector,
)

PROPS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
FEW = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
CONTEXT = ConnectorContext(
    timezone=ZoneInfo("Europe/Paris"),
    languages=("fr", "en"),
    base_dir=None,
    allow_file_urls=True,
    redactor=Redactor(),
    clock=Clock(fixed=datetime.fromisoformat("2026-01-01T00:00:00+01:00")),
)

# --------------------------------------------------------------------------- config types

DURATION_TEXT = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A[0-9]{0,6}(\.[0-9]{0,3})?(ms|s|m|h|d|x)?([0-9]{1,3}(ms|s|m|h|d))*\Z"),
    st.from_regex(r"\A[0-9]{300,330}(s|d|KB|GiB)?\Z"),
)
YAML_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    DURATION_TEXT,
    st.lists(st.integers(), max_size=2),
)


def _parsed_or_refused(parser: Any, value: object) -> Any:
    try:
        return parser(value)
    except PydanticCustomError:
        return None


@PROPS
@given(YAML_SCALARS)
def test_durations_parse_to_positive_seconds_or_a_readable_error(value: object) -> None:
    """parse_duration gives positive finite seconds or a PydanticCustomError, nothing else."""
    seconds = _parsed_or_refused(parse_duration, value)
    assert seconds is None or 0 < seconds < float("inf")


@PROPS
@given(YAML_SCALARS)
def test_byte_sizes_parse_to_positive_ints_or_a_readable_error(value: object) -> None:
    """parse_byte_size gives an int >= 1 or a PydanticCustomError, nothing else."""
    size = _parsed_or_refused(parse_byte_size, value)
    assert size is None or (isinstance(size, int) and size >= 1)


CRON_FIELD = st.one_of(
    st.sampled_from(["*", "*/5", "0", "59", "60", "1-0", "*/0", "mon", "jan", "L", "?", "", "-"]),
    st.from_regex(r"\A[0-9*/,\-a-z]{1,6}\Z"),
)


@PROPS
@given(st.one_of(YAML_SCALARS, st.lists(CRON_FIELD, min_size=5, max_size=5).map(" ".join)))
def test_schedules_parse_or_raise_a_readable_error(value: object) -> None:
    """parse_schedule accepts a duration or a 5-field crontab, or raises PydanticCustomError."""
    _parsed_or_refused(parse_schedule, value)


@pytest.mark.parametrize("parser", [parse_duration, parse_byte_size, parse_schedule])
def test_huge_yaml_integer_is_a_readable_error(parser: Any) -> None:
    """A 400-digit integer (YAML reads it as int) is refused with PydanticCustomError."""
    with pytest.raises(PydanticCustomError):
        parser(10**400)


# --------------------------------------------------------------------------- mapping paths

PATH_ALPHABET = st.sampled_from(list("ab.[]0123 _-é\\\"'*"))
PATHS = st.one_of(
    st.text(PATH_ALPHABET, max_size=20),
    st.text(max_size=20),
    st.lists(
        st.one_of(st.from_regex(r"\A[a-z_][a-z0-9_]{0,5}\Z"), st.integers(0, 30)),
        min_size=1,
        max_size=6,
    ).map(
        lambda steps: "".join(
            f"[{s}]" if isinstance(s, int) else (s if i == 0 else f".{s}")
            for i, s in enumerate(steps)
        )
    ),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "0", "é", ""]), children, max_size=4)
    ),
    max_leaves=20,
)


@PROPS
@given(PATHS, JSON_VALUES)
def test_path_compiles_or_raises_value_error_and_lookup_never_raises(
    path: str, record: Any
) -> None:
    """compile_path raises only ValueError; a compiled path looks up any JSON without raising."""
    try:
        steps = compile_path(path)
    except ValueError:
        return
    assert steps and all(isinstance(s, str | int) for s in steps)
    lookup(record, steps)


@PROPS
@given(
    st.lists(
        st.one_of(st.from_regex(r"\A[a-z][a-z0-9_]{0,5}\Z"), st.integers(0, 30)),
        min_size=1,
        max_size=6,
    ).filter(lambda steps: isinstance(steps[0], str))
)
def test_written_paths_round_trip_to_their_steps(steps: list[str | int]) -> None:
    """A path written from steps compiles back to exactly those steps."""
    text = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps).lstrip(".")
    assert compile_path(text) == tuple(steps)


FIELD_TYPES = st.sampled_from([None, "str", "int", "float", "bool", "datetime", "json"])


@PROPS
@given(
    st.dictionaries(
        st.from_regex(r"\A[a-z]{1,6}\Z"),
        st.tuples(st.sampled_from(["a", "b", "a.b", "a[0]", "b[1].a"]), FIELD_TYPES, st.booleans()),
        max_size=4,
    ),
    JSON_VALUES,
)
def test_mapping_applies_or_raises_mapping_problem(
    fields: dict[str, tuple[str, str | None, bool]], record: Any
) -> None:
    """RecordMapping.apply on any JSON value returns a record or raises MappingProblem."""
    mapping = RecordMapping(
        {
            name: FieldSpec(path=path, type=kind, required=required)  # type: ignore[arg-type]
            for name, (path, kind, required) in fields.items()
        }
    )
    try:
        out, problems = mapping.apply(record)
    except MappingProblem:
        return
    assert set(out) == set(fields) and all(isinstance(p, str) for p in problems)


# --------------------------------------------------------------------------- json/csv records


def json_connector() -> JsonRecordsConnector:
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
            "open": {"path": "flags[0]", "type": "bool"},
            "since": {"path": "since", "type": "datetime"},
        },
    }
    return JsonRecordsConnector(JsonRecordsConfig.model_validate(config), CONTEXT)


def csv_connector(delimiter: str | None = None) -> CsvRecordsConnector:
    config = {
        "id": "parkings",
        "type": "csv_records",
        "url": "https://example.org/parkings.csv",
        "id_field": "code",
        "delimiter": delimiter,
        "fields": {
            "name": "libelle",
            "free": {"path": "places", "type": "int"},
            "lat": {"path": "lat", "type": "float", "required": True},
        },
    }
    return CsvRecordsConnector(CsvRecordsConfig.model_validate(config), CONTEXT)


def _assert_issues_or_error(parse: Any, payload: bytes, errors: tuple[type, ...]) -> None:
    try:
        result = parse(payload)
    except errors:
        return
    assert isinstance(result, ParseResult)
    assert result.record_count == len(result.data)
    assert len(result.issues) <= 50 and result.issue_count >= len(result.issues)


STATION = st.fixed_dictionaries(
    {},
    optional={
        "station_id": JSON_VALUES,
        "name": JSON_VALUES,
        "lat": st.one_of(JSON_VALUES, st.text(max_size=8)),
        "capacity": JSON_VALUES,
        "flags": JSON_VALUES,
        "since": st.one_of(JSON_VALUES, st.just("2023-11-07T17:06:00+01:00")),
    },
)
JSON_DOCUMENTS = st.one_of(
    JSON_VALUES.map(orjson.dumps),
    st.lists(STATION, max_size=6).map(lambda s: orjson.dumps({"data": {"stations": s}})),
    st.binary(max_size=200),
)


def _garble(data: bytes, cuts: list[tuple[int, int]]) -> bytes:
    """``data`` with some bytes replaced (position, new byte) and maybe cut short."""
    buffer = bytearray(data)
    for position, value in cuts:
        if buffer:
            buffer[position % len(buffer)] = value
    return bytes(buffer)


MUTATIONS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6)


@PROPS
@given(JSON_DOCUMENTS, MUTATIONS, st.integers(0, 400))
def test_json_records_parse_any_bytes_to_records_or_feed_error(
    document: bytes, mutations: list[tuple[int, int]], keep: int
) -> None:
    """json_records on any (garbled, truncated) body: records with issues, FeedError, or
    NothingMapped (rows of which not one maps: a failed poll that keeps the last good data)."""
    payload = _garble(document, mutations)[: max(keep, len(document) // 2)]
    _assert_issues_or_error(json_connector().parse, payload, (FeedError, NothingMapped))


CSV_CELL = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", '"', '""', "1,5", "48.85", "nan", "inf", "1e400", "-0", "\r", "\x00"]),
)


@PROPS
@given(
    st.lists(st.sampled_from(["code", "libelle", "places", "lat", "x", ""]), max_size=5),
    st.lists(st.lists(CSV_CELL, max_size=6), max_size=6),
    st.sampled_from([None, ",", ";", "\t", "|", '"']),
    st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
    MUTATIONS,
)
def test_csv_records_parse_any_table_to_records_or_feed_error(
    header: list[str],
    rows: list[list[str]],
    delimiter: str | None,
    encoding: str,
    mutations: list[tuple[int, int]],
) -> None:
    """csv_records on any table, encoding and delimiter: records with issues, or FeedError."""
    separator = delimiter or ","
    text = "\n".join(separator.join(row) for row in [header, *rows])
    payload = _garble(text.encode(encoding, errors="replace"), mutations)
    try:
        connector = csv_connector(delimiter)
    except ValueError:  # a quote as delimiter is refused by the config (or the csv module)
        return
    _assert_issues_or_error(connector.parse, payload, (FeedError, ValueError))


@PROPS
@given(st.binary(max_size=300))
def test_csv_records_parse_random_bytes_to_records_or_feed_error(payload: bytes) -> None:
    """csv_records on random bytes: records with issues, FeedError, or NothingMapped."""
    _assert_issues_or_error(csv_connector().parse, payload, (FeedError, NothingMapped))


# --------------------------------------------------------------------------- gtfs zips

GTFS_FILES = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
    "A,Agency,https://example.org,Europe/Paris\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    "S,Station,50.63,3.07,1,\n"
    "P1,Quai 1,50.6366,3.0703,0,S\n"
    "P2,Quai 2,50.64,3.08,,\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type,route_color\n"
    "R,A,1,Ligne 1,3,FF0000\n",
    "trips.txt": "route_id,service_id,trip_id,trip_headsign,direction_id\n"
    "R,WK,T1,Centre,0\nR,WK,T2,Gare,1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
    "T1,08:00:00,08:00:00,P1,1\nT1,08:10:00,08:11:00,P2,2\n"
    "T2,25:00:00,25:00:00,P2,1\nT2,25:10:00,25:10:00,P1,2\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
    "start_date,end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n",
    "calendar_dates.txt": "service_id,date,exception_type\nWK,20260501,2\nWK,20260502,1\n",
    "frequencies.txt": "trip_id,start_time,end_time,headway_secs\nT1,06:00:00,07:00:00,600\n",
}


def gtfs_zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


def _compiles_or_gtfs_error(payload: bytes) -> None:
    try:
        timetable = compile_feed(payload, max_uncompressed_bytes=1_000_000)
    except GtfsError:
        return
    assert isinstance(timetable, Timetable)


def test_the_unmutated_small_feed_compiles() -> None:
    """The seed feed of the mutation tests is itself a valid GTFS feed."""
    timetable = compile_feed(gtfs_zip({k: v.encode() for k, v in GTFS_FILES.items()}))
    assert len(timetable.trip_ids) == 2


GTFS_CELL = st.one_of(
    st.text(max_size=6),
    st.sampled_from(
        ["", "-1", "99:99:99", "24:00:00", "1e9", "nan", "20261301", "Mars/Olympus", "0", "3"]
    ),
)


@FEW
@given(
    st.dictionaries(
        st.sampled_from(sorted(GTFS_FILES)),
        st.lists(
            st.tuples(st.integers(0, 10), st.integers(0, 12), GTFS_CELL), min_size=1, max_size=4
        ),
        max_size=4,
    ),
    st.sets(st.sampled_from(sorted(GTFS_FILES)), max_size=2),
)
def test_gtfs_with_garbled_cells_compiles_or_raises_gtfs_error(
    edits: dict[str, list[tuple[int, int, str]]], dropped: set[str]
) -> None:
    """compile_feed on a feed with random cells, lines and files changed: GtfsError at worst."""
    files: dict[str, bytes] = {}
    for name, text in GTFS_FILES.items():
        if name in dropped:
            continue
        rows = [line.split(",") for line in text.splitlines()]
        for row_no, col_no, value in edits.get(name, []):
            row = rows[row_no % len(rows)]
            if col_no < len(row):
                row[col_no] = value
            else:
                row.append(value)
        files[name] = "\n".join(",".join(row) for row in rows).encode("utf-8", "replace")
    _compiles_or_gtfs_error(gtfs_zip(files))


SEED_ZIP = gtfs_zip({k: v.encode() for k, v in GTFS_FILES.items()})


@FEW
@given(MUTATIONS, st.integers(0, len(SEED_ZIP)))
def test_gtfs_zip_with_flipped_bytes_compiles_or_raises_gtfs_error(
    mutations: list[tuple[int, int]], keep: int
) -> None:
    """compile_feed on a zip with bytes flipped or cut short: GtfsError, never a zip/zlib error."""
    _compiles_or_gtfs_error(_garble(SEED_ZIP, mutations)[: max(keep, 22)])


@FEW
@given(st.binary(max_size=300))
def test_gtfs_random_bytes_raise_gtfs_error(payload: bytes) -> None:
    """compile_feed on random bytes raises GtfsError."""
    with pytest.raises(GtfsError):
        compile_feed(payload)


# --------------------------------------------------------------------------- gtfs-realtime


def _realtime_seed() -> bytes:
    message = pb.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.timestamp = 1699405534
    entity = message.entity.add(id="1")
    entity.trip_update.trip.trip_id = "310"
    update = entity.trip_update.stop_time_update.add(stop_sequence=3)
    update.arrival.delay = 203
    vehicle = message.entity.add(id="2").vehicle
    vehicle.position.latitude = 37.4
    vehicle.position.longitude = -122.1
    return message.SerializeToString()


RT_SEED = _realtime_seed()


@PROPS
@given(st.one_of(st.binary(max_size=300), MUTATIONS.map(lambda m: _garble(RT_SEED, m))))
@example(b"")
@example(b"<html>")
@example(RT_SEED[:-3])
def test_gtfs_rt_decode_any_bytes_or_feed_decode_error(payload: bytes) -> None:
    """decode_feed on random or garbled bytes: a FeedMessage with a header, or FeedDecodeError."""
    try:
        message = decode_feed(payload)
    except FeedDecodeError:
        return
    header = read_header(message)
    assert header.version


# --------------------------------------------------------------------------- ics

ICS_SEED = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//fuzz//EN",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Paris",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "UID:weekly@fuzz",
        "DTSTART;TZID=Europe/Paris:20260105T180000",
        "DTEND;TZID=Europe/Paris:20260105T200000",
        "RRULE:FREQ=WEEKLY;COUNT=10",
        "EXDATE;TZID=Europe/Paris:20260112T180000",
        "SUMMARY:Atelier",
        "DESCRIPTION:<p>Bienvenue</p>",
        "CATEGORIES:atelier,fablab",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:weekly@fuzz",
        "RECURRENCE-ID;TZID=Europe/Paris:20260119T180000",
        "DTSTART;TZID=Europe/Paris:20260120T180000",
        "DURATION:PT2H",
        "SUMMARY:Atelier déplacé",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:day@fuzz",
        "DTSTART;VALUE=DATE:20260201",
        "SUMMARY:Journée",
        "STATUS:CANCELLED",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)
ICS_LINES = ICS_SEED.split("\r\n")

ICS_JUNK = st.sampled_from(
    [
        "RRULE:FREQ=SECONDLY",
        "RRULE:FREQ=WEEKLY;UNTIL=20250101",
        "RRULE:FREQ=YEARLY;BYMONTH=13",
        "RRULE:GARBAGE",
        "DTSTART:99999999T999999",
        "DTSTART;TZID=Nowhere/Land:20260105T180000",
        "DTSTART;VALUE=DATE:2026",
        "DTEND:19000101T000000Z",
        "DURATION:P-1D",
        "DURATION:XYZ",
        "EXDATE:notadate",
        "RDATE;VALUE=PERIOD:20260101T000000Z/PT1H",
        "RECURRENCE-ID;RANGE=THISANDFUTURE:20260212T180000",  # in an event that has none
        "BEGIN:VEVENT",
        "END:VEVENT",
        "BEGIN:VTIMEZONE",
        "END:VCALENDAR",
        " folded continuation",
        "X-WR-TIMEZONE:Europe/Berlin",
        "GEO:abc;def",
        "UID:",
        ":",
        "",
    ]
)


def ics_connector() -> IcsConnector:
    config = {"id": "cal", "type": "ics", "url": "https://example.org/c.ics", "max_events": 50}
    return IcsConnector(IcsConfig.model_validate(config), CONTEXT)


def _ics_parses_or_value_error(payload: bytes) -> None:
    try:
        result = ics_connector().parse(payload)
    except ValueError:
        return
    assert isinstance(result, ParseResult)
    assert len(result.issues) <= 50


@FEW
@given(
    st.lists(
        st.tuples(st.integers(0, len(ICS_LINES)), st.sampled_from(["insert", "replace", "drop"])),
        max_size=5,
    ),
    st.lists(ICS_JUNK, min_size=5, max_size=5),
)
def test_ics_with_mutated_lines_parses_or_raises_value_error(
    edits: list[tuple[int, str]], junk: list[str]
) -> None:
    """The ics connector on a calendar with lines added, replaced or dropped: issues at worst."""
    lines = list(ICS_LINES)
    for (position, action), line in zip(edits, junk, strict=False):
        index = position % (len(lines) or 1)
        if action == "insert":
            lines.insert(index, line)
        elif action == "replace" and lines:
            lines[index] = line
        elif lines:
            del lines[index]
    # A repeated RECURRENCE-ID, UID or DTEND in one VEVENT is the known crash pinned by
    # test_event_with_a_repeated_property_is_an_issue_not_a_crash.
    # So is a calendar whose root is a bare VEVENT without DTSTART
    # (test_bare_event_without_dtstart_is_an_issue_not_a_crash).
    assume(not _repeats_single_property(lines) and lines[:1] == ["BEGIN:VCALENDAR"])
    _ics_parses_or_value_error("\r\n".join(lines).encode())


REPEATED_CRASHES = ("RECURRENCE-ID", "UID", "DTEND")


def _repeats_single_property(lines: list[str]) -> bool:
    seen: set[str] = set()
    for line in lines:
        if line.startswith("BEGIN:"):
            seen = set()
        name = line.split(":", 1)[0].split(";", 1)[0]
        if name in REPEATED_CRASHES:
            if name in seen:
                return True
            seen.add(name)
    return False


def calendar_with_repeated(line: bytes) -> bytes:
    """Two events; the first has ``line`` twice."""
    return b"\r\n".join(
        [
            b"BEGIN:VCALENDAR",
            b"VERSION:2.0",
            b"PRODID:-//fuzz//EN",
            b"BEGIN:VEVENT",
            b"UID:a@fuzz",
            b"DTSTART:20260120T180000",
            b"DTEND:20260120T190000",
            b"SUMMARY:broken",
            line,
            line,
            b"END:VEVENT",
            b"BEGIN:VEVENT",
            b"UID:b@fuzz",
            b"DTSTART:20260121T180000",
            b"SUMMARY:a good event",
            b"END:VEVENT",
            b"END:VCALENDAR",
            b"",
        ]
    )


@pytest.mark.parametrize(
    "line", [b"RECURRENCE-ID:20260119T180000", b"UID:again@fuzz", b"DTEND:20260120T200000"]
)
def test_event_with_a_repeated_property_is_an_issue_not_a_crash(line: bytes) -> None:
    """A VEVENT repeating a single-valued property is reported; the other events stay."""
    result = ics_connector().parse(calendar_with_repeated(line))
    assert any(r["uid"] == "b@fuzz" for r in result.data)


def test_bare_event_without_dtstart_is_an_issue_not_a_crash() -> None:
    """A lone VEVENT lacking DTSTART parses to no records and an issue, like in a VCALENDAR."""
    result = ics_connector().parse(b"BEGIN:VEVENT\r\nUID:x\r\nSUMMARY:no start\r\nEND:VEVENT\r\n")
    assert result.data == [] and result.issues


def _with_lines_inserted(inserts: list[tuple[int, str]]) -> bytes:
    lines = list(ICS_LINES)
    for index, line in inserts:
        lines.insert(index, line)
    return "\r\n".join(lines).encode()


def test_event_inside_a_vtimezone_is_read_on_its_own_and_the_rest_kept() -> None:
    """A VEVENT without DTSTART inside the VTIMEZONE (found by the line fuzzer: it sank the
    whole calendar with a KeyError): that event is dropped, the other events are kept."""
    good = ics_connector().parse(ICS_SEED.encode())
    broken = _with_lines_inserted([(4, "BEGIN:VEVENT"), (5, "END:VEVENT")])
    assert broken.decode().split("\r\n")[3:6] == ["BEGIN:VTIMEZONE", "BEGIN:VEVENT", "END:VEVENT"]
    result = ics_connector().parse(broken)
    assert result.record_count == good.record_count > 0
    assert any("inside a VTIMEZONE" in issue for issue in result.issues)


def test_recurring_event_without_dtstart_is_an_issue_not_a_crash() -> None:
    """An RRULE in an event that has no DTSTART (a VEVENT opened right after BEGIN:VCALENDAR,
    holding the VTIMEZONE and closed early; found by the line fuzzer): a TypeError before,
    issues or ValueError now."""
    inserts = [(24, "END:VEVENT"), (1, "RRULE:FREQ=SECONDLY"), (1, "BEGIN:VEVENT")]
    _ics_parses_or_value_error(_with_lines_inserted([*inserts, (25, "RRULE:FREQ=SECONDLY")]))


@FEW
@given(MUTATIONS, st.integers(0, len(ICS_SEED)))
def test_ics_with_flipped_bytes_parses_or_raises_value_error(
    mutations: list[tuple[int, int]], keep: int
) -> None:
    """The ics connector on a calendar with bytes flipped or cut short: issues or ValueError."""
    _ics_parses_or_value_error(_garble(ICS_SEED.encode(), mutations)[:keep])


@FEW
@given(st.binary(max_size=200))
def test_ics_random_bytes_parse_or_raise_value_error(payload: bytes) -> None:
    """The ics connector on random bytes: issues or ValueError."""
    _ics_parses_or_value_error(payload)

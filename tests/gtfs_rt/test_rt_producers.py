"""Realtime as real producers publish it: each test builds a message of the shape one sends.

Shapes (none of them is an error by the spec, or all are common in published feeds):

- a TripDescriptor without trip_id (route_id + direction_id + start_time + start_date only, as
  a large Nordic network publishes);
- a producer's own trip-id form (New York's subway: ``036050_2..S07R``, origin time in
  hundredths of a minute, then the tail of the static trip_id);
- a 24:35 run of Friday's service sent with Saturday's start_date;
- protobuf's JSON mapping instead of protobuf, and gzip bodies;
- a header timestamp of 0 or none at all, from a producer that may also freeze;
- a trip 7.4 hours late;
- a DUPLICATED trip without trip_properties.
"""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
from feeds import make_zip, simple_feed
from google.protobuf import json_format
from pydantic import ValidationError
from rtfeeds import PARIS, TD, message, stu, trip_update, ts
from rtfeeds import local as paris

from connectors.gtfs import Timetable, compile_feed
from connectors.gtfs_rt import realtime_departures, state_from_messages
from connectors.gtfs_rt.conventions import TripIdConventionConfig
from connectors.gtfs_rt.decode import FeedDecodeError, decode_body
from connectors.gtfs_rt.descriptors import MatchRules
from connectors.gtfs_rt.state import RealtimeFeed

FRIDAY = dt.date(2026, 6, 12)
SATURDAY = dt.date(2026, 6, 13)
MONDAY = dt.date(2026, 6, 15)


def _no_trip_id(route_id: str, start_time: str, start_date: str, *updates, direction=None):
    """A TripUpdate naming its trip by route, direction, start time and date only."""
    entity = trip_update("", *updates, start_date=start_date, start_time=start_time)
    entity.id = f"{route_id}-{start_time}"
    entity.trip_update.trip.route_id = route_id
    if direction is not None:
        entity.trip_update.trip.direction_id = direction
    return entity


@pytest.fixture(scope="module")
def directional():
    """Route R both ways, two runs leaving at 08:00 (one per direction), and a weekday-only
    and a Saturday-only run of route W at the same time (shared by no service day)."""
    feed = (
        simple_feed()
        .route("W")
        .weekly("WK", "20260101", "20261231", "1111100")
        .weekly("SA", "20260101", "20261231", "0000010")
        .trip("OUT", [("A", "08:00:00"), ("B", "08:10:00"), ("C", "08:20:00")], direction=0)
        .trip("BACK", [("C", "08:00:00"), ("B", "08:10:00"), ("A", "08:20:00")], direction=1)
        .trip("TWIN", [("C", "08:00:00"), ("A", "08:30:00")], direction=1)
        .trip("W-WK", [("A", "09:00:00"), ("B", "09:10:00")], route="W", service="WK")
        .trip("W-SA", [("A", "09:00:00"), ("B", "09:10:00")], route="W", service="SA")
        .trip("LATE", [("A", "24:35:00"), ("B", "24:50:00")], route="W", service="FRI")
        .weekly("FRI", "20260101", "20261231", "0000100")
    )
    return compile_feed(feed.to_zip())


def test_descriptor_without_trip_id_is_the_run_leaving_at_start_time(directional):
    """route R, direction 0, 08:00 on 10 June: the OUT run, delays applied."""
    state = state_from_messages(
        directional,
        [
            message(
                _no_trip_id("R", "08:00:00", "20260610", stu(2, "B", dep_delay=120), direction=0)
            )
        ],
    )
    (trip,) = state.trips.values()
    assert trip.trip_id == "OUT"
    assert trip.calls[1].expected_departure == ts(8, 12)
    assert state.counters.matched == 1
    assert state.counters.unmatched_descriptor == state.counters.ambiguous_descriptor == 0


def test_descriptor_service_day_picks_between_runs_of_other_days(directional):
    """Route W at 09:00 is W-WK on a weekday and W-SA on a Saturday: each date names one."""
    weekday = state_from_messages(
        directional, [message(_no_trip_id("W", "09:00:00", "20260610", stu(1, "A", dep_delay=60)))]
    )
    saturday = state_from_messages(
        directional, [message(_no_trip_id("W", "09:00:00", "20260613", stu(1, "A", dep_delay=60)))]
    )
    assert [t.trip_id for t in weekday.trips.values()] == ["W-WK"]
    assert [t.trip_id for t in saturday.trips.values()] == ["W-SA"]


def test_descriptor_matching_several_runs_is_ambiguous_and_counted(directional):
    """direction 1 at 08:00 fits BACK and TWIN: not guessed, counted with an example."""
    entity = _no_trip_id("R", "08:00:00", "20260610", stu(1, "C", dep_delay=60), direction=1)
    state = state_from_messages(directional, [message(entity)])
    c = state.counters
    assert not state.trips
    assert (c.matched, c.ambiguous_descriptor, c.unmatched_descriptor) == (0, 1, 0)
    assert c.descriptor_examples == ["entity R-08:00:00: 2 runs of route 'R' leave at 08:00:00"]
    assert c.match_ratio == 0.0


def test_descriptor_matching_no_run_is_unmatched_and_counted(directional):
    """07:00 on route R: no such run; an unknown route too."""
    state = state_from_messages(
        directional,
        [
            message(
                _no_trip_id("R", "07:00:00", "20260610", stu(1, "A", dep_delay=60)),
                _no_trip_id("NOPE", "08:00:00", "20260610", stu(1, "A", dep_delay=60)),
            )
        ],
    )
    c = state.counters
    assert (c.matched, c.unmatched_descriptor, c.bad_entities) == (0, 2, 0)
    assert "no run of route 'R' leaves at 07:00:00" in c.descriptor_examples[0]
    assert "unknown route_id 'NOPE'" in c.descriptor_examples[1]
    assert c.unmatched_total == 2


def test_late_start_date_is_read_as_the_previous_service_day(directional):
    """LATE runs on Fridays at 24:35 (00:35 Saturday); the producer dates it Saturday."""
    update = trip_update(
        "LATE", stu(1, "A", dep=ts(0, 37, day=SATURDAY)), start_date=SATURDAY.strftime("%Y%m%d")
    )
    state = state_from_messages(directional, [message(update, timestamp=ts(0, 36, day=SATURDAY))])
    (trip,) = state.trips.values()
    assert trip.service_date == FRIDAY
    assert trip.calls[0].departure_delay == 120
    assert state.counters.start_date_corrected == 1


def test_strict_start_date_keeps_the_letter_of_the_spec(directional):
    """With strict_start_date the Saturday-dated LATE is unmatched, as before."""
    update = trip_update(
        "LATE", stu(1, "A", dep=ts(0, 37, day=SATURDAY)), start_date=SATURDAY.strftime("%Y%m%d")
    )
    state = state_from_messages(
        directional,
        [message(update, timestamp=ts(0, 36, day=SATURDAY))],
        rules=MatchRules(strict_start_date=True),
    )
    assert not state.trips
    assert (state.counters.unmatched, state.counters.start_date_corrected) == (1, 0)


def test_late_start_date_whose_times_do_not_fit_is_not_corrected(directional):
    """Saturday-dated LATE with a time at noon fits Friday's 24:35 run nowhere: unmatched."""
    update = trip_update(
        "LATE", stu(1, "A", dep=ts(12, 0, day=SATURDAY)), start_date=SATURDAY.strftime("%Y%m%d")
    )
    state = state_from_messages(directional, [message(update, timestamp=ts(11, 0, day=SATURDAY))])
    assert not state.trips
    assert (state.counters.unmatched, state.counters.start_date_corrected) == (1, 0)


# --------------------------------------------------------------------- trip-id conventions
NYC = TripIdConventionConfig.model_validate(
    {
        "pattern": r"^(?P<origin>[0-9]{6})_(?P<path>.+)$",
        "groups": {
            "origin": {"origin_time": "centiminutes"},
            "path": {"column": "trip_id", "match": "suffix"},
        },
    }
)


@pytest.fixture(scope="module")
def subway():
    """Static trips as New York's subway names them: one per day type, same tail."""
    calls = [("A", "06:00:30"), ("B", "06:04:00"), ("C", "06:09:00")]
    feed = (
        simple_feed()
        .weekly("Weekday", "20260101", "20261231", "1111100")
        .weekly("Saturday", "20260101", "20261231", "0000010")
        .trip("AFA23GEN-2092-Weekday-00_036050_2..S07R", calls, service="Weekday")
        .trip("AFA23GEN-2092-Saturday-00_036050_2..S07R", calls, service="Saturday")
        .trip(
            "AFA23GEN-2092-Weekday-00_037000_2..S07R",
            [("A", "06:10:00"), ("B", "06:14:00")],
            service="Weekday",
        )
    )
    return compile_feed(feed.to_zip())


def _nyc_state(tt, rt_id: str, date: str, *updates):
    rules = MatchRules(convention=NYC.compile())
    entity = trip_update(rt_id, *updates, start_date=date)
    return state_from_messages(tt, [message(entity)], rules=rules)


def test_convention_reads_new_york_trip_ids(subway):
    """036050_2..S07R on a Wednesday is the Weekday trip leaving at 06:00:30."""
    state = _nyc_state(subway, "036050_2..S07R", "20260610", stu(2, "B", dep_delay=90))
    (trip,) = state.trips.values()
    assert trip.trip_id == "AFA23GEN-2092-Weekday-00_036050_2..S07R"
    assert trip.calls[1].expected_departure == ts(6, 5, 30)


def test_convention_uses_the_service_day_to_choose(subway):
    """The same realtime id on a Saturday is the Saturday trip."""
    state = _nyc_state(subway, "036050_2..S07R", "20260613", stu(1, "A", dep_delay=30))
    assert [t.trip_id for t in state.trips.values()] == ["AFA23GEN-2092-Saturday-00_036050_2..S07R"]


def test_convention_with_no_fitting_run_is_counted(subway):
    """A Sunday has no such run; an origin time nobody leaves at neither; an id of another
    shape does not fit the pattern."""
    c = _nyc_state(subway, "036050_2..S07R", "20260614", stu(1, "A", dep_delay=30)).counters
    assert (c.matched, c.unmatched_descriptor) == (0, 1)
    c = _nyc_state(subway, "036060_2..S07R", "20260610", stu(1, "A", dep_delay=30)).counters
    assert (c.matched, c.unmatched_descriptor) == (0, 1)
    c = _nyc_state(subway, "not-a-subway-id", "20260610", stu(1, "A", dep_delay=30)).counters
    assert c.unmatched_descriptor == 1
    assert "does not fit the source's trip_id_convention" in c.descriptor_examples[0]


def test_static_trip_ids_still_match_directly_with_a_convention(subway):
    """A producer sending the static id is matched as usual, the convention unused."""
    state = _nyc_state(
        subway, "AFA23GEN-2092-Weekday-00_037000_2..S07R", "20260610", stu(1, "A", dep_delay=60)
    )
    assert len(state.trips) == 1 and state.counters.unmatched_descriptor == 0


def _with_route_dir_column(feed) -> bytes:
    """The feed with an extra trips.txt column ``route_dir``: 2..S07R for every trip."""
    files = feed.files()
    lines = files["trips.txt"].splitlines()
    files["trips.txt"] = (
        "\n".join([lines[0] + ",route_dir", *(line + ",2..S07R" for line in lines[1:])]) + "\n"
    )
    return make_zip(files)


def test_convention_on_an_extra_trips_column_kept_by_the_feed(tmp_path):
    """A producer whose route/direction part sits in an extra trips.txt column: the gtfs
    source keeps it (keep_trip_columns), through a save and load of the compiled timetable."""
    feed = (
        simple_feed()
        .trip("X-0600", [("A", "06:00:00"), ("B", "06:05:00")])
        .trip("X-0610", [("A", "06:10:00"), ("B", "06:15:00")])
    )
    compiled = compile_feed(_with_route_dir_column(feed), keep_trip_columns=["route_dir"])
    compiled.save(tmp_path / "tt.npz")
    tt = Timetable.load(tmp_path / "tt.npz")
    assert tt.trip_extra == {"route_dir": ("2..S07R", "2..S07R")}
    convention = TripIdConventionConfig.model_validate(
        {
            "pattern": r"^(?P<origin>[0-9]{6})_(?P<path>.+)$",
            "groups": {
                "origin": {"origin_time": "centiminutes"},
                "path": {"column": "route_dir"},
            },
        }
    ).compile()
    entity = trip_update("037000_2..S07R", stu(1, "A", dep_delay=60))
    state = state_from_messages(tt, [message(entity)], rules=MatchRules(convention=convention))
    assert [t.trip_id for t in state.trips.values()] == ["X-0610"]
    # The same convention on a timetable that did not keep the column says what to do.
    plain = compile_feed(_with_route_dir_column(feed))
    state = state_from_messages(plain, [message(entity)], rules=MatchRules(convention=convention))
    assert state.counters.unmatched_descriptor == 1
    assert "list it in keep_trip_columns" in state.counters.descriptor_examples[0]


def test_a_kept_column_missing_from_trips_txt_is_a_load_warning():
    tt = compile_feed(
        simple_feed().trip("T", [("A", "06:00:00")]).to_zip(), keep_trip_columns=["x"]
    )
    assert tt.trip_extra == {"x": ("",)}
    assert any(i.code == "missing_column" and "x" in i.message for i in tt.issues)


@pytest.mark.parametrize(
    ("config", "message_part"),
    [
        ({"pattern": "(", "groups": {"a": {"column": "trip_id"}}}, "not a valid regular"),
        ({"pattern": "(?P<a>.+)", "groups": {"b": {"column": "trip_id"}}}, "no named group b"),
        ({"pattern": "(?P<a>.+)", "groups": {"a": {}}}, "either a `column` or"),
        ({"pattern": "(?P<a>.+)", "groups": {"a": {"column": ""}}}, "at least 1 character"),
        (
            {"pattern": "(?P<a>.+)", "groups": {"a": {"origin_time": "hours"}}},
            "origin_time",
        ),
    ],
)
def test_convention_config_errors_name_the_problem(config, message_part):
    with pytest.raises(ValidationError) as info:
        TripIdConventionConfig.model_validate(config)
    assert message_part in str(info.value)


# --------------------------------------------------------------------- body formats
def test_json_mapping_body_gives_the_same_state_as_protobuf(tt):
    """The protobuf JSON mapping (enum names as strings) is read by protobuf's own parser."""
    msg = message(
        trip_update("T1", stu(2, "B", dep_delay=120)),
        trip_update("T2", rel=TD.CANCELED),
    )
    text = json_format.MessageToJson(msg).encode()
    assert b'"CANCELED"' in text  # enum names, as the mapping writes them
    decoded, raw = decode_body(text, "auto")
    assert decoded == msg
    assert raw == msg.SerializeToString()
    from_json = state_from_messages(tt, [raw])
    from_pb = state_from_messages(tt, [msg.SerializeToString()])
    assert from_json.trips.keys() == from_pb.trips.keys()
    assert {t.relationship for t in from_json.trips.values()} == {"scheduled", "cancelled"}


def test_gzip_bodies_are_inflated_and_bounded(tt):
    msg = message(trip_update("T1", stu(2, "B", dep_delay=120)))
    decoded, _ = decode_body(gzip.compress(msg.SerializeToString()), "auto")
    assert decoded == msg
    as_json = gzip.compress(json_format.MessageToJson(msg).encode())
    assert decode_body(as_json, "json")[0] == msg
    bomb = gzip.compress(b"\0" * 2_000_000)
    with pytest.raises(FeedDecodeError, match="inflates past the 1,000,000-byte cap"):
        decode_body(bomb, "auto", max_bytes=1_000_000)


@pytest.mark.parametrize(
    ("body", "fmt", "reason"),
    [
        (b'{"header": {}}', "auto", "header/version missing"),
        (b'{"header": {"gtfsRealtimeVersion": "2.0"}, "entity": 5}', "json", "in JSON"),
        (b"\x1f\x8b\x08\x00garbage", "auto", "gzip body"),
        (b"\x1f\x8b\x09\x00\x00\x00\x00\x00\x00\x00garbage", "auto", "cannot be inflated"),
        (b'{"header": 1}', "protobuf", "looks like JSON"),
    ],
)
def test_bad_bodies_are_refused_with_the_reason(body, fmt, reason):
    with pytest.raises(FeedDecodeError, match=reason):
        decode_body(body, fmt)


# --------------------------------------------------------------------- feed age
def _no_header_time(*entities):
    msg = message(*entities)
    msg.header.ClearField("timestamp")
    return msg


def test_without_header_timestamp_the_newest_entity_timestamp_is_the_age(tt):
    entity = trip_update("T1", stu(2, "B", dep_delay=120))
    entity.trip_update.timestamp = ts(7, 58)
    feed = RealtimeFeed(tt)
    feed.ingest("tu", _no_header_time(entity).SerializeToString(), received_at=ts(8, 5))
    assert feed.state.parts["tu"].as_of == ts(7, 58)
    assert feed.state.staleness(ts(8, 0)).trip_updates_age_s == 120


def test_header_timestamp_zero_counts_as_absent(tt):
    entity = trip_update("T1", stu(2, "B", dep_delay=120))
    entity.trip_update.timestamp = ts(7, 58)
    msg = message(entity, timestamp=0)
    feed = RealtimeFeed(tt)
    feed.ingest("tu", msg.SerializeToString(), received_at=ts(8, 5))
    assert feed.state.parts["tu"].as_of == ts(7, 58)


def test_a_frozen_body_without_any_timestamp_goes_stale(tt):
    """No timestamp anywhere: the age runs from when the body last changed, so a producer
    answering every poll with the same bytes is stale after max_age; a new body is fresh."""
    body = _no_header_time(trip_update("T1", stu(2, "B", dep_delay=120))).SerializeToString()
    feed = RealtimeFeed(tt, stale_after_s=90)
    feed.ingest("tu", body, received_at=ts(8, 0))
    feed.ingest("tu", body, received_at=ts(8, 1))
    feed.ingest("tu", body, received_at=ts(8, 3))
    assert feed.state.staleness(ts(8, 3)).trip_updates_stale
    assert feed.state.staleness(ts(8, 3)).trip_updates_age_s == 180
    changed = _no_header_time(trip_update("T1", stu(2, "B", dep_delay=180))).SerializeToString()
    feed.ingest("tu", changed, received_at=ts(8, 4))
    assert not feed.state.staleness(ts(8, 4)).trip_updates_stale


# --------------------------------------------------------------------- boards
def test_a_trip_hours_late_is_on_the_board(tt):
    """T1 (A at 08:00) running 7 h 24 min late leaves A at 15:24: the 15:20 board has it."""
    delay = 7 * 3600 + 24 * 60
    msg = message(trip_update("T1", stu(1, "A", dep_delay=delay)), timestamp=ts(15, 20))
    state = state_from_messages(tt, [msg])
    board = realtime_departures(tt, state, "A", paris(15, 20), paris(15, 20))
    late = [d for d in board.departures if d.trip_id == "T1"]
    assert [(d.expected.strftime("%H:%M"), d.delay_s, d.status) for d in late] == [
        ("15:24", delay, "delayed")
    ]


def test_duplicated_without_trip_properties_has_no_schedule(tt):
    """A DUPLICATED T1 without trip_properties: when the copy runs is unknown, so it shows by
    its updates' times with no scheduled time and no delay, as an added departure."""
    entity = trip_update(
        "T1", stu(1, "A", dep=ts(11, 2)), stu(2, "B", dep=ts(11, 12)), rel=TD.DUPLICATED
    )
    state = state_from_messages(tt, [message(entity, timestamp=ts(11, 0))])
    assert state.counters.duplicated_schedule_unknown == 1
    (copy,) = state.extra_trips
    assert copy.relationship == "duplicated" and copy.route_id == "R"
    assert [(c.stop_id, c.scheduled_departure, c.departure_delay) for c in copy.calls] == [
        ("A", None, None),
        ("B", None, None),
    ]
    board = realtime_departures(tt, state, "A", paris(11, 0), paris(11, 0))
    (row,) = [d for d in board.departures if d.trip_relationship == "duplicated"]
    assert (row.scheduled, row.delay_s, row.status) == (None, None, "added")
    assert row.expected == dt.datetime(2026, 6, 10, 11, 2, tzinfo=PARIS)


def test_memos_keyed_by_upstream_dates_stay_bounded(tt):
    """A hostile feed naming a new start_date in every entity cannot grow the lookups' memos
    past their limit (each entity is still answered: unmatched, counted)."""
    from connectors.gtfs_rt.locate import MEMO_LIMIT, lookups

    start = dt.date(2030, 1, 1)
    entities = [
        trip_update("T1", stu(1, "A", dep_delay=60), entity_id=f"e{i}", start_date=day)
        for i, day in enumerate(
            (start + dt.timedelta(days=i)).strftime("%Y%m%d") for i in range(MEMO_LIMIT + 500)
        )
    ]
    state = state_from_messages(tt, [message(*entities)])
    assert state.counters.unmatched == MEMO_LIMIT + 500
    look = lookups(tt)
    assert len(look.active) <= MEMO_LIMIT and len(look.dates) <= MEMO_LIMIT

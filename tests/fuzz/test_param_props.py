"""Property tests: query-parameter parsing and the signed cursor codec never leak anything
but BadParameter, respect their bounds, and an altered cursor never yields another position."""

from __future__ import annotations

import math
import string
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from aggregator.api.pagination import CursorCodec, paginate
from aggregator.api.params import MAX_PARAM_LENGTH, QueryParams
from aggregator.api.problems import BadParameter

PROPS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
PARIS = ZoneInfo("Europe/Paris")
DEFAULT_AT = datetime(2023, 11, 7, 17, 6, tzinfo=PARIS)

#: What a query string can carry: any text, and texts close to the valid ones.
VALUES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789+-_.eE ,xabTZ:", max_size=30),
    st.from_regex(r"\A[+-]?[0-9]{1,25}\Z"),
    st.floats().map(repr),
    st.sampled_from(
        ["nan", "inf", "-inf", "1e999", "٣", "５", "1_0", " 7 ", "\x00", "true", "YES", "0x10"]
    ),
    st.datetimes().map(datetime.isoformat),
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    st.text(min_size=MAX_PARAM_LENGTH - 2, max_size=MAX_PARAM_LENGTH + 3),
)


def _query(value: str) -> QueryParams:
    return QueryParams(MultiDict([("p", value)]))


def _parsed(parse: Any) -> Any:
    """What ``parse()`` returns, or None when it refused the value with BadParameter."""
    try:
        return parse()
    except BadParameter as exc:
        assert exc.status == 400 and exc.param == "p"
        assert exc.to_problem("/x")["errors"][0]["parameter"] == "p"
        return None


@PROPS
@given(VALUES, st.integers(-(10**6), 10**6), st.integers(0, 10**6))
@example("99999999999999999999999999", 1, 100)
@example("٣", 1, 100)
def test_integer_is_in_bounds_or_bad_parameter(value: str, minimum: int, span: int) -> None:
    """integer() returns an int within [minimum, maximum] or raises BadParameter."""
    maximum = minimum + span
    number = _parsed(lambda: _query(value).integer("p", minimum, minimum=minimum, maximum=maximum))
    assert number is None or (type(number) is int and minimum <= number <= maximum)


@PROPS
@given(VALUES, st.floats(-1e6, 1e6), st.floats(0, 1e6))
def test_number_is_finite_in_bounds_or_bad_parameter(
    value: str, minimum: float, span: float
) -> None:
    """number() returns a finite float within [minimum, maximum] or raises BadParameter."""
    maximum = minimum + span
    number = _parsed(lambda: _query(value).number("p", minimum=minimum, maximum=maximum))
    assert number is None or (math.isfinite(number) and minimum <= number <= maximum)


@PROPS
@given(VALUES)
def test_boolean_is_a_bool_or_bad_parameter(value: str) -> None:
    """boolean() returns True/False for the documented spellings, else raises BadParameter."""
    flag = _parsed(lambda: _query(value).boolean("p", False))
    assert flag is None or isinstance(flag, bool)
    if value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        assert flag is not None


@PROPS
@given(st.one_of(VALUES, st.sampled_from(["json", "geojson", "JSON", " json"])))
def test_choice_is_one_of_the_choices_or_bad_parameter(value: str) -> None:
    """choice() returns one of the declared choices exactly, or raises BadParameter."""
    chosen = _parsed(lambda: _query(value).choice("p", ("json", "geojson"), "json"))
    assert chosen is None or chosen == value in ("json", "geojson")


@PROPS
@given(VALUES)
@example("2023-11-07T17:06:00 01:00")  # '+' decoded as a space by a form encoder
@example("9999-12-31T23:59:59")
@example("0001-01-01T00:00:00+14:00")
def test_datetime_is_aware_or_bad_parameter(value: str) -> None:
    """datetime() returns a timezone-aware datetime or raises BadParameter."""
    parsed = _parsed(lambda: _query(value).datetime("p", DEFAULT_AT, PARIS))
    assert parsed is None or (isinstance(parsed, datetime) and parsed.tzinfo is not None)


@PROPS
@given(
    st.one_of(
        VALUES, st.lists(st.text(string.ascii_letters, max_size=3), max_size=60).map(",".join)
    ),
    st.integers(1, 60),
)
def test_csv_lists_between_one_and_max_items_or_bad_parameter(value: str, max_items: int) -> None:
    """csv() returns 1..max_items non-empty stripped items, or raises BadParameter."""
    items = _parsed(lambda: _query(value).csv("p", max_items=max_items))
    if items is not None:
        assert 1 <= len(items) <= max_items
        assert all(item and item == item.strip() and "," not in item for item in items)


@PROPS
@given(VALUES)
def test_string_is_non_empty_stripped_and_short_or_bad_parameter(value: str) -> None:
    """string() returns a non-empty stripped text of at most MAX_PARAM_LENGTH, or BadParameter."""
    text = _parsed(lambda: _query(value).string("p"))
    assert text is None or (text == text.strip() and 0 < len(text) <= MAX_PARAM_LENGTH)


@pytest.mark.parametrize("kind", ["integer", "number", "boolean", "datetime", "csv", "string"])
def test_every_parser_refuses_a_value_past_the_length_cap(kind: str) -> None:
    """A value one character past MAX_PARAM_LENGTH is a BadParameter whatever its type."""
    params = _query("1" * (MAX_PARAM_LENGTH + 1))
    calls = {
        "integer": lambda: params.integer("p", 1, minimum=0, maximum=10**600),
        "number": lambda: params.number("p", minimum=0, maximum=math.inf),
        "boolean": lambda: params.boolean("p", False),
        "datetime": lambda: params.datetime("p", DEFAULT_AT, PARIS),
        "csv": lambda: params.csv("p"),
        "string": lambda: params.string("p"),
    }
    with pytest.raises(BadParameter, match="longer than"):
        calls[kind]()


def test_absent_parameters_give_the_defaults() -> None:
    """Without the parameter every parser returns its default."""
    params = QueryParams(MultiDict())
    assert params.integer("p", 7, minimum=1, maximum=9) == 7
    assert params.number("p", 2.5, minimum=0, maximum=9) == 2.5
    assert params.boolean("p", True) is True
    assert params.choice("p", ("a", "b"), "b") == "b"
    assert params.datetime("p", DEFAULT_AT, PARIS) == DEFAULT_AT
    assert params.csv("p") == [] and params.string("p", "d") == "d"


# --------------------------------------------------------------------------- cursors

POSITIONS = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**53), 2**53),
    st.lists(
        st.one_of(
            st.text(max_size=10),
            st.integers(-(2**53), 2**53),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=4,
    ),
)
SCOPES = st.text(max_size=40)
CODEC = CursorCodec("a fixed test secret")
URLSAFE = string.ascii_letters + string.digits + "-_"


@PROPS
@given(SCOPES, POSITIONS)
def test_cursor_round_trips_on_its_own_scope(scope: str, position: Any) -> None:
    """decode(scope, encode(scope, p)) == p, and the cursor is URL-safe."""
    cursor = CODEC.encode(scope, position)
    assert set(cursor) <= set(URLSAFE)
    assert CODEC.decode(scope, cursor) == position


@PROPS
@given(SCOPES, POSITIONS, st.data())
def test_an_altered_cursor_is_refused_never_another_position(
    scope: str, position: Any, data: st.DataObject
) -> None:
    """Any edit of a cursor is a BadParameter, or (padding bits only) the very same position."""
    cursor = CODEC.encode(scope, position)
    index = data.draw(st.integers(0, len(cursor)), label="index")
    action = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]), label="edit")
    char = data.draw(st.sampled_from(URLSAFE + "=+/.%~ é"), label="char")
    if action == "replace" and index < len(cursor):
        altered = cursor[:index] + char + cursor[index + 1 :]
    elif action == "insert":
        altered = cursor[:index] + char + cursor[index:]
    elif action == "delete" and index < len(cursor):
        altered = cursor[:index] + cursor[index + 1 :]
    else:
        altered = cursor[:index]
    assume(altered != cursor)
    try:
        decoded = CODEC.decode(scope, altered)
    except BadParameter as exc:
        assert exc.param == "cursor" and exc.status == 400
        return
    assert decoded == position


@PROPS
@given(SCOPES, SCOPES, POSITIONS)
def test_a_cursor_is_refused_on_another_query(scope: str, other: str, position: Any) -> None:
    """A cursor replayed on another query's scope is a BadParameter."""
    assume(scope != other)
    with pytest.raises(BadParameter):
        CODEC.decode(other, CODEC.encode(scope, position))


@PROPS
@given(SCOPES, POSITIONS)
def test_a_cursor_from_another_deployment_is_refused(scope: str, position: Any) -> None:
    """A cursor signed with another secret is a BadParameter."""
    with pytest.raises(BadParameter):
        CursorCodec("another secret").decode(scope, CODEC.encode(scope, position))


@PROPS
@given(
    st.one_of(
        st.text(max_size=80),
        st.text(URLSAFE, max_size=80),
        st.binary(max_size=60).map(lambda b: b.hex()),
    )
)
def test_random_text_is_never_a_cursor(text: str) -> None:
    """Random text decodes to BadParameter, never another exception."""
    with pytest.raises(BadParameter):
        CODEC.decode("scope", text)


@PROPS
@given(
    st.lists(st.text(max_size=6), unique=True, max_size=30).map(sorted),
    st.integers(1, 10),
)
def test_pages_visit_every_item_once(items: list[str], limit: int) -> None:
    """Following next_cursor gives each item once, in order; a tampered cursor is refused."""
    seen: list[str] = []
    cursor = None
    for _ in range(len(items) + 2):
        page = paginate(items, key=lambda x: x, limit=limit, cursor=cursor, codec=CODEC, scope="s")
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
        flipped = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
        try:
            resumed = paginate(
                items, key=lambda x: x, limit=limit, cursor=flipped, codec=CODEC, scope="s"
            )
        except BadParameter:
            pass
        else:  # only the base64 padding bits changed: the very same page
            assert (
                resumed.items
                == paginate(
                    items, key=lambda x: x, limit=limit, cursor=cursor, codec=CODEC, scope="s"
                ).items
            )
    assert seen == items


def test_cursor_of_another_key_type_is_refused_not_a_type_error() -> None:
    """A genuine cursor whose position has another type than the keys is a BadParameter."""
    cursor = CODEC.encode("s", 5)
    with pytest.raises(BadParameter):
        paginate(["a", "b"], key=lambda x: x, limit=1, cursor=cursor, codec=CODEC, scope="s")

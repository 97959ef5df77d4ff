"""Tests for aggregator.config: YAML with lines and ${VAR}, value types, models and the loader."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregator.config import (
    BeffroiConfig,
    ConfigError,
    ConfigIssue,
    Schedule,
    UrlConnectorConfig,
    format_duration,
    load_config,
    parse_byte_size,
    parse_config,
    parse_duration,
)
from aggregator.config.yaml_source import load_yaml


class FieldRule(BaseModel):
    """A nested model, reached through a union, as connector field mappings are."""

    model_config = ConfigDict(extra="forbid")
    path: str
    type: str = "str"


class FeedConfig(UrlConnectorConfig):
    """A stand-in connector type with keys of its own."""

    language: str | None = None
    fields: dict[str, str | FieldRule] = Field(default_factory=dict)


class GtfsConfig(UrlConnectorConfig):
    """A second stand-in type, so "did you mean" has something to choose from."""

    realtime_url: str | None = None


TYPES = {"json_feed": FeedConfig, "gtfs": GtfsConfig}


def write(tmp_path: Path, text: str, name: str = "beffroi.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(path: Path, environ: dict[str, str] | None = None) -> BeffroiConfig:
    return load_config(path, connector_types=TYPES, environ=environ or {})


def problems(path: Path, environ: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load(path, environ)
    return info.value.issues


def only_problem(path: Path, environ: dict[str, str] | None = None) -> str:
    issues = problems(path, environ)
    assert len(issues) == 1, [str(i) for i in issues]
    return str(issues[0])


# --- a config that loads ----------------------------------------------------------------------


def test_empty_file_gives_all_defaults(tmp_path):
    """An empty file is a valid config with every default filled in."""
    config = load(write(tmp_path, ""))
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.shutdown_timeout == 10.0
    assert config.store.backend == "memory"
    assert config.store.key_prefix == "beffroi:"
    assert config.defaults.languages == ["fr", "en"]
    assert config.defaults.default_language == "fr"
    assert config.defaults.user_agent.startswith("beffroi/")
    assert config.connectors == []


def test_full_config_is_typed_and_keeps_connector_subclasses(tmp_path):
    """Durations, sizes and schedules are parsed and each entry gets its type's model."""
    path = write(
        tmp_path,
        """
        server:
          port: 9000
          cors_origins: ["*", "https://app.example.org"]
        defaults:
          timezone: Europe/Paris
          languages: [fr, en-GB]
          allow_file_urls: true
        connectors:
          - id: events
            type: json_feed
            url: file:data/events.json
            language: fr
            refresh: 1h30m
            timeout: 250ms
            max_bytes: 512KiB
          - id: ilevia
            type: gtfs
            url: https://example.org/gtfs.zip
            refresh: "0 6 * * *"
            stale_after: 2d
            retries: 0
        """,
    )
    config = load(path)
    events, ilevia = config.connectors
    assert isinstance(events, FeedConfig)
    assert isinstance(ilevia, GtfsConfig)
    assert events.language == "fr"
    assert events.refresh == Schedule(seconds=5400.0)
    assert events.timeout == 0.25
    assert events.max_bytes == 512 * 1024
    assert events.stale_after_seconds() == 3 * 5400.0
    assert ilevia.refresh.cron == "0 6 * * *"
    assert ilevia.stale_after_seconds() == 2 * 86400.0
    assert config.connector("ilevia") is ilevia
    assert config.source_path == path.resolve()
    assert config.local_path(events.url) == path.resolve().parent / "data" / "events.json"


def test_yaml_lines_are_recorded_per_key_path():
    """Every key path maps to the line of its key, and sequence items to their own line."""
    doc = load_yaml("a: 1\nlist:\n  - x: 2\n    y: [3, 4]\n", environ={})
    assert doc.data == {"a": 1, "list": [{"x": 2, "y": [3, 4]}]}
    assert doc.lines[("a",)] == 1
    assert doc.lines[("list", 0)] == 3
    assert doc.lines[("list", 0, "y")] == 4
    assert doc.line_of(("list", 0, "missing")) == 3


def test_yaml_merge_keys_are_supported(tmp_path):
    """A `<<: *anchor` merge shares settings between entries, explicit keys winning."""
    path = write(
        tmp_path,
        """
        connectors:
          - &base
            id: one
            type: json_feed
            url: https://example.org/one.json
            refresh: 10m
          - <<: *base
            id: two
            refresh: 1m
        """,
    )
    one, two = load(path).connectors
    assert (two.url, two.refresh.seconds, one.refresh.seconds) == (one.url, 60.0, 600.0)


# --- interpolation ----------------------------------------------------------------------------


def test_interpolation_plain_default_and_escape(tmp_path):
    """${VAR} and ${VAR:-default} expand, $${ stays a literal ${, and strings become ints."""
    path = write(
        tmp_path,
        """
        server:
          host: ${HOST}
          port: ${PORT}
          admin_token: ${TOKEN:-fallback-token}
          cursor_secret: "$${NOT_A_VAR}"
        store:
          key_prefix: ${PREFIX:-bf:}
        """,
    )
    config = load(path, {"HOST": "0.0.0.0", "PORT": "8081", "PREFIX": ""})
    assert config.server.host == "0.0.0.0"
    assert config.server.port == 8081
    assert config.server.admin_token == "fallback-token"
    assert config.server.cursor_secret == "${NOT_A_VAR}"
    assert config.store.key_prefix == "bf:"  # an empty variable takes the default too


def test_interpolation_required_message(tmp_path):
    """${VAR:?message} reports the operator's message, on the line and path that used it."""
    path = write(tmp_path, "server:\n  admin_token: ${ADMIN:?set ADMIN to a long random string}\n")
    assert only_problem(path, {"ADMIN": ""}) == (
        f"{path}:2 server.admin_token: set ADMIN to a long random string"
    )


def test_interpolation_unset_variable(tmp_path):
    """A plain ${VAR} whose variable is unset is an error naming the variable."""
    path = write(tmp_path, "server:\n  host: localhost\n  port: ${PORT}\n")
    assert only_problem(path) == f"{path}:3 server.port: environment variable PORT is not set"


def test_interpolation_rejects_newlines(tmp_path):
    """An environment value containing a newline is refused, without showing the value."""
    path = write(tmp_path, "server:\n  admin_token: ${ADMIN}\n")
    message = only_problem(path, {"ADMIN": "first\nsecond"})
    assert message == f"{path}:2 server.admin_token: environment variable ADMIN contains a newline"


def test_interpolation_malformed_reference(tmp_path):
    """A `${` that is not a valid reference is reported rather than kept as text."""
    path = write(tmp_path, "server:\n  host: ${not valid}\n")
    assert "invalid reference '${not valid}'" in only_problem(path)


def test_yaml_records_env_paths():
    """The document remembers which paths were read from the environment, and the values."""
    doc = load_yaml("a: ${A}\nb: ${B:-x}\nc: plain\n", environ={"A": "1"})
    assert doc.env_values == {("a",): ("1",)}
    assert doc.data == {"a": "1", "b": "x", "c": "plain"}


# --- where problems are reported --------------------------------------------------------------


def test_unknown_key_has_line_and_suggestion(tmp_path):
    """A misspelt key is reported at its own line with the closest real key."""
    path = write(
        tmp_path,
        """
        connectors:
          - id: agenda
            type: json_feed
            url: https://example.org/agenda.json
            refrsh: 5m
        """,
    )
    assert only_problem(path) == (
        f"{path}:5 connectors[0].refrsh: unknown key 'refrsh' (did you mean 'refresh'?)"
    )


def test_unknown_key_without_close_match_lists_allowed_keys(tmp_path):
    """When no key is close, the message lists the keys that are allowed."""
    path = write(tmp_path, "store:\n  banana: 1\n")
    assert only_problem(path) == (
        f"{path}:2 store.banana: unknown key 'banana' "
        "(allowed keys: backend, url, key_prefix, lock_ttl)"
    )


def test_unknown_top_level_section(tmp_path):
    """A misspelt top-level section is an unknown key too."""
    path = write(tmp_path, "connector: []\n")
    assert only_problem(path).endswith("unknown key 'connector' (did you mean 'connectors'?)")


def test_all_problems_are_reported_together(tmp_path):
    """Problems in several connectors come in one ConfigError, each on its own line."""
    path = write(
        tmp_path,
        """
        connectors:
          - id: one
            type: json_feed
            url: https://example.org/one.json
            timeout: forever
          - id: two
            type: json_feed
            url: gopher://example.org/two
          - id: three
            type: gtfs
            url: https://example.org/three.zip
            retries: 11
        """,
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    lines = str(info.value).splitlines()
    assert lines == [
        f"3 problems in {path}",
        f"{path}:5 connectors[0].timeout: 'forever' is not a duration (examples: 30s, 5m, 1h)",
        f"{path}:8 connectors[1].url: 'gopher://example.org/two' is not a supported URL: "
        "use http://, https://, file:relative/path or file:///absolute/path",
        f"{path}:12 connectors[2].retries: must be less than or equal to 10",
    ]
    assert [(i.line, i.path) for i in info.value.issues] == [
        (5, "connectors[0].timeout"),
        (8, "connectors[1].url"),
        (12, "connectors[2].retries"),
    ]


def test_union_errors_name_data_paths_only(tmp_path):
    """Errors inside a `str | Model` value use the data's path, not pydantic's member tags."""
    path = write(
        tmp_path,
        """
        connectors:
          - id: x
            type: json_feed
            url: https://example.org/x.json
            fields:
              name: title
              lat: {path: geo.lat, typ: float}
              lon: [1, 2]
        """,
    )
    assert [str(issue) for issue in problems(path)] == [
        f"{path}:7 connectors[0].fields.lat.typ: unknown key 'typ' (did you mean 'type'?)",
        f"{path}:8 connectors[0].fields.lon: must be a string or a mapping (key: value lines)",
    ]


def test_missing_key_uses_parent_line(tmp_path):
    """A required key that is absent is reported at the line of the mapping that lacks it."""
    path = write(tmp_path, "connectors:\n  - id: x\n    type: json_feed\n")
    assert only_problem(path) == f"{path}:2 connectors[0].url: required key is missing"


def test_literal_choices_are_listed(tmp_path):
    """An invalid choice lists the valid ones in plain words."""
    path = write(tmp_path, "store:\n  backend: mongo\n")
    assert only_problem(path) == f"{path}:2 store.backend: must be one of: memory, redis"


# --- value types ------------------------------------------------------------------------------


def test_bad_duration_message(tmp_path):
    """A duration in words is refused with examples of what is accepted."""
    path = write(tmp_path, "server:\n  shutdown_timeout: 5 minutes\n")
    assert only_problem(path) == (
        f"{path}:2 server.shutdown_timeout: '5 minutes' is not a duration (examples: 30s, 5m, 1h)"
    )


def test_bad_schedule_message(tmp_path):
    """A refresh that is neither a duration nor a crontab says both are possible."""
    path = write(
        tmp_path,
        """
        connectors:
          - id: x
            type: json_feed
            url: https://example.org/x.json
            refresh: 5 minutes
        """,
    )
    assert only_problem(path) == (
        f"{path}:5 connectors[0].refresh: '5 minutes' is neither a duration (examples: 30s, "
        "5m, 1h) nor a 5-field cron expression (e.g. '*/10 6-22 * * *')"
    )


def test_bad_cron_quotes_apscheduler(tmp_path):
    """A 5-field expression APScheduler rejects is reported with APScheduler's reason."""
    path = write(
        tmp_path,
        """
        connectors:
          - id: x
            type: json_feed
            url: https://example.org/x.json
            refresh: "61 * * * *"
        """,
    )
    message = only_problem(path)
    assert message.startswith(
        f"{path}:5 connectors[0].refresh: '61 * * * *' is not a valid cron expression: "
    )
    assert "the last value (61) is higher than the maximum value (59)" in message


def test_good_cron_schedule():
    """A valid crontab's nominal interval is the gap between its next two fire times."""
    schedule = Schedule.from_cron("*/10  6-22 * * *")
    noon = datetime(2026, 3, 2, 12, 0, 1, tzinfo=UTC)
    assert schedule.cron == "*/10 6-22 * * *"
    assert schedule.nominal_interval(now=noon) == 600.0
    assert Schedule.from_cron("0 6 * * *").nominal_interval(now=noon) == 86400.0
    assert schedule.describe() == "cron '*/10 6-22 * * *'"
    assert Schedule.every(90).describe() == "every 1m30s"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("2d", 172800),
        ("45", 45),
        (12, 12),
        (1.5, 1.5),
    ],
)
def test_parse_duration_accepts(text, seconds):
    """Each documented duration spelling gives the right number of seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "0s", "-5s", "1y", "", True, "m5"])
def test_parse_duration_rejects(text):
    """Words, zero, negatives, unknown units and booleans are not durations."""
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_round_trips():
    """Formatting gives the compact spelling that parses back to the same value."""
    for seconds in (0.25, 30, 90, 5400, 86400 + 61):
        assert parse_duration(format_duration(seconds)) == seconds


def test_parse_byte_size():
    """Decimal units are SI, binary units are IEC, and words are refused with examples."""
    assert parse_byte_size("50MB") == 50_000_000
    assert parse_byte_size("512KB") == 512_000
    assert parse_byte_size("1GiB") == 2**30
    assert parse_byte_size("100") == 100
    with pytest.raises(ValueError, match=r"'50 megs' is not a byte size \(examples: "):
        parse_byte_size("50 megs")


def test_source_id_and_url_rules():
    """Ids must be slug-like and URLs use an accepted scheme."""
    base = {"type": "json_feed", "url": "https://example.org/"}
    with pytest.raises(ValidationError, match="is not a valid id"):
        FeedConfig(**{**base, "id": "Métro Lille"})
    for url in ("file:data/x.json", "file:///srv/x.json", "http://example.org"):
        assert FeedConfig(**{**base, "id": "x", "url": url}).url == url
    for url in ("file://host/x", "https:///nohost", "ftp://example.org/x", "example.org"):
        with pytest.raises(ValidationError, match="is not a supported URL"):
            FeedConfig(**{**base, "id": "x", "url": url})


# --- sections and connectors ------------------------------------------------------------------


def test_duplicate_connector_ids(tmp_path):
    """A second connector with an id already used is reported on its id line."""
    path = write(
        tmp_path,
        """
        connectors:
          - id: metro
            type: gtfs
            url: https://example.org/a.zip
          - type: gtfs
            url: https://example.org/b.zip
            id: metro
        """,
    )
    assert only_problem(path) == (
        f"{path}:7 connectors[1].id: duplicate id 'metro' (already used by connectors[0] on line 2)"
    )


def test_unknown_connector_type_suggests(tmp_path):
    """An unknown type names the closest known type and lists all of them."""
    path = write(tmp_path, "connectors:\n  - id: x\n    type: gtfss\n    url: https://e.org/\n")
    assert only_problem(path) == (
        f"{path}:3 connectors[0].type: unknown connector type 'gtfss' (did you mean 'gtfs'?); "
        "known types: gtfs, json_feed"
    )


def test_missing_connector_type(tmp_path):
    """An entry without a type says so at the entry's line."""
    path = write(tmp_path, "connectors:\n  - id: x\n    url: https://e.org/\n")
    assert only_problem(path) == f"{path}:2 connectors[0].type: required key is missing"


def test_redis_backend_needs_url(tmp_path):
    """The redis backend without a url is an error on store.url."""
    path = write(tmp_path, "store:\n  backend: redis\n")
    assert only_problem(path) == (
        f"{path}:1 store.url: required when backend is 'redis' (e.g. redis://localhost:6379/0)"
    )


def test_redis_backend_needs_a_shared_cursor_secret(tmp_path):
    """Several processes on one Redis store each drew their own cursor key, so a page cursor
    issued by one API process was refused (400) by another: the secret is required."""
    path = write(
        tmp_path,
        "server:\n  cursor_secret: ${SECRET:-}\nstore:\n  backend: redis\n  url: redis://h/0\n",
    )
    assert only_problem(path) == (
        f"{path}:2 server.cursor_secret: required with the redis store: every process must "
        "sign page cursors with the same secret (set it from the environment, e.g. "
        "${BEFFROI_CURSOR_SECRET})"
    )
    assert load(path, {"SECRET": "a-long-random-shared-secret"}).server.cursor_secret


def test_bad_timezone(tmp_path):
    """An unknown time zone is named in the error."""
    path = write(tmp_path, "defaults:\n  timezone: Europe/Lile\n")
    assert only_problem(path) == (
        f"{path}:2 defaults.timezone: unknown time zone 'Europe/Lile' "
        "(use an IANA name such as 'Europe/Paris')"
    )


def test_file_urls_need_permission(tmp_path):
    """A file: URL is refused unless defaults.allow_file_urls is true."""
    path = write(tmp_path, "connectors:\n  - {id: x, type: json_feed, url: 'file:x.json'}\n")
    assert "file: URLs are disabled" in only_problem(path)


# --- YAML-level problems ----------------------------------------------------------------------


def test_yaml_syntax_error_has_line(tmp_path):
    """Broken YAML is one problem carrying the line where the parser gave up."""
    path = write(tmp_path, "server:\n  host: a\n  port: [8080\nstore: {}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    (issue,) = info.value.issues
    assert issue.line == 4
    assert issue.message.startswith("invalid YAML")
    assert str(info.value).splitlines()[0] == f"1 problem in {path}"


def test_duplicate_key(tmp_path):
    """A key given twice in one mapping is reported at its second occurrence."""
    path = write(tmp_path, "server:\n  port: 80\n  host: a\n  port: 81\n")
    assert (
        only_problem(path)
        == f"{path}:4 server.port: duplicate key 'port' (first defined on line 2)"
    )


def test_unreadable_file(tmp_path):
    """A missing file is a ConfigError too, so `beffroi check` has one thing to catch."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load(tmp_path / "nope.yaml")


# --- secrets ----------------------------------------------------------------------------------


def test_secrets_are_collected(tmp_path):
    """Tokens, header values, long env values, URL passwords and secret query values are secrets."""
    path = write(
        tmp_path,
        """
        server:
          admin_token: admin-literal
          cursor_secret: ${CURSOR}
          port: ${PORT}
        store:
          backend: redis
          url: redis://:redis-pass@localhost:6379/0
        connectors:
          - id: agenda
            type: json_feed
            url: https://example.org/events?size=100&Token=query-token&lang=fr
            headers:
              Authorization: Bearer ${API_KEY}
              Accept: application/json
              X-Version: 2
        """,
    )
    config = load(path, {"CURSOR": "cursor-from-env", "PORT": "8080", "API_KEY": "k3y-from-env"})
    assert {
        "admin-literal",
        "cursor-from-env",
        "redis-pass",
        "query-token",
        "Bearer k3y-from-env",
        "k3y-from-env",
        "application/json",
    } <= config.secrets
    assert "8080" not in config.secrets and "2" not in config.secrets  # too short to mask
    assert "100" not in config.secrets and "fr" not in config.secrets
    assert "admin-literal" not in repr(config)


def test_env_values_are_never_echoed(tmp_path):
    """An invalid value read from the environment is described, not shown."""
    path = write(
        tmp_path,
        """
        connectors:
          - id: x
            type: json_feed
            url: https://example.org/?key=${API_KEY}
            timeout: ${TIMEOUT}
          - id: y
            type: json_feed
            url: ${SECRET_URL}
        """,
    )
    env = {"API_KEY": "s3cret", "TIMEOUT": "hunter2-ms", "SECRET_URL": "gopher://s3cret.example"}
    with pytest.raises(ConfigError) as info:
        load(path, env)
    text = str(info.value)
    assert "hunter2" not in text and "s3cret" not in text
    assert f"{path}:5 connectors[0].timeout: (value from environment) is not a duration" in text
    assert f"{path}:8 connectors[1].url: (value from environment) is not a supported URL" in text


def test_parse_config_from_text():
    """parse_config validates a string under the given file name and base directory."""
    config = parse_config(
        "defaults:\n  allow_file_urls: true\nconnectors:\n  - {id: a, type: gtfs, url: 'file:a'}\n",
        filename="inline.yaml",
        connector_types=TYPES,
        environ={},
        base_dir=Path("/srv/beffroi"),
    )
    assert config.source_path is None
    assert config.local_path("file:a") == Path("/srv/beffroi/a")
    with pytest.raises(ConfigError, match=r"^1 problem in inline\.yaml\ninline\.yaml:1 store"):
        parse_config("store: 5\n", filename="inline.yaml", connector_types=TYPES, environ={})


# --- the clock ----------------------------------------------------------------------------------


def test_clock_fixed_or_started_instant(tmp_path):
    """clock.fixed and clock.start read RFC 3339 instants; a Clock built from them answers so."""
    from aggregator.clock import Clock

    fixed = load(write(tmp_path, "clock: {fixed: '2026-03-29T08:00:00+02:00'}\n")).clock
    assert Clock(fixed=fixed.fixed).now().isoformat() == "2026-03-29T08:00:00+02:00"
    started = load(write(tmp_path, "clock: {start: '2023-11-07T17:05:00-08:00'}\n")).clock
    now = Clock(start=started.start).now()
    assert 0 <= (now - started.start).total_seconds() < 60
    assert load(write(tmp_path, "server: {}\n")).clock.fixed is None


def test_clock_needs_an_offset_and_one_mode(tmp_path):
    """A clock instant without offset, or both modes at once, is a config error naming it."""
    naive = only_problem(write(tmp_path, "clock:\n  fixed: '2026-03-29T08:00:00'\n"))
    assert naive.endswith(
        "beffroi.yaml:2 clock.fixed: '2026-03-29T08:00:00' has no UTC offset "
        "(e.g. 2026-03-29T08:00:00+02:00)"
    )
    both = only_problem(
        write(
            tmp_path, "clock:\n  fixed: '2026-03-29T08:00:00Z'\n  start: '2026-03-29T08:00:00Z'\n"
        )
    )
    assert "clock.start: give either 'fixed' or 'start', not both" in both

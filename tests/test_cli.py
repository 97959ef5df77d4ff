"""The beffroi command line: check, check --fetch, fetch, --version (real subprocesses)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from aggregator import __version__

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "config" / "demo.yaml"
SERVE = [sys.executable, "-m", "aggregator.cli", "--log-level", "WARNING", "serve"]


def beffroi(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_version():
    """--version prints the package version."""
    result = beffroi("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"beffroi {__version__}"


def test_check_accepts_the_demo_config():
    """The bundled demo config is valid."""
    result = beffroi("check", "-c", str(DEMO))
    assert result.returncode == 0, result.stderr
    assert "valid, 11 source(s) enabled" in result.stdout
    assert "lovelo-stations: json_records, refresh every 10m" in result.stdout


def test_check_fetch_loads_each_source_once():
    """check --fetch fetches and parses each source and reports its record count."""
    result = beffroi("check", "-c", str(DEMO), "--fetch")
    assert result.returncode == 0, result.stderr
    assert "lovelo-stations: ok in" in result.stdout
    assert "122 records" in result.stdout
    assert "caltrain: ok in" in result.stdout
    assert "valid_from: 2023-09-23" in result.stdout


def test_check_reports_every_error_with_file_line_and_path(tmp_path):
    """A broken config exits non-zero listing each problem with its line and key path."""
    config = tmp_path / "broken.yaml"
    config.write_text(
        "connectors:\n"
        "  - id: a\n"
        "    type: json_records\n"
        "    url: https://example.org/a.json\n"
        "    id_field: id\n"
        "    refresh: 5 minutes\n"
        "  - id: b\n"
        "    type: json_recordz\n"
    )
    result = beffroi("check", "-c", str(config))
    assert result.returncode == 2
    assert f"{config}:6 connectors[0].refresh: '5 minutes' is neither a duration" in result.stderr
    assert f"{config}:8 connectors[1].type:" in result.stderr
    assert "did you mean 'json_records'" in result.stderr


def test_check_fetch_fails_when_a_source_fails(tmp_path):
    """check --fetch exits 1 when a source cannot be loaded, naming the problem."""
    config = tmp_path / "missing.yaml"
    config.write_text(
        "defaults: {allow_file_urls: true}\n"
        "connectors:\n"
        "  - id: gone\n"
        "    type: json_records\n"
        "    url: file:nowhere.json\n"
        "    id_field: id\n"
    )
    result = beffroi("check", "-c", str(config), "--fetch")
    assert result.returncode == 1
    assert "gone: FAILED" in result.stdout


def test_fetch_fails_when_no_row_fits_the_mapping(tmp_path):
    """A wrong id_field skipped all 122 rows of a real source, and `fetch` said "ok, 0
    records" with exit 0; it is a failure naming the reason."""
    (tmp_path / "rows.json").write_text('[{"code": "P1"}, {"code": "P2"}]')
    config = tmp_path / "wrong-id.yaml"
    config.write_text(
        "defaults: {allow_file_urls: true}\n"
        "connectors:\n"
        "  - id: parks\n"
        "    type: json_records\n"
        "    url: file:rows.json\n"
        "    id_field: identifiant\n"
    )
    for command in (["fetch", "-c", str(config), "parks"], ["check", "-c", str(config), "--fetch"]):
        result = beffroi(*command)
        assert result.returncode == 1, result.stdout
        assert "parks: FAILED" in result.stdout
        assert "none of the 2 rows could be mapped" in result.stdout


def test_fetch_one_source_prints_a_summary():
    """fetch runs one source once and shows its count and a few records."""
    result = beffroi("fetch", "-c", str(DEMO), "lovelo-stations")
    assert result.returncode == 0, result.stderr
    assert "lovelo-stations: ok in" in result.stdout
    assert "'id': 'lovelo-stations:5288'" in result.stdout


def test_fetch_unknown_source_is_an_error():
    """fetch with a source id that is not configured lists the ones that are."""
    result = beffroi("fetch", "-c", str(DEMO), "nope")
    assert result.returncode == 2
    assert (
        "sources: communes, lovelo-stations, lovelo-bikes, caltrain, caltrain-rt, stq, "
        "paris-events, machbar" in result.stderr
    )


def test_missing_config_file_is_a_clear_error(tmp_path):
    """A config path that does not exist is reported, not a traceback."""
    result = beffroi("check", "-c", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "absent.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_log_level_is_a_clear_error():
    """--log-level takes the usual names in any case; another word is a usage error, not a
    traceback."""
    result = beffroi("--log-level", "loud", "check", "-c", str(DEMO))
    assert result.returncode == 2
    assert "invalid choice: 'LOUD'" in result.stderr
    assert "Traceback" not in result.stderr
    assert beffroi("--log-level", "debug", "check", "-c", str(DEMO)).returncode == 0


def test_a_port_already_in_use_is_one_clear_line(tmp_path):
    """`serve` on a taken port printed a Python traceback; now one line and a non-zero exit."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SERVE, "-c", str(DEMO), "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"beffroi: cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr

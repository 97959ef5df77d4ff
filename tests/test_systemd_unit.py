"""The shipped systemd unit (docs/deploy/beffroi.service): systemd itself finds nothing wrong
with it, its command line is one `beffroi` accepts, and reload and stop send the signals the
supervisor acts on."""

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.cli import _parser

ROOT = Path(__file__).parents[1]
UNIT = ROOT / "docs" / "deploy" / "beffroi.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_command_line_is_one_beffroi_accepts():
    program, *arguments = shlex.split(service()["ExecStart"])
    assert program.endswith("/.venv/bin/beffroi")
    args = _parser().parse_args(arguments)
    assert (args.command, args.workers, args.log_format) == ("serve", 2, "json")
    assert service()["ExecReload"] == "/bin/kill -HUP $MAINPID"  # forwarded to every process
    assert service()["KillSignal"] == "SIGTERM"  # a graceful stop
    assert service()["RestartPreventExitStatus"] == "2"  # an invalid configuration


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_systemd_analyze_verifies_the_unit(tmp_path):
    # The unit names the installed program; point it at this checkout's to verify the rest.
    beffroi = Path(sys.executable).parent / "beffroi"
    text = UNIT.read_text().replace("/opt/beffroi/.venv/bin/beffroi", str(beffroi))
    copy = tmp_path / "beffroi.service"
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line for line in (result.stdout + result.stderr).splitlines() if "beffroi.service" in line
    ]
    assert problems == [], problems

"""The client generators the tests run, found or installed once: openapi-python-client (pinned in
requirements-dev.lock) and, from npm, openapi-typescript and typescript (pinned in this
directory's package.json and package-lock.json, installed with ``npm ci`` into a cache)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
#: Where the npm tools are installed, one directory per package-lock.json content.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "beffroi-tests"


def missing(reason: str) -> None:
    """Skip with ``reason`` on a developer's machine; fail in CI (.ci/run installs it all and
    sets BEFFROI_REQUIRE_CLIENT_TOOLS)."""
    if os.environ.get("BEFFROI_REQUIRE_CLIENT_TOOLS") or os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it: see .ci/run)")
    pytest.skip(reason)


def python_generator() -> list[str]:
    """The openapi-python-client command of this interpreter's environment."""
    command = Path(sys.executable).parent / "openapi-python-client"
    if not command.exists():
        missing("openapi-python-client is not installed: make install-dev")
    return [str(command)]


def npm_tools() -> Path:
    """The ``node_modules/.bin`` directory with openapi-typescript and tsc, installed by
    ``npm ci`` from the pinned lock file the first time (then reused)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing("node and npm are needed to check the TypeScript client")
    lock = (HERE / "package-lock.json").read_bytes() + (HERE / "package.json").read_bytes()
    target = CACHE / f"npm-{hashlib.sha256(lock).hexdigest()[:16]}"
    bin_dir = target / "node_modules" / ".bin"
    if (bin_dir / "tsc").exists() and (bin_dir / "openapi-typescript").exists():
        return bin_dir
    CACHE.mkdir(parents=True, exist_ok=True)
    # Installed beside the target, then renamed: two sessions never see half an install.
    work = Path(tempfile.mkdtemp(prefix="npm-", dir=CACHE))
    for name in ("package.json", "package-lock.json"):
        shutil.copy(HERE / name, work / name)
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        pytest.fail(f"npm ci failed:\n{done.stdout}\n{done.stderr}")
    try:
        work.rename(target)
    except OSError:  # another session finished first: use its install
        shutil.rmtree(work, ignore_errors=True)
    return bin_dir


def run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a generator or compiler, with this environment's tools (ruff...) on the PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )

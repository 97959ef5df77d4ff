"""The container image and compose.yaml keep their promises (docs/DEPLOYMENT.md, "Containers").

No container engine runs in the test suite, so this checks what holds without one: the
Dockerfile's and compose.yaml's structure, that requirements.lock is exactly the runtime
dependencies, and — the part that runs — compose.yaml's poller and two API processes started
as their containers start them (the same commands and environment, the image's working
directory, an empty HOME) against a real redis-server: they serve, agree, pass the image's own
HEALTHCHECK command, stop cleanly and write nothing. scripts/check_image.sh builds and runs the
real image and compose.yaml where Docker is available.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from container_files import (
    MissingVariable,
    compose_services,
    dockerfile_stages,
    dockerignore_allows,
    exec_form,
    interpolate,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from redis_server import free_port

from aggregator.cli import _load, _parser

ROOT = Path(__file__).parents[1]
STAGES = dockerfile_stages(ROOT / "Dockerfile")
IMAGE = STAGES[-1]
SERVICES = compose_services(ROOT / "compose.yaml")
BEFFROI = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("beffroi")}
ADMIN_TOKEN = "an-admin-token-for-the-test-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: Tools that install the project itself (no build isolation); nothing imports them.
INSTALL_TOOLS = {"setuptools", "wheel", "packaging"}


def role(service: dict) -> str:
    return _parser().parse_args(service["command"]).role


def pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    named = [line.split("==") for line in lines if "==" in line and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in named}


# --- the lock split ---------------------------------------------------------------------------


def test_runtime_lock_pins_exactly_the_runtime_dependencies():
    """Everything the project imports at run time is pinned, and nothing else is: a runtime
    dependency missing from the lock would break the image (installed with --no-deps)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed: set[str] = set()
    todo = [Requirement(spec) for spec in project["dependencies"]]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in needed or (requirement.marker and not requirement.marker.evaluate()):
            continue
        needed.add(name)
        todo += [Requirement(spec) for spec in metadata.requires(name) or []]
    runtime = pins(ROOT / "requirements.lock")
    assert needed - set(runtime) == set(), "runtime dependencies missing from requirements.lock"
    assert set(runtime) - needed <= INSTALL_TOOLS, "requirements.lock pins more than it needs"
    for name in needed:
        assert metadata.version(name) == runtime[name], f"{name} differs from its pin"


def test_dev_lock_adds_the_test_pins_on_top_of_the_runtime_ones():
    text = (ROOT / "requirements-dev.lock").read_text().splitlines()
    first = next(line for line in text if line and not line.startswith("#"))
    assert first == "-r requirements.lock"  # the runtime pins, then what the tests add
    runtime, dev = pins(ROOT / "requirements.lock"), pins(ROOT / "requirements-dev.lock")
    assert set(runtime) & set(dev) == set(), "a package pinned in both lock files"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["optional-dependencies"]["test"]:
        assert canonicalize_name(Requirement(spec).name) in dev


# --- the Dockerfile ---------------------------------------------------------------------------


def test_image_is_multi_stage_and_installs_only_the_runtime_lock():
    assert len(STAGES) >= 2 and STAGES[0].name == "build"
    assert IMAGE.base == STAGES[0].base, "the venv must run on the interpreter it was built for"
    build = " ".join(STAGES[0].all("RUN"))
    assert "--no-deps -r /src/requirements.lock" in build
    assert "--no-deps --no-build-isolation /src" in build
    assert "pip check" in build  # the lock alone is complete
    assert "requirements-dev.lock" not in (ROOT / "Dockerfile").read_text()
    assert IMAGE.all("COPY")[0] == "--from=build /opt/venv /opt/venv"
    allowed = dockerignore_allows(ROOT / ".dockerignore")
    for stage in STAGES:
        for copy in stage.all("COPY"):
            if not copy.startswith("--from"):
                assert set(copy.split()[:-1]) <= allowed, f"COPY {copy} is in .dockerignore"


def test_image_runs_as_a_non_root_user_and_checks_its_health_on_healthz():
    user = IMAGE.last("USER")
    assert user is not None
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can verify it
    healthcheck = IMAGE.last("HEALTHCHECK")
    assert healthcheck is not None and "/healthz" in " ".join(exec_form(healthcheck))
    assert exec_form(IMAGE.last("ENTRYPOINT")) == ["beffroi"]
    command = _parser().parse_args(exec_form(IMAGE.last("CMD")))
    assert (ROOT / command.config).is_file()  # WORKDIR /app holds COPY config
    assert IMAGE.last("EXPOSE") == IMAGE.env()["BEFFROI_PORT"] == "8080"
    assert IMAGE.env()["BEFFROI_GTFS_CACHE"] in IMAGE.all("VOLUME")


# --- compose.yaml -----------------------------------------------------------------------------


def test_compose_runs_redis_one_poller_and_two_api_processes_read_only():
    assert sorted(role(service) for service in BEFFROI.values()) == ["api", "api", "poller"]
    assert "healthcheck" in SERVICES["redis"]
    for name, service in SERVICES.items():
        assert service.get("read_only") is True, f"{name}: root filesystem not read-only"
    for name, service in BEFFROI.items():
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "./config:/app/config:ro" in service["volumes"], name
        assert (ROOT / _parser().parse_args(service["command"]).config).is_file()
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host"
        for key, value in service["environment"].items():
            if any(word in key for word in ("SECRET", "TOKEN", "PASSWORD")):
                assert value.startswith("${"), f"{name}: {key} is written in compose.yaml"


def test_compose_refuses_to_start_without_a_shared_cursor_secret():
    """Two API processes with their own random secrets would refuse each other's cursors."""
    environment = next(iter(BEFFROI.values()))["environment"]
    with pytest.raises(MissingVariable, match="BEFFROI_CURSOR_SECRET"):
        interpolate(environment["BEFFROI_CURSOR_SECRET"], {})


def test_lille_config_keeps_compiled_timetables_in_the_image_cache_volume(monkeypatch):
    monkeypatch.setenv("BEFFROI_GTFS_CACHE", IMAGE.env()["BEFFROI_GTFS_CACHE"])
    monkeypatch.setenv("BEFFROI_CURSOR_SECRET", "a-shared-secret")
    config, _types = _load(ROOT / "config" / "lille.yaml", require_sources=True)
    caches = {c.id: c.cache_dir for c in config.connectors if c.type == "gtfs"}
    assert caches == {"ilevia": "/var/cache/beffroi"}


# --- compose.yaml's processes, started as their containers start them ------------------------


def files_under(*folders: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for folder in folders
        for path in sorted(folder.rglob("*"))
    }


class Container:
    """One compose service's process: its command, the image's environment, cwd /app."""

    def __init__(self, name: str, app: Path, environ: dict[str, str], logs: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        service = BEFFROI[name]
        env = {key: interpolate(str(value), environ) for key, value in IMAGE.env().items()}
        env |= {
            key: interpolate(str(value), environ) for key, value in service["environment"].items()
        }
        # The test's own: the redis-server's URL for compose's `redis` host, folders in tmp.
        env |= environ | {"BEFFROI_HOST": "127.0.0.1", "BEFFROI_PORT": str(self.port)}
        self.env = env
        self.log = (logs / f"{name}.log").open("wb")
        # `beffroi` is aggregator.cli:main; PYTHONPATH stands for the package in /opt/venv.
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "aggregator.cli", *service["command"]],
            cwd=app,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def healthcheck(self) -> int:
        """The image's HEALTHCHECK command, run with this container's environment."""
        command = exec_form(IMAGE.last("HEALTHCHECK"))
        command[0] = sys.executable if command[0] == "python" else command[0]
        return subprocess.run(command, env=self.env, timeout=30, capture_output=True).returncode

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=30)
        finally:
            self.log.close()


def wait_ready(container: Container, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while True:
        if container.popen.poll() is not None:
            raise AssertionError(f"{container.name} exited: see {container.log.name}")
        try:
            if httpx.get(f"{container.base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{container.name} not ready in {within}s")
        time.sleep(0.2)


@pytest.fixture
def deployment(tmp_path, redis_server):
    app, home, tmp, cache = (tmp_path / part for part in ("app", "home", "tmp", "cache"))
    shutil.copytree(ROOT / "config", app / "config", ignore=shutil.ignore_patterns(".cache"))
    for folder in (home, tmp, cache):
        folder.mkdir()
    environ = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "BEFFROI_GTFS_CACHE": str(cache),
        "BEFFROI_REDIS_URL": redis_server.url,
        "BEFFROI_CURSOR_SECRET": "a-secret-every-process-shares-0123456789",
        "BEFFROI_ADMIN_TOKEN": ADMIN_TOKEN,  # which process polls is for the admin API only
    }
    before = files_under(app, home)
    containers = {name: Container(name, app, environ, tmp_path) for name in BEFFROI}
    try:
        for container in containers.values():
            wait_ready(container)
        yield containers
    finally:
        codes = {name: container.stop() for name, container in containers.items()}
    assert codes == dict.fromkeys(containers, 0), "a process did not stop cleanly on SIGTERM"
    assert files_under(app, home) == before, "a process wrote in the image or in HOME"


def test_compose_processes_serve_agree_and_pass_the_image_healthcheck(deployment):
    # Requests get 30 s (httpx's default is 5): a loaded machine can be slow to answer.
    apis = [c for name, c in deployment.items() if role(BEFFROI[name]) == "api"]
    poller = next(c for name, c in deployment.items() if role(BEFFROI[name]) == "poller")
    for api in apis:
        board = httpx.get(
            f"{api.base}/v1/stops/caltrain:san_francisco/departures?limit=3", timeout=30
        )
        assert board.status_code == 200
        assert len(board.json()["data"]["departures"]) == 3
        source = httpx.get(
            f"{api.base}/v1/admin/sources/caltrain", headers=ADMIN, timeout=30
        ).json()["data"]
        assert f":{poller.popen.pid}:" in source["polled_by"]  # the API processes never poll
    records = "/v1/sources/lovelo-stations/records?limit=2"
    first = httpx.get(apis[0].base + records, timeout=30).json()
    second = httpx.get(f"{apis[1].base}{records}&cursor={first['meta']['next_cursor']}", timeout=30)
    assert second.status_code == 200, second.text
    assert second.json()["data"][0]["id"] > first["data"][-1]["id"]
    assert all(container.healthcheck() == 0 for container in deployment.values())
    apis[0].stop()
    assert apis[0].healthcheck() != 0  # a stopped server fails the check

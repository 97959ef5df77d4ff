"""Several real Beffroi processes sharing one real redis-server: pollers poll each source
once, API processes agree, a dead poller is replaced, a Redis outage is survived."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from process_signals import all_children_catch, catches, children_of, kill_tree
from redis_server import free_port
from upstream_server import Reply

from aggregator.stop_report import KILL_AFTER_S

ROOT = Path(__file__).parents[1]
V1 = b'[{"code": "P1", "nom": "Gare"}, {"code": "P2", "nom": "Euralille"}]'
V2 = V1[:-1] + b', {"code": "P3", "nom": "Lille Europe"}]'
RECORDS = "/v1/sources/parkings/records"
ADMIN_TOKEN = "scale-out-admin-token"
SERVE = [sys.executable, "-m", "aggregator.cli", "serve"]
RELOAD_LINE = "SIGHUP: asking 3 processes to reload the configuration"


class Process:
    """One `beffroi serve` process with a role, on its own port."""

    def __init__(self, config: Path, role: str) -> None:
        self.port = free_port()
        self.role = role
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "aggregator.cli", "--log-level", "WARNING", "serve"]
        self.popen = subprocess.Popen(
            [*command, "-c", str(config), "--role", role, "--port", str(self.port)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def admin(self, path: str) -> httpx.Response:
        return await self.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        # A generous timeout: on a loaded machine a process can be slow to answer, and the
        # readiness loops retry anyway.
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.get(self.base + path, **kwargs)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(timeout=20)


async def until(check, *, within: float = 60.0):
    """Await ``check()`` (an async predicate) until it holds; fail after ``within`` seconds.

    The bound only stops a broken test from hanging: processes that import the app and load
    a source can take many seconds to be ready on a loaded machine, so it is generous."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            if await check():
                return
        except httpx.TransportError:
            pass
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {within}s")
        await asyncio.sleep(0.1)


@pytest.fixture
def cluster(tmp_path, upstream, redis_server):
    upstream.route("/p.json", Reply(body=V1))
    config = tmp_path / "beffroi.yaml"
    config.write_text(
        f"""
server:
  admin_token: {ADMIN_TOKEN}
  cursor_secret: scale-out-shared-cursor-secret
store:
  backend: redis
  url: {redis_server.url}
  key_prefix: "test:"
  lock_ttl: 2s
connectors:
  - id: parkings
    type: json_records
    url: {upstream.url("/p.json")}
    refresh: 1s
    retries: 0
    required: true
    id_field: code
    fields:
      name: nom
"""
    )
    processes: list[Process] = []

    def start(role: str) -> Process:
        process = Process(config, role)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop(signal.SIGKILL)


async def records(process: Process) -> list[str]:
    body = (await process.get(RECORDS)).json()
    return [r["id"] for r in body["data"]]


async def ready(process: Process) -> bool:
    return (await process.get("/readyz")).status_code == 200


async def test_pollers_share_the_work_and_apis_agree(cluster, upstream):
    """Two pollers fetch the source once per cycle between them; two APIs give the same
    data and the same ETag."""
    pollers = [cluster("poller"), cluster("poller")]
    apis = [cluster("api"), cluster("api")]
    for process in pollers + apis:
        await until(lambda p=process: ready(p))
    polls, elapsed = await polls_over(upstream, at_least=5.0, polls=3)
    # One poller at a 1 s cadence makes about one request a second of the window (one more
    # at either edge); two would make about two a second.
    assert polls <= elapsed + 2, (polls, elapsed)
    answers = [await api.get(RECORDS) for api in apis]
    assert answers[0].json()["data"] == answers[1].json()["data"]
    assert answers[0].headers["ETag"] == answers[1].headers["ETag"]

    async def same_poller() -> bool:
        # Read until both agree: a lease handed over between the two reads (a poller stalled
        # past the 2 s TTL on a loaded machine) shows two names for a moment.
        statuses = [(await api.admin("/v1/admin/sources/parkings")).json()["data"] for api in apis]
        return statuses[0]["polled_by"] == statuses[1]["polled_by"] is not None

    await until(same_poller)
    # Which host and process polls is for the operator, not the public.
    assert (await apis[0].get("/v1/sources/parkings")).json()["data"]["polled_by"] is None


async def test_a_dead_poller_is_replaced_within_the_lease(cluster, upstream):
    """SIGKILL the poller polling the source: the other takes over and new data flows."""
    pollers = [cluster("poller"), cluster("poller")]
    api = cluster("api")
    await until(lambda: ready(api))
    await until(lambda: _polled_by(api))  # the status may reach the API after the data
    holder = await _polled_by(api)
    assert holder is not None
    pid = int(holder.split(":")[1])
    victim = next(p for p in pollers if p.popen.pid == pid)
    survivor = next(p for p in pollers if p is not victim)
    await asyncio.to_thread(victim.stop, signal.SIGKILL)  # in a thread: the loop serves
    upstream.route("/p.json", Reply(body=V2))
    await until(lambda: _has_p3(api))  # lease TTL 2 s, then a poll
    status = (await api.admin("/v1/admin/sources/parkings")).json()["data"]
    assert status["polled_by"].split(":")[1] == str(survivor.popen.pid)


async def polls_over(upstream, *, at_least: float, polls: int) -> tuple[int, float]:
    """Watch the upstream for ``at_least`` seconds and until it has had ``polls`` requests;
    the requests seen and the seconds actually watched.

    Measured rather than assumed: on a loaded machine this loop can wake late, and a window
    that is longer than asked for holds more polls."""
    loop = asyncio.get_running_loop()
    before, started = upstream.hits("/p.json"), loop.time()
    await asyncio.sleep(at_least)
    await until(lambda: _polled(upstream, before + polls))
    return upstream.hits("/p.json") - before, loop.time() - started


async def _polled(upstream, count: int) -> bool:
    return upstream.hits("/p.json") >= count


async def _polled_by(process: Process) -> str | None:
    return (await process.admin("/v1/admin/sources/parkings")).json()["data"]["polled_by"]


async def _has_p3(process: Process) -> bool:
    return "parkings:P3" in await records(process)


async def test_redis_outage_is_survived_and_state_converges(cluster, upstream, redis_server):
    """With Redis stopped the API answers from memory, flagged stale; when Redis returns
    (empty), the poller saves the data again and new upstream data reaches the API."""
    poller, api = cluster("poller"), cluster("api")
    await until(lambda: ready(api))
    # In a thread, as every wait here: this loop serves the upstream the poller reads.
    await asyncio.to_thread(redis_server.stop)

    async def degraded() -> bool:
        return (await api.get("/readyz")).json()["data"]["status"] == "degraded"

    await until(degraded)
    answer = (await api.get(RECORDS)).json()
    assert [r["id"] for r in answer["data"]] == ["parkings:P1", "parkings:P2"]
    assert answer["meta"]["sources"]["parkings"]["stale"] is True
    await asyncio.to_thread(redis_server.start)
    upstream.route("/p.json", Reply(body=V2))
    await until(lambda: _has_p3(api))
    late = cluster("api")
    await until(lambda: ready(late))
    assert await records(late) == await records(api)
    assert poller.popen.poll() is None


async def test_a_late_api_process_serves_the_current_data_at_once(cluster):
    """An API process started after the data loaded is ready with it straight away."""
    cluster("poller")
    first = cluster("api")
    await until(lambda: ready(first))
    late = cluster("api")
    await until(lambda: ready(late))
    assert await records(late) == ["parkings:P1", "parkings:P2"]


async def test_workers_share_one_port_and_one_poller(tmp_path, cluster, upstream):
    """serve --workers 2 starts two API processes on one port plus one poller."""
    config = next(tmp_path.glob("beffroi.yaml"))
    port = free_port()
    parent = subprocess.Popen(  # noqa: ASYNC220 - a process to supervise, not to wait on here
        [
            sys.executable,
            "-m",
            "aggregator.cli",
            "--log-level",
            "WARNING",
            "serve",
            "-c",
            str(config),
            "--workers",
            "2",
            "--port",
            str(port),
        ],
        cwd=ROOT,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        await until(lambda: _answers(base + "/readyz"))
        await until(lambda: _ready_to_stop(parent))  # one answering is not all three up
        polls, elapsed = await polls_over(upstream, at_least=3.0, polls=2)
        assert polls <= elapsed + 2, (polls, elapsed)  # one poller, not three
        async with httpx.AsyncClient(timeout=30) as client:
            body = (await client.get(base + RECORDS)).json()
        assert [r["id"] for r in body["data"]] == ["parkings:P1", "parkings:P2"]
    finally:
        parent.send_signal(signal.SIGTERM)
        try:
            # Waited in a thread: a blocking wait here would freeze this loop, and with it the
            # upstream the poller may be reading from while it stops.
            code = await asyncio.to_thread(parent.wait, 30)
        finally:
            kill_tree(parent)  # only when the stop failed: nothing is left running
    assert code == 0


async def test_sighup_to_the_supervisor_reloads_every_worker(tmp_path, cluster, upstream):
    """`kill -HUP` on `serve --workers` (systemd's ExecReload) used to kill the supervisor
    without a word, leaving its workers orphaned and nothing reloaded. It is forwarded to every
    process: a source added to the file appears on every worker, and supervision goes on."""
    config = next(tmp_path.glob("beffroi.yaml"))
    upstream.route("/q.json", Reply(body=V1))
    port = free_port()
    log = tmp_path / "supervisor.log"
    with log.open("w") as sink:
        parent = subprocess.Popen(  # noqa: ASYNC220 - a process to supervise, not to wait on here
            [*SERVE, "-c", str(config), "--workers", "2", "--port", str(port)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    async def source_ids() -> list[set[str]]:
        seen = []
        for _ in range(8):  # a new connection each time: the kernel spreads them over workers
            async with httpx.AsyncClient(timeout=30) as client:
                body = (await client.get(base + "/v1/sources")).json()
            seen.append({s["id"] for s in body["data"]})
        return seen

    try:
        await until(lambda: _answers(base + "/readyz"))
        # A worker ignores SIGHUP until its reload handler is in place (see aggregator.workers).
        await until(lambda: _ready_to_stop(parent))
        await until(lambda: _catch_sighup(parent))
        config.write_text(
            config.read_text()
            + f"""  - id: second
    type: json_records
    url: {upstream.url("/q.json")}
    refresh: 1s
    retries: 0
    id_field: code
"""
        )
        parent.send_signal(signal.SIGHUP)

        async def everywhere() -> bool:
            return all(ids == {"parkings", "second"} for ids in await source_ids())

        await until(everywhere)
        await until(lambda: _answers(base + "/v1/sources/second/records"))
        assert parent.poll() is None, "the supervisor must survive SIGHUP"
        # Still supervising: a second reload is forwarded too. Waited for in its log, not for
        # a fixed time: a SIGTERM that came before the supervisor acted on the SIGHUP would
        # rightly stop it without forwarding the reload.
        parent.send_signal(signal.SIGHUP)
        await until(lambda: _logged(log, RELOAD_LINE, 2))
        assert parent.poll() is None
    finally:
        parent.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(parent.wait, 30)
        finally:
            kill_tree(parent)
    output = log.read_text()
    assert output.count(RELOAD_LINE) == 2
    assert code == 0


async def _answers(url: str) -> bool:
    async with httpx.AsyncClient(timeout=30) as client:
        return (await client.get(url)).status_code == 200


async def _logged(log: Path, text: str, count: int) -> bool:
    return (await asyncio.to_thread(log.read_text)).count(text) >= count


async def test_a_worker_that_does_not_stop_is_killed_with_a_reason(tmp_path, cluster, upstream):
    """A stop waited forever on a process that never ended (a rolling restart, or systemd's
    stop, hung with nothing in the log). A worker frozen with SIGSTOP cannot act on the
    SIGTERM forwarded to it: the supervisor kills it once its shutdown timeout and the margin
    have passed, names it in an error line, and exits non-zero."""
    config = next(tmp_path.glob("beffroi.yaml"))
    config.write_text(config.read_text().replace("server:\n", "server:\n  shutdown_timeout: 1s\n"))
    port = free_port()
    log = tmp_path / "supervisor.log"
    with log.open("w") as sink:
        parent = subprocess.Popen(  # noqa: ASYNC220 - a process to supervise, not to wait on here
            [*SERVE, "-c", str(config), "--workers", "2", "--port", str(port)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        await until(lambda: _answers(f"http://127.0.0.1:{port}/readyz"))
        # Every child must be a running worker with its SIGTERM handler before one is frozen
        # (one just exited, not yet reaped, is still listed; one still starting dies of the
        # SIGTERM).
        await until(lambda: _ready_to_stop(parent))
        children = children_of(parent.pid)
        assert len(children) == 3
        frozen = children[0]
        os.kill(frozen, signal.SIGSTOP)
        started = asyncio.get_running_loop().time()
        parent.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(parent.wait, 60)
        took = asyncio.get_running_loop().time() - started
    finally:
        kill_tree(parent)
    output = log.read_text()
    assert code == 1, output
    assert (
        f"(pid {frozen}) did not stop within its shutdown timeout + {KILL_AFTER_S:.0f} s; "
        "killing it" in output
    ), output
    assert took >= 1 + KILL_AFTER_S - 1  # the others stopped at once; the frozen one was waited for
    assert _gone(frozen)  # killed and reaped by the supervisor, not left orphaned


async def _ready_to_stop(parent: subprocess.Popen[bytes]) -> bool:
    """Whether the supervisor's three processes all have their SIGTERM handler: stopped
    earlier, one still starting ends by the signal itself, and the graceful stop under test
    would not be exercised."""
    return all_children_catch(parent.pid, 3)


async def _catch_sighup(parent: subprocess.Popen[bytes]) -> bool:
    return all_children_catch(parent.pid, 3, signal.SIGHUP)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_stop_asked_while_the_workers_start_is_a_clean_stop(tmp_path, cluster):
    """SIGTERM as soon as the supervisor listens for it: workers still importing have no
    handler yet and end by the signal itself. That is the stop that was asked for, not a
    failure (exit 1 made `systemctl stop` just after a start look like a crash)."""
    config = next(tmp_path.glob("beffroi.yaml"))
    parent = subprocess.Popen(  # noqa: ASYNC220 - a process to supervise, not to wait on here
        [*SERVE, "-c", str(config), "--workers", "2", "--port", str(free_port())],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await until(lambda: _catches_sigterm(parent.pid))
        parent.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(parent.wait, 60) == 0
    finally:
        kill_tree(parent)


async def _catches_sigterm(pid: int) -> bool:
    return catches(pid, signal.SIGTERM)


async def test_a_worker_ended_by_someone_else_at_start_is_a_failure(tmp_path, cluster):
    """A SIGTERM the supervisor did not send (an operator's `kill` of the wrong pid) ends a
    worker still starting: that early death stops everything, and the exit status says it
    failed, so that systemd's `Restart=on-failure` restarts the service."""
    config = next(tmp_path.glob("beffroi.yaml"))
    log = tmp_path / "supervisor.log"
    with log.open("w") as sink:
        parent = subprocess.Popen(  # noqa: ASYNC220 - a process to supervise, not to wait on here
            [*SERVE, "-c", str(config), "--workers", "2", "--port", str(free_port())],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not children_of(parent.pid):
            assert loop.time() < deadline, "the supervisor started no worker"
            await asyncio.sleep(0.005)
        os.kill(children_of(parent.pid)[0], signal.SIGTERM)
        code = await asyncio.to_thread(parent.wait, 60)
    finally:
        kill_tree(parent)
    output = log.read_text()
    assert "exited at once" in output, output
    assert code == 1

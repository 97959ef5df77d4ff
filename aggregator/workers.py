"""``beffroi serve --workers N``: several API processes on one port, one poller beside them.

aiohttp uses one core per process; to use more, N processes listen on the same port
(SO_REUSEPORT: the kernel spreads connections among them) and follow the shared Redis
store, while one process polls — never a scheduler inside every web worker (APScheduler
in N workers would poll every source N times). This parent only supervises: it restarts a
worker that dies, forwards SIGTERM/SIGINT for a graceful stop, and forwards SIGHUP so that
every process reloads the configuration file (as ``systemctl reload`` expects).

A stop is bounded: a process still running ``KILL_AFTER_S`` after its own shutdown
timeout (the requests under way have had their time) is killed with one error line naming
it, and the supervisor exits non-zero. Waiting for it forever left a rolling restart, or
systemd's stop, hanging on one stuck process with nothing in the log.

A child starts with SIGHUP ignored and installs its reload handler once its event loop runs:
without that, a reload asked in the second between a child's start and its handler would
kill it (SIGHUP's default action), and the supervisor would take the early death for a
broken configuration and stop everything.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from types import FrameType

from aggregator.config.models import BeffroiConfig
from aggregator.stop_report import KILL_AFTER_S

#: Where the Prometheus client keeps per-process values in its multiprocess mode.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger(__name__)

#: A worker dying sooner than this after its start is not restarted in a loop.
MIN_UPTIME_S = 5.0
#: Exit codes of a child that the supervisor's stop reached while it was still starting: it
#: had no handler yet and ended by the signal itself, which is the stop asked for
#: (`systemctl stop` just after a start is not a failure). From any other sender, a failure.
STOPPED_BY_SIGNAL = {-signal.SIGTERM, -signal.SIGINT}


def _command(args: argparse.Namespace, role: str) -> list[str]:
    command = [sys.executable, "-m", "aggregator.cli", "--log-level", args.log_level]
    command += ["--log-format", args.log_format, "serve"]
    command += ["-c", str(args.config), "--role", role, "--reuse-port"]
    if args.host:
        command += ["--host", args.host]
    if args.port:
        command += ["--port", str(args.port)]
    return command


def _ignore_hangup_until_ready() -> None:
    """Runs in the child before exec: an ignored signal stays ignored across exec."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _start(args: argparse.Namespace, role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(_command(args, role), env=env, preexec_fn=_ignore_hangup_until_ready)


@contextlib.contextmanager
def _shared_metrics_dir() -> Iterator[dict[str, str]]:
    """The children's environment, with a folder where the Prometheus client of each keeps
    its counters, so that a scrape landing on any worker sums them all (see
    aggregator.metrics). One the operator set is used as is; ours goes when we stop."""
    env = dict(os.environ)
    if env.get(MULTIPROCESS_ENV):
        yield env
        return
    folder = tempfile.mkdtemp(prefix="beffroi-metrics-")
    env[MULTIPROCESS_ENV] = folder
    try:
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_workers(args: argparse.Namespace, config: BeffroiConfig) -> int:
    if config.store.backend != "redis":
        print(
            "beffroi: --workers needs `store: {backend: redis, url: ...}` so that the "
            "processes share their data",
            file=sys.stderr,
        )
        return 2
    roles = ["api"] * args.workers + (["poller"] if args.role == "all" else [])
    if args.role == "poller":
        roles = ["poller"]
    with _shared_metrics_dir() as env:
        return _supervise(args, roles, env, stop_within=config.server.shutdown_timeout)


def _supervise(
    args: argparse.Namespace, roles: list[str], env: dict[str, str], *, stop_within: float
) -> int:
    children: list[tuple[str, subprocess.Popen[bytes], float]] = [
        (role, _start(args, role, env), time.monotonic()) for role in roles
    ]
    stopping = False
    reloads_asked = 0
    crashed = False
    #: The children this supervisor's stop was sent to while they ran.
    signalled: set[int] = set()

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for _role, child, _started in children:
            if child.poll() is None:
                signalled.add(child.pid)
                child.send_signal(signum)

    def reload(_signum: int, _frame: FrameType | None) -> None:
        nonlocal reloads_asked
        reloads_asked += 1  # acted on in the loop: no logging inside a signal handler

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    log.info("supervising %d processes: %s", len(children), ", ".join(roles))
    while not stopping:
        time.sleep(0.5)
        if reloads_asked and not stopping:
            reloads_asked = 0
            _forward_reload(children)
        for index, (role, child, started) in enumerate(children):
            code = child.poll()
            if code is None or stopping:
                continue
            if time.monotonic() - started < MIN_UPTIME_S:
                log.error("the %s process exited at once (code %s); stopping", role, code)
                crashed = True
                stop(signal.SIGTERM, None)
                break
            log.warning("the %s process exited (code %s); starting another", role, code)
            children[index] = (role, _start(args, role, env), time.monotonic())
    deadline = time.monotonic() + stop_within + KILL_AFTER_S
    failed = crashed
    for role, child, _started in children:
        code = _wait_or_kill(role, child, deadline)
        failed |= code != 0 and not (code in STOPPED_BY_SIGNAL and child.pid in signalled)
    return 1 if failed else 0


def _wait_or_kill(role: str, child: subprocess.Popen[bytes], deadline: float) -> int:
    try:
        return child.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        log.error(
            "the %s process (pid %d) did not stop within its shutdown timeout + %.0f s; "
            "killing it (its log says which step it was waiting for)",
            role,
            child.pid,
            KILL_AFTER_S,
        )
        child.kill()
        return child.wait()


def _forward_reload(children: list[tuple[str, subprocess.Popen[bytes], float]]) -> None:
    """SIGHUP to every live child; each validates the file itself and logs the outcome."""
    alive = [(role, child) for role, child, _started in children if child.poll() is None]
    log.info(
        "SIGHUP: asking %d processes to reload the configuration (%s)",
        len(alive),
        ", ".join(f"{role} pid {child.pid}" for role, child in alive),
    )
    for _role, child in alive:
        child.send_signal(signal.SIGHUP)

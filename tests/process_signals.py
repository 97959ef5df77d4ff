"""What a test can learn of its child processes from /proc (Linux): their children, and
whether one has installed its handler for a signal yet.

A process asked to stop before its event loop has installed its SIGTERM handler dies of the
signal's default action, and one that has just exited is still listed until reaped: a test
of a graceful stop must wait until every child catches SIGTERM, not only for one worker to
answer, or a loaded machine fails it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def children_of(pid: int) -> list[int]:
    """The direct children of ``pid``, lowest first."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children)


def catches(pid: int, signum: int = signal.SIGTERM) -> bool:
    """Whether ``pid`` has a handler installed for ``signum`` (false once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (signum - 1) & 1)


def all_children_catch(pid: int, count: int, signum: int = signal.SIGTERM) -> bool:
    """Whether ``pid`` has ``count`` children, each with its handler for ``signum``."""
    children = children_of(pid)
    return len(children) == count and all(catches(child, signum) for child in children)


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """Kill a supervisor and its children (a test's ``finally``): killing the supervisor alone
    leaves its workers running, orphaned, on their ports."""
    if process.poll() is not None:
        return
    children = children_of(process.pid)
    process.kill()
    process.wait()
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)  # a stopped (SIGSTOP) process dies of it too

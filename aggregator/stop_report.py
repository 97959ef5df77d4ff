"""Saying what a stop is waiting for, when it takes too long.

A process asked to stop finishes its requests (up to the shutdown timeout), then stops its
sources. When something there never returns, the supervisor of ``serve --workers`` kills the
process after a margin (see :mod:`aggregator.workers`), and systemd does the same after its own
timeout; either way the on-call person is left with a kill and no reason. Shortly before that,
this logs where each pending task and each other thread is: a function name and a line, never
a value, so nothing secret can reach the log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import traceback
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

#: Frames shown per task or thread: the innermost ones, where it waits.
FRAMES = 4
#: The standard library's and the installed packages' files, from their package on.
_LIBRARY = re.compile(r"/lib/python\d+\.\d+/(?:site-packages/)?(.+)$")
#: How long past its shutdown timeout a stopping process says what it waits for...
REPORT_AFTER_S = 5.0
#: ...and how long past it the supervisor of ``serve --workers`` kills it (later, so that the
#: report is in the log first).
KILL_AFTER_S = 10.0


def report_after(delay_s: float) -> asyncio.TimerHandle:
    """Log what the process is waiting for if it is still stopping in ``delay_s`` seconds.

    The timer lives on the loop, not in a task: it fires during ``asyncio.run``'s own last
    steps too (tasks cancelled, the default thread pool joined), which is where a thread
    that never returns keeps a process alive."""
    return asyncio.get_running_loop().call_later(delay_s, _report, delay_s)


def _report(delay_s: float) -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    threads = {t.ident: t.name for t in threading.enumerate() if t is not threading.main_thread()}
    lines = [f"task {task.get_name()}: {_where(_await_chain(task.get_coro()))}" for task in tasks]
    frames = sys._current_frames()  # the only way to see where another thread is
    for ident, name in threads.items():
        frame = frames.get(ident) if ident is not None else None
        if frame is not None:
            lines.append(f"thread {name}: {_where(_frame_chain(frame))}")
    log.error(
        "still stopping after %.0f s; waiting for %d task(s) and %d thread(s):\n  %s",
        delay_s,
        len(tasks),
        len(threads),
        "\n  ".join(lines) or "no task or thread (the event loop's own last steps)",
    )


def _await_chain(coro: Coroutine[Any, Any, Any] | Any) -> list[FrameType]:
    """The frames of a coroutine and of each coroutine it awaits, outermost first."""
    frames: list[FrameType] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def _frame_chain(frame: FrameType) -> list[FrameType]:
    """A thread's frames, outermost first."""
    return list(_walk_back(frame))[::-1]


def _walk_back(frame: FrameType | None) -> Iterator[FrameType]:
    while frame is not None:
        yield frame
        frame = frame.f_back


def _where(frames: list[FrameType]) -> str:
    if not frames:
        return "(not started)"
    innermost = frames[-FRAMES:]
    summary = traceback.StackSummary.extract(
        ((frame, frame.f_lineno) for frame in innermost), capture_locals=False, lookup_lines=False
    )
    return " > ".join(f"{at.name} ({_short(at.filename)}:{at.lineno})" for at in summary)


def _short(filename: str) -> str:
    """A path from the package on: ``aggregator/poller.py``, ``asyncio/locks.py``,
    ``redis/asyncio/client.py``; the last two parts of any other."""
    library = _LIBRARY.search(filename)
    if library is not None:
        return library.group(1)
    at = filename.rfind("/aggregator/")
    if at >= 0:
        return filename[at + 1 :]
    return "/".join(filename.split("/")[-2:])

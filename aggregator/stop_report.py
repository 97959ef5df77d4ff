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
import gc
import inspect
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
#: How deep an await chain is followed at most.
MAX_DEPTH = 200
#: Where a coroutine, generator or async generator keeps its frame, and what it awaits.
_FRAME = ("cr_frame", "gi_frame", "ag_frame")
_AWAITS = ("cr_await", "gi_yieldfrom", "ag_await")
#: The objects an ``async for`` awaits: one step of an async generator.
_GENERATOR_STEPS = {"async_generator_asend", "async_generator_athrow"}
#: The standard library's and the installed packages' files, from their package on.
_LIBRARY = re.compile(r"/lib/python\d+\.\d+/(?:site-packages/)?(.+)$")
#: How long past its shutdown timeout a stopping process says what it waits for: after the
#: steps a normal stop may take besides the requests (up to 2 s for connections just accepted
#: to send their request, ``serving.FIRST_REQUEST_GRACE_S``; up to 5 s for the notifier's
#: round in flight, ``notify.service.STOP_GRACE_S``) and a margin for closing the rest...
REPORT_AFTER_S = 10.0
#: ...and how long past it the supervisor of ``serve --workers`` kills it (later, so that the
#: report is in the log first). A service manager's own stop timeout must exceed
#: ``shutdown_timeout`` plus this (``TimeoutStopSec`` in docs/deploy/beffroi.service).
KILL_AFTER_S = 20.0


def report_after(delay_s: float) -> asyncio.TimerHandle:
    """Log what the process is waiting for if it is still stopping in ``delay_s`` seconds.

    The timer lives on the loop, not in a task: it fires during ``asyncio.run``'s own last
    steps too (tasks cancelled, the default thread pool joined), which is where a thread
    that never returns keeps a process alive."""
    return asyncio.get_running_loop().call_later(delay_s, _report, delay_s)


def _report(delay_s: float) -> None:
    try:
        _log_what_is_pending(delay_s)
    except Exception as exc:  # the report must not be lost to asyncio's "exception in callback"
        log.error(
            "still stopping after %.0f s (could not list what it waits for: %r)", delay_s, exc
        )


def _log_what_is_pending(delay_s: float) -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    threads = {t.ident: t.name for t in threading.enumerate() if t is not threading.main_thread()}
    lines = [f"task {task.get_name()}: {where_task_waits(task)}" for task in tasks]
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


def where_task_waits(task: asyncio.Task[Any]) -> str:
    """Where a pending task waits: function and line of its innermost frames."""
    return _where(_await_chain(task.get_coro()))


def _await_chain(coro: Coroutine[Any, Any, Any] | Any) -> list[FrameType]:
    """The frames of a coroutine and of each coroutine (or async generator) it awaits,
    outermost first."""
    frames: list[FrameType] = []
    for _depth in range(MAX_DEPTH):
        if coro is None:
            break
        frame = next((getattr(coro, a) for a in _FRAME if getattr(coro, a, None)), None)
        if frame is not None:
            frames.append(frame)
        awaited = next((getattr(coro, a) for a in _AWAITS if getattr(coro, a, None)), None)
        if awaited is None and type(coro).__name__ in _GENERATOR_STEPS:
            awaited = _generator_of(coro)
        coro = awaited
    return frames


def _generator_of(step: Any) -> Any:
    """The async generator an ``async for`` step is running (redis-py's ``listen()``, say):
    the step object has no attribute naming it, only a reference the collector knows."""
    return next((ref for ref in gc.get_referents(step) if inspect.isasyncgen(ref)), None)


def _frame_chain(frame: FrameType) -> list[FrameType]:
    """A thread's frames, outermost first."""
    return list(_walk_back(frame))[::-1]


def _walk_back(frame: FrameType | None) -> Iterator[FrameType]:
    while frame is not None:
        yield frame
        frame = frame.f_back


def _where(frames: list[FrameType]) -> str:
    """The innermost frames, where it waits, after the innermost of ours when that is deeper
    out (a wait deep in a library says little without the call of ours that led there)."""
    if not frames:
        return "(not started)"
    innermost = frames[-FRAMES:]
    ours = [frame for frame in frames[:-FRAMES] if _is_ours(frame.f_code.co_filename)]
    shown = ([ours[-1]] if ours else []) + innermost
    summary = traceback.StackSummary.extract(
        ((frame, frame.f_lineno) for frame in shown), capture_locals=False, lookup_lines=False
    )
    parts = [f"{at.name} ({_short(at.filename)}:{at.lineno})" for at in summary]
    if ours:
        parts.insert(1, "…")
    return " > ".join(parts)


def _is_ours(filename: str) -> bool:
    return "/aggregator/" in filename or "/connectors/" in filename


def _short(filename: str) -> str:
    """A path from the package on: ``aggregator/poller.py``, ``asyncio/locks.py``,
    ``redis/asyncio/client.py``; the last two parts of any other."""
    library = _LIBRARY.search(filename)
    if library is not None:
        return library.group(1)
    for package in ("/aggregator/", "/connectors/"):
        at = filename.rfind(package)
        if at >= 0:
            return filename[at + 1 :]
    return "/".join(filename.split("/")[-2:])

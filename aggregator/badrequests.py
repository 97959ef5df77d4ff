"""One short log line per malformed HTTP request, and a summary instead of a flood.

aiohttp logs a request it cannot parse (garbage, a TLS hello on the HTTP port, a bad header)
as "Error handling request" with a full traceback at ERROR: some 700 bytes that say nothing
an operator can act on, and a scanner sends thousands. :class:`MalformedRequestLog`, a filter
on aiohttp's ``aiohttp.server`` logger, turns each such record into one line at INFO (client
address, what was wrong, the client's bytes left out) for the first ``lines_per_window`` of
a window, then counts the rest and logs one summary line when the window ends (or the process
stops). Records about other errors (a handler bug) pass unchanged, traceback and all.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["LINES_PER_WINDOW", "WINDOW_S", "MalformedRequestLog", "describe"]

log = logging.getLogger(__name__)

#: Malformed requests logged one by one per window; the rest go into the window's summary.
LINES_PER_WINDOW = 10
WINDOW_S = 60.0
#: Distinct client addresses counted by name in a window (more are counted as "others"), so
#: a flood from many addresses cannot grow memory.
MAX_ADDRESSES = 256
#: How much of aiohttp's description of the problem a line keeps.
MAX_WHAT = 80

# aiohttp's messages quote the offending bytes after a colon (b'...', bytearray(b'...')).
_QUOTED_BYTES = re.compile(r":?\s*(?:bytearray\(|b['\"]).*$")


def describe(exc: HttpProcessingError) -> str:
    """What was wrong, in aiohttp's words, without the client's bytes and on one line."""
    first = (exc.message or "").split("\n", 1)[0]
    what = _QUOTED_BYTES.sub("", first).rstrip(" :.") or type(exc).__name__
    what = "".join(c if c.isprintable() else "?" for c in what)
    if len(what) > MAX_WHAT:
        what = what[: MAX_WHAT - 1] + "…"
    return f"{what} ({type(exc).__name__})"


class MalformedRequestLog(logging.Filter):
    """Rewrites aiohttp's malformed-request records; see the module docstring."""

    LOGGER = "aiohttp.server"

    def __init__(
        self,
        *,
        lines_per_window: int = LINES_PER_WINDOW,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.lines_per_window = lines_per_window
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._seen = 0
        self._suppressed: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def install(cls) -> MalformedRequestLog:
        """Put one instance on aiohttp's server logger (replacing an earlier one)."""
        logger = logging.getLogger(cls.LOGGER)
        for earlier in [f for f in logger.filters if isinstance(f, cls)]:
            earlier.flush()
            logger.removeFilter(earlier)
        instance = cls()
        logger.addFilter(instance)
        atexit.register(instance.flush)  # a process stopping mid-window still says how many
        return instance

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        remote = str(args[0]) if args else "an unknown address"
        with self._lock:
            now = self._clock()
            if self._window_start is not None and now - self._window_start >= self.window_s:
                self._flush_locked()
            if self._window_start is None:
                self._window_start = now
            self._seen += 1
            if self._seen > self.lines_per_window:
                self._count(remote)
                self._schedule_flush(self._window_start + self.window_s - now)
                return False
        record.msg = "malformed HTTP request from %s: %s"
        record.args = (remote, describe(error))
        record.exc_info = record.exc_text = record.stack_info = None
        # aiohttp logs a stray TLS hello at DEBUG on purpose; everything else goes down to INFO.
        record.levelno = min(record.levelno, logging.INFO)
        record.levelname = logging.getLevelName(record.levelno)
        return logging.getLogger(record.name).isEnabledFor(record.levelno)

    def flush(self) -> None:
        """Log the current window's summary now, if requests went uncounted, and start anew."""
        with self._lock:
            self._flush_locked()

    def _count(self, remote: str) -> None:
        if remote in self._suppressed or len(self._suppressed) < MAX_ADDRESSES:
            self._suppressed[remote] += 1
        else:
            self._suppressed["other addresses"] += 1

    def _schedule_flush(self, delay: float) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not in the event loop: the next record or the process's exit flushes
        self._timer = loop.call_later(max(delay, 0.0), self.flush)

    def _flush_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        total = sum(self._suppressed.values())
        if total and self._window_start is not None:
            elapsed = max(self._clock() - self._window_start, 0.0)
            span = min(elapsed, self.window_s)
            top = ", ".join(f"{who} ({n})" for who, n in self._suppressed.most_common(3))
            more = len(self._suppressed) - 3
            log.info(
                "%d more malformed HTTP requests in the last %.0f s, from %s%s",
                total,
                max(span, 1.0),
                top,
                f" and {more} more addresses" if more > 0 else "",
            )
        self._window_start = None
        self._seen = 0
        self._suppressed = Counter()

"""Failed admin authentications counted per client, so the admin token cannot be guessed fast.

After ``server.admin_max_failures`` failures from one client within ``admin_failure_window``
(from its first failure), every admin call from that client is refused with ``429`` and
``Retry-After`` until the window ends, a right token included: answering a right guess
differently would let the guessing go on at full speed. This holds whether or not the
general rate limit is on.

Counted per process (each API process keeps its own counts): behind N processes a client gets
at most N times the allowance, still a few guesses a minute against a long random token. The
counters are bounded: a window that has ended is forgotten, and past ``max_clients`` the
oldest windows go first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

#: Clients whose failures are remembered at most (about 200 bytes each).
MAX_CLIENTS = 10_000
#: Ended windows dropped per call at most (the sweep stays cheap on any one request).
_SWEEP_PER_CALL = 8


class AdminFailures:
    """Failures per client address, in fixed windows starting at a client's first failure."""

    def __init__(
        self, *, max_clients: int = MAX_CLIENTS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_clients = max_clients
        self._clock = clock
        #: client -> (failures, window start), oldest window first.
        self._windows: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def retry_after(self, client: str, limit: int, window_s: float) -> int | None:
        """Seconds until ``client`` may try again, None when it may now."""
        now = self._clock()
        self._forget_ended(now, window_s)
        failures, start = self._windows.get(client, (0, now))
        if failures < limit or start + window_s <= now:
            return None
        return max(1, math.ceil(start + window_s - now))

    def failed(self, client: str, window_s: float) -> None:
        """Count one failure of ``client``."""
        now = self._clock()
        windows = self._windows
        failures, start = windows.get(client, (0, now))
        if start + window_s <= now:
            failures, start = 0, now
        if failures == 0:
            windows.pop(client, None)
            while len(windows) >= self.max_clients:
                windows.popitem(last=False)
        windows[client] = (failures + 1, start)  # a new window goes to the end

    def _forget_ended(self, now: float, window_s: float) -> None:
        windows = self._windows
        for _ in range(_SWEEP_PER_CALL):
            if not windows:
                return
            client, (_, start) = next(iter(windows.items()))
            if start + window_s > now:
                return
            del windows[client]


ADMIN_FAILURES_KEY = web.AppKey("beffroi.admin_failures", AdminFailures)

"""The time Beffroi answers for: the system clock, a frozen instant, or a replayed one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Gives "now" for the data's point of view (departures, events), always aware.

    Polling, staleness and logs use the real time whatever this says: a demo replaying
    2023 data still polls on today's schedule.
    """

    def __init__(self, *, fixed: datetime | None = None, start: datetime | None = None) -> None:
        for value in (fixed, start):
            if value is not None and value.tzinfo is None:
                raise ValueError("a clock instant needs a UTC offset")
        if fixed is not None and start is not None:
            raise ValueError("a clock is either fixed or started, not both")
        self._fixed = fixed
        self._start = start
        self._started_at = time.monotonic()

    @property
    def is_system(self) -> bool:
        return self._fixed is None and self._start is None

    def now(self) -> datetime:
        if self._fixed is not None:
            return self._fixed
        if self._start is not None:
            return self._start + timedelta(seconds=time.monotonic() - self._started_at)
        return datetime.now(UTC)

    def describe(self) -> str:
        if self._fixed is not None:
            return f"fixed at {self._fixed.isoformat()}"
        if self._start is not None:
            return f"replaying from {self._start.isoformat()}"
        return "system clock"

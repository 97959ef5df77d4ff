"""The time Beffroi answers for: the system clock, or a fixed instant for replays and demos."""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    """Gives the current instant; a fixed clock makes demo data and tests reproducible."""

    def __init__(self, fixed: datetime | None = None) -> None:
        if fixed is not None and fixed.tzinfo is None:
            raise ValueError("a fixed clock needs a timezone-aware datetime")
        self._fixed = fixed

    @property
    def is_fixed(self) -> bool:
        return self._fixed is not None

    def now(self) -> datetime:
        """The current instant, always timezone-aware (UTC unless fixed otherwise)."""
        return self._fixed if self._fixed is not None else datetime.now(UTC)

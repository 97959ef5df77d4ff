"""The values that flow from a connector to the API: parse results and versioned snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a connector's pure ``parse`` step returns for one upstream payload.

    ``issues`` are problems with individual rows or entities that were skipped; a
    payload that cannot be used at all raises an exception instead.
    """

    data: Any
    record_count: int
    issues: tuple[str, ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)
    #: How many issues there were in all, when ``issues`` keeps only the first few.
    issue_total: int | None = None

    @property
    def issue_count(self) -> int:
        return self.issue_total if self.issue_total is not None else len(self.issues)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One successfully parsed state of a source, as served by the API.

    ``version`` grows by one each time the content changes; indexes are rebuilt per
    version, and ETags derive from it.
    """

    source_id: str
    source_type: str
    version: int
    content_hash: str
    fetched_at: datetime
    data: Any
    record_count: int
    issues: tuple[str, ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """Announces that ``source_id`` now has snapshot ``version``.

    The in-memory store hands the snapshot itself along; a shared store announces
    only the version and listeners load it.
    """

    source_id: str
    version: int
    snapshot: Snapshot | None = None

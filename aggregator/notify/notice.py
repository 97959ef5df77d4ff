"""What a connector type says subscribers should be told, before it is addressed to anyone.

A connector type lists the notices its current snapshot states (every active alert, every
agenda item) with :meth:`~aggregator.connector.Connector.notices`; the key of a notice changes
with its content, so "new or changed" is "a key not recorded before" (see
:mod:`aggregator.notify.storage`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

NoticeKind = Literal["alert", "agenda", "cancellation", "news", "waste"]
#: What a deep link points to (a template of ``notifications.deep_links``).
LinkKind = Literal["line", "stop", "alert", "event", "news", "trip"]
#: The longest title and body a notification carries (a lock screen shows less).
MAX_TITLE = 80
MAX_BODY = 240


@dataclass(frozen=True, slots=True)
class DeepLink:
    """What a notification may link to, filled into the deployment's template of its kind."""

    kind: LinkKind
    id: str
    #: A trip's service day (YYYY-MM-DD), for the trip template's ``{date}``.
    date: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    key: str
    kind: NoticeKind
    #: Topic index keys (``line:<id>``, ``stop:<id>``, ``agenda``, ``agenda:<category>``,
    #: ``news:<category>``, ``news@<source>``, ``news@<source>:<category>``, ``waste:<zones>``).
    topics: tuple[str, ...]
    #: Stable across content versions (an alert's id): a newer version replaces the older
    #: one on the push service and on the device.
    collapse: str
    urgency: Literal["very-low", "low", "normal", "high"]
    #: language → (title, body), in every message language.
    texts: Mapping[str, tuple[str, str]]
    #: By preference: the first whose kind the deployment has a template for.
    links: tuple[DeepLink, ...]
    #: The id of the alert or agenda item, as the API names it.
    subject: str
    #: Queued too for whoever follows its topics after it was first recorded, once each
    #: (reminders; see :class:`aggregator.notify.storage.Change`).
    late_subscribers: bool = False


@dataclass(frozen=True, slots=True)
class TimedNotices:
    """Notices that hold at one instant (a cancelled trip within the hour), and when that set
    may next change with time alone (POSIX seconds on the data's clock; None: not by time)."""

    notices: list[Notice]
    next_at: float | None


def content_key(prefix: str, content: Any) -> str:
    """``prefix`` plus a digest of ``content`` (JSON-able): the key of one content version."""
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}:{digest[:24]}"


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"

"""Service alerts as notices: one per alert content, for the lines and stops it names.

The key digests what a rider reads (texts, effect, periods, targets), not the poll: the same
alert polled a thousand times is one notice; a changed text or period is a new one, collapsed
onto the older by the alert's id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aggregator.api.messages import MESSAGE_LANGUAGES
from aggregator.notify.notice import MAX_BODY, MAX_TITLE, DeepLink, Notice, content_key, shorten

if TYPE_CHECKING:
    from connectors.gtfs.timetable import Timetable

    from .connector import RealtimeData
    from .model import AlertRealtime

#: Title when an alert has no header text, by language.
_NO_HEADER = {"en": "Service alert", "fr": "Info trafic"}
#: Effects that stop or divert service: pushed with high urgency.
_URGENT_EFFECTS = frozenset({"no_service", "reduced_service", "detour", "stop_moved"})


def alert_notices(data: RealtimeData) -> list[Notice]:
    """A notice per alert of the state that names a line or stop of the timetable and is not
    over (a producer may keep an alert whose every period has ended: nobody needs it pushed)."""
    tt = data.timetable
    parts = data.state.parts
    notices = []
    for alert in data.state.alerts.values():
        part = parts.get(alert.source)
        if part is not None and _over(alert, part.as_of):
            continue
        notice = _notice(data.feed, tt, alert)
        if notice is not None:
            notices.append(notice)
    return notices


def _over(alert: AlertRealtime, now: float) -> bool:
    """Whether every active period of ``alert`` ended before ``now`` (the feed's own time)."""
    periods = alert.active_periods
    return bool(periods) and all(end is not None and end <= now for _, end in periods)


def _targets(feed: str, tt: Timetable, alert: AlertRealtime) -> tuple[list[str], list[str]]:
    lines: set[str] = set()
    stops: set[str] = set()
    for entity in alert.informed:
        if entity.route_id is not None and entity.route_id in tt.route_index:
            lines.add(entity.route_id)
        if entity.stop_id is not None and entity.stop_id in tt.stop_index:
            stops.add(entity.stop_id)
            parent = int(tt.stop_parent[tt.stop_index[entity.stop_id]])
            if parent >= 0:  # followers of the station hear about its platforms
                stops.add(tt.stop_ids[parent])
    return sorted(lines), sorted(stops)


def _notice(feed: str, tt: Timetable, alert: AlertRealtime) -> Notice | None:
    lines, stops = _targets(feed, tt, alert)
    if not lines and not stops:
        return None
    names = [
        tt.route_short_names[tt.route_index[r]] or tt.route_long_names[tt.route_index[r]]
        for r in lines
    ]
    label = ", ".join(n for n in names if n)
    texts: dict[str, tuple[str, str]] = {}
    for language in MESSAGE_LANGUAGES:
        header = alert.header.get(language) or _NO_HEADER[language]
        title = (
            f"{label} : {header}"
            if label and language == "fr"
            else (f"{label}: {header}" if label else header)
        )
        body = alert.description.get(language) or header
        texts[language] = (shorten(title, MAX_TITLE), shorten(body, MAX_BODY))
    subject = f"{feed}:{alert.alert_id}"
    content = {
        "header": alert.header.texts,
        "description": alert.description.texts,
        "effect": alert.effect,
        "cause": alert.cause,
        "severity": alert.severity,
        "periods": alert.active_periods,
        "lines": lines,
        "stops": stops,
    }
    return Notice(
        key=content_key(f"alert:{subject}", content),
        kind="alert",
        topics=tuple([f"line:{feed}:{r}" for r in lines] + [f"stop:{feed}:{s}" for s in stops]),
        collapse=f"alert:{subject}",
        urgency="high" if alert.effect in _URGENT_EFFECTS else "normal",
        texts=texts,
        links=(DeepLink("alert", subject),),
        subject=subject,
    )

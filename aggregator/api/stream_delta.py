"""What changed between two versions of a departure board, for ``board-delta`` stream events.

A phone following a stop gets the full board once, then only the departures added, removed
or changed, each departure named by a stable ``key`` (its trip, service date and stop, and
its scheduled time on frequency-based trips, whose one trip id runs many times a day). A
board that cannot be diffed (an error, a shape change) is sent whole again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Where a board keeps its departures: one list, or one list per line and direction.
DEPARTURES, GROUPS = "departures", "groups"


def departure_key(departure: dict[str, Any]) -> str:
    """The departure's stable key: the same departure keeps it from one board to the next,
    whatever its realtime times, status or vehicle."""
    stop = departure.get("stop") or {}
    key = f"{departure.get('trip_id')}@{departure.get('service_date')}@{stop.get('id')}"
    if departure.get("frequency") is not None:
        key += f"@{departure.get('scheduled_time')}"
    return key


def keyed(board: Any) -> Any:
    """``board`` with a ``key`` on every departure (a new object; ``board`` is shared)."""
    if not isinstance(board, dict):
        return board
    out = dict(board)
    if isinstance(board.get(DEPARTURES), list):
        out[DEPARTURES] = [_with_key(d) for d in board[DEPARTURES]]
    if isinstance(board.get(GROUPS), list):
        out[GROUPS] = [
            {**group, DEPARTURES: [_with_key(d) for d in group.get(DEPARTURES, [])]}
            for group in board[GROUPS]
        ]
    return out


def _with_key(departure: Any) -> Any:
    if not isinstance(departure, dict):
        return departure
    return {**departure, "key": departure_key(departure)}


def _departures(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if isinstance(board.get(DEPARTURES), list):
        yield from board[DEPARTURES]
    for group in board.get(GROUPS) or []:
        yield from group.get(DEPARTURES, [])


def _diffable(board: Any) -> bool:
    return isinstance(board, dict) and (DEPARTURES in board or GROUPS in board)


def board_delta(before: Any, after: Any) -> dict[str, Any] | None:
    """The change from ``before`` to ``after`` (both keyed boards), None when only a full
    board can say it (either is an error, or one is grouped and the other not).

    ``added`` and ``changed`` carry whole departures (with their key), ``removed`` the keys
    gone, ``order`` every key of ``after`` in its order (so a client need not re-sort), and
    ``fields`` the other members of the board whose value changed (``explanation``...).
    """
    if not (_diffable(before) and _diffable(after)):
        return None
    if (GROUPS in before) != (GROUPS in after):
        return None
    old = {d["key"]: d for d in _departures(before)}
    new = {d["key"]: d for d in _departures(after)}
    fields = {
        name: value
        for name, value in after.items()
        if name not in (DEPARTURES, GROUPS) and before.get(name) != value
    }
    fields |= {name: None for name in before if name not in after}
    return {
        "added": [d for k, d in new.items() if k not in old],
        "changed": [d for k, d in new.items() if k in old and old[k] != d],
        "removed": [k for k in old if k not in new],
        "order": list(new),
        "fields": fields,
    }

"""``include=references``: each line and stop of a transit answer sent once, by id.

A busy board repeats the same few lines and platforms in every departure; a vehicle list
repeats its lines; a trip's calls carry their stops. With ``include=references``, the items
name them by id (``line_id``, ``stop_id``; an alert's lists become ``line_ids`` and
``stop_ids``) and the answer gets one ``references`` member beside ``data``::

    {"data": ..., "references": {"lines": {id: LineSummary}, "stops": {id: Stop}}, "meta": ...}

holding every line and stop the items name, each once, as OneBusAway's ``references`` section
does. Without the parameter the answers are what they always were: a client opts in.

The items are built as usual, then rewritten here: one place decides which members become
ids, so every answer that offers it does it the same way. A stop id the timetable does not
know (a vehicle's ``stop_id`` from a feed that does not match its timetable) stays an id
without a reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aggregator.api import schemas as api_schemas
from aggregator.api.params import QueryParams
from aggregator.api.routing import Param
from aggregator.runtime import Runtime

from .views import stop_json, timetable_of

INCLUDE = Param(
    "include",
    "references: the items name their lines and stops by id (line_id, stop_id; an alert's "
    "line_ids, stop_ids), and the answer's references member gives each line and stop once "
    "(references.lines, references.stops, keyed by id). Default: every item carries them "
    "whole.",
    api_schemas.choice(["references"]),
)


def wants_references(params: QueryParams) -> bool:
    """``include=references`` asked (any other value is a 400 naming the accepted one)."""
    return params.choice("include", ("references",), "") == "references"


def _renamed(item: Mapping[str, Any], key: str, new_key: str, value: Any) -> dict[str, Any]:
    """``item`` with ``key`` replaced by ``new_key: value`` at the same place (the order a
    reader expects stays)."""
    return {(new_key if k == key else k): (value if k == key else v) for k, v in item.items()}


class References:
    """The lines and stops one answer names, collected while its items are rewritten."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lines: dict[str, Any] = {}
        self._stop_ids: set[str] = set()

    # --- one member -----------------------------------------------------------------------

    def _line(self, item: Mapping[str, Any], key: str = "line") -> dict[str, Any]:
        line = item.get(key)
        line_id = None
        if isinstance(line, Mapping):
            line_id = line["id"]
            self._lines.setdefault(line_id, dict(line))
        return _renamed(item, key, "line_id", line_id)

    def _stop(self, item: Mapping[str, Any], key: str = "stop") -> dict[str, Any]:
        stop = item.get(key)
        stop_id = None
        if isinstance(stop, Mapping):
            stop_id = stop["id"]
            self._stop_ids.add(stop_id)
        return _renamed(item, key, "stop_id", stop_id)

    def note_stop(self, stop_id: str | None) -> None:
        """A stop an item already names by id (a vehicle's ``stop_id``)."""
        if stop_id:
            self._stop_ids.add(stop_id)

    # --- the answers ----------------------------------------------------------------------

    def departures(self, departures: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [self._stop(self._line(d)) for d in departures]

    def board(self, board: Mapping[str, Any]) -> dict[str, Any]:
        """A stop's board (flat or grouped), or a nearby board: its own ``stop`` stays whole
        (it is the subject, said once), its departures and groups name lines and stops."""
        out = dict(board)
        stop = out.get("stop")
        if isinstance(stop, Mapping) and "lines" in stop:  # a nearby board's stop
            line_ids = []
            for line in stop["lines"]:
                self._lines.setdefault(line["id"], dict(line))
                line_ids.append(line["id"])
            out["stop"] = _renamed(stop, "lines", "line_ids", line_ids)
        if "departures" in out:
            out["departures"] = self.departures(out["departures"])
        if "groups" in out:
            out["groups"] = [
                {**self._line(group), "departures": self.departures(group["departures"])}
                for group in out["groups"]
            ]
        return out

    def trip(self, trip: Mapping[str, Any]) -> dict[str, Any]:
        out = self._line(trip)
        out["calls"] = [self._stop(call) for call in trip["calls"]]
        vehicle = trip.get("vehicle")
        if isinstance(vehicle, Mapping):
            self.note_stop(vehicle.get("stop_id"))
        return out

    def vehicle(self, vehicle: Mapping[str, Any]) -> dict[str, Any]:
        self.note_stop(vehicle.get("stop_id"))
        return self._line(vehicle)

    def alert(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        line_ids = []
        for line in alert["lines"]:
            self._lines.setdefault(line["id"], dict(line))
            line_ids.append(line["id"])
        stop_ids = [stop["id"] for stop in alert["stops"]]
        self._stop_ids.update(stop_ids)
        out = _renamed(alert, "lines", "line_ids", line_ids)
        return _renamed(out, "stops", "stop_ids", stop_ids)

    def json(self) -> dict[str, Any]:
        """``{"lines": {id: line}, "stops": {id: stop}}``, sorted by id (a stable ETag)."""
        stops: dict[str, Any] = {}
        for stop_id in sorted(self._stop_ids):
            feed, _, native = stop_id.partition(":")
            tt = timetable_of(self._runtime, feed)
            index = tt.stop_index.get(native) if tt is not None else None
            if tt is not None and index is not None:
                stops[stop_id] = stop_json(feed, tt, index, lines=False)
        return {"lines": dict(sorted(self._lines.items())), "stops": stops}


#: The ``references`` member's schema (a component: ``References``).
SCHEMA = api_schemas.obj(
    {
        "lines": api_schemas.dictionary(
            api_schemas.ref("LineSummary"), "Every line the items name, by its id."
        ),
        "stops": api_schemas.dictionary(
            api_schemas.ref("Stop"),
            "Every stop the items name that the timetable knows, by its id (without its lines).",
        ),
    },
    ["lines", "stops"],
    title="References",
    description="With include=references: each line and stop the answer's items name by id, once.",
)

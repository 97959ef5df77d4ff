"""Why a part of a composed answer (``/v1/home``) shows what it shows: one reason code.

An app must tell "nothing here now" (a healthy source has nothing) from "we cannot know" (the
source fails, is out of date, or does not exist): "Trafic normal" is only true when the alerts
part says ``empty``. :func:`part_reason` judges a part from the ``meta.sources`` entries of the
sources behind it, the same entries the answer's ``meta`` carries (one freshness truth), so a
part never calls fresh what ``meta`` calls stale. Any part added to the home screen calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from aggregator.api.messages import PART_REASONS, coded
from aggregator.api.schemas import array_of, enum, nullable, obj, ref


class PartReason(StrEnum):
    """The reason code of a part (``reason.code``)."""

    #: Items are shown and every source behind them is current.
    OK = "ok"
    #: Nothing to show, and every source behind the part is current: truly nothing now.
    EMPTY = "empty"
    #: No configured source provides this part.
    NO_SOURCE = "no_source"
    #: A source behind the part has not finished its first poll yet.
    LOADING = "loading"
    #: A source behind the part fails and has never given data.
    FAILING = "failing"
    #: A source behind the part serves data that is out of date (see its ``stale_reason``).
    STALE = "stale"
    #: This server does not serve the endpoint the part comes from.
    NOT_SERVED = "not_served"
    #: The part could not be computed (its endpoint answered an error).
    FAILED = "failed"


#: Source states whose data may be shown as current.
_USABLE = frozenset({"ok", "degraded"})


def judge_part(
    freshness: Mapping[str, Mapping[str, Any] | None], has_items: bool
) -> tuple[PartReason, list[str]]:
    """The code of a part, and the ids of the sources that decided it.

    ``freshness`` maps each source behind the part to its ``meta.sources`` entry (None when
    the source is unknown). The worst source decides: one that fails with nothing loaded,
    then one that is stale, then one still loading; when every source is current, the part
    is ``ok`` or ``empty`` and names them all.
    """
    if not freshness:
        return PartReason.NO_SOURCE, []
    by_state: dict[str, list[str]] = {}
    for source_id, fresh in sorted(freshness.items()):
        state = "never_loaded" if fresh is None else str(fresh.get("state"))
        if fresh is not None and fresh.get("stale"):
            state = "stale"
        by_state.setdefault(state, []).append(source_id)
    if set(by_state) <= _USABLE:
        return (PartReason.OK if has_items else PartReason.EMPTY), sorted(freshness)
    for state, reason in (
        ("failing", PartReason.FAILING),
        ("stale", PartReason.STALE),
        ("never_loaded", PartReason.LOADING),
    ):
        if state in by_state:
            return reason, by_state[state]
    return PartReason.FAILED, sorted(freshness)


def reason_json(code: PartReason, sources: list[str], language: str) -> dict[str, Any]:
    """``{code, message, sources}``: the code, its text in ``language``, the sources."""
    return {**coded(PART_REASONS, code.value, language), "sources": sources}


def part_json(
    items: list[Any],
    freshness: Mapping[str, Mapping[str, Any] | None],
    language: str,
) -> dict[str, Any]:
    """A part as ``/v1/home`` shows it: ``{items, reason, unavailable}``.

    ``unavailable`` (the reason without its sources, null when there are items) is kept for
    clients written before ``reason``.
    """
    code, sources = judge_part(freshness, bool(items))
    return unavailable_part(code, sources, language, items)


def unavailable_part(
    code: PartReason, sources: list[str], language: str, items: list[Any] | None = None
) -> dict[str, Any]:
    """A part with ``code`` (``not_served`` or ``failed`` parts have no items)."""
    reason = reason_json(code, sources, language)
    return {
        "items": items or [],
        "reason": reason,
        "unavailable": None if items else {"code": reason["code"], "message": reason["message"]},
    }


PART_REASON_SCHEMA = obj(
    {
        "code": enum(code.value for code in PartReason),
        "message": {"type": "string"},
        "sources": array_of({"type": "string"}),
    },
    ["code", "message", "sources"],
    title="PartReason",
    description="Why a part shows what it shows; sources: the ids that decided it (all of "
    "them for ok and empty).",
)


def part_schema(items: Mapping[str, Any], *, title: str) -> dict[str, Any]:
    """The schema of one part; ``items`` is the schema of one item (the caller's)."""
    return obj(
        {
            "items": array_of(items),
            "reason": ref("PartReason"),
            "unavailable": nullable(ref("Unavailable")),
        },
        ["items", "reason", "unavailable"],
        title=title,
    )

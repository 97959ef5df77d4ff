"""The news and waste topics of a subscription: checked against the live data, and the index
keys they are found under.

``topics.news`` follows news categories (matched ignoring case and accents, stored folded as
the connector type gives them), ``topics.news_sources`` narrows them to some news sources (or,
alone, follows every item of those sources). ``topics.waste`` is a point ``{lat, lon}``: the
collection zones covering it are looked up once, when the subscription is made or changed,
and kept with it (``zones``); a point in no zone is refused.

Every refusal is a 400 problem naming the field, with a code of
:data:`aggregator.api.problem_texts.REASONS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from aggregator.api.problems import BadParameter

if TYPE_CHECKING:
    from aggregator.runtime import Runtime

#: The fields this module checks (``topics.<field>``).
EXTRA_TOPIC_FIELDS = ("news", "news_sources", "waste")
MAX_NEWS_CATEGORY_CHARS = 100
MAX_SOURCE_ID_CHARS = 100
#: News sources one subscription may name (each pairs with every followed category).
MAX_NEWS_SOURCES = 10
#: Prefix of the topic keys of followed waste zone sets.
WASTE_PREFIX = "waste:"
#: The most zones of one source a followed point is kept in (a zone per stream, borders).
MAX_WASTE_ZONES = 16


def zone_set_topic(source: str, zones: list[str]) -> str:
    """The topic key of a point lying in ``zones`` (native ids) of waste source ``source``."""
    return WASTE_PREFIX + source + ":" + orjson.dumps(sorted(set(zones))).decode()


def parse_zone_set(topic: str) -> tuple[str, list[str]] | None:
    """(source, zones) of a key made by :func:`zone_set_topic`; None for any other text."""
    if not topic.startswith(WASTE_PREFIX):
        return None
    source, sep, zones = topic[len(WASTE_PREFIX) :].partition(":")
    try:
        parsed = orjson.loads(zones) if sep else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or not all(isinstance(z, str) for z in parsed):
        return None
    return source, parsed


def news_key(category: str | None, source: str | None) -> str:
    """The topic key of the news in ``category`` (folded; None: every category) of ``source``
    (None: any source): ``news:<category>``, ``news@<source>:<category>`` or
    ``news@<source>``. Subscriptions follow these keys and news notices name them."""
    if source is None:
        return f"news:{category}"
    if category is None:
        return f"news@{source}"
    return f"news@{source}:{category}"


def news_topic_keys(categories: list[str], sources: list[str]) -> list[str]:
    """The keys a subscription to ``categories`` (folded) of ``sources`` follows: the
    categories of any source, all the sources' items, or the categories of those sources."""
    if not sources:
        return [news_key(c, None) for c in categories]
    if not categories:
        return [news_key(None, s) for s in sources]
    return [news_key(c, s) for s in sources for c in categories]


def waste_topic_keys(topics: Mapping[str, Any]) -> list[str]:
    """The zone set keys of the waste point of a stored subscription (none without one)."""
    waste = topics.get("waste")
    if not isinstance(waste, Mapping):
        return []
    by_source: dict[str, list[str]] = {}
    for qualified in waste.get("zones") or ():
        source, _, zone = str(qualified).partition(":")
        by_source.setdefault(source, []).append(zone)
    return [zone_set_topic(source, zones) for source, zones in sorted(by_source.items())]


def extra_topic_keys(topics: Mapping[str, Any]) -> list[str]:
    """The index keys of the news and waste topics of a stored subscription."""
    keys = news_topic_keys(topics.get("news") or [], topics.get("news_sources") or [])
    return keys + waste_topic_keys(topics)


def _strings(value: Any, field: str, max_chars: int, max_items: int) -> list[str]:
    if not isinstance(value, list):
        raise BadParameter(field, "topic_not_a_list")
    if len(value) > max_items:
        raise BadParameter(field, "list_too_long", maximum=max_items)
    out: list[str] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, str):
            raise BadParameter(where, "topic_not_a_string")
        if not item.strip():
            raise BadParameter(where, "empty")
        if len(item) > max_chars:
            raise BadParameter(where, "too_long", maximum=max_chars)
        out.append(item)
    return out


def _news_sources(runtime: Runtime) -> dict[str, Any]:
    """Loaded sources whose type knows news categories, with their snapshots."""
    found = {}
    for source_id in sorted(runtime.connectors):
        snapshot = runtime.live.snapshot(source_id)
        if snapshot is None:
            continue
        connector_type = runtime.connector_types.get(snapshot.source_type)
        is_news = connector_type is not None and connector_type.topic_key(
            runtime.live, snapshot, "news_source", ""
        )
        if is_news:
            found[source_id] = (connector_type, snapshot)
    return found


def check_news(topics: Mapping[str, Any], runtime: Runtime, budget: int) -> dict[str, Any]:
    """``{news, news_sources}`` as stored; ``budget``: topics left under ``max_topics``."""
    raw_sources = topics.get("news_sources", [])
    sources = _strings(raw_sources, "topics.news_sources", MAX_SOURCE_ID_CHARS, MAX_NEWS_SOURCES)
    raw_news = topics.get("news", [])
    categories = _strings(raw_news, "topics.news", MAX_NEWS_CATEGORY_CHARS, max(budget, 0))
    if not categories and not sources:
        return {"news": [], "news_sources": []}
    known = _news_sources(runtime)
    for index, source_id in enumerate(sources):
        if source_id not in known:
            raise BadParameter(
                f"topics.news_sources[{index}]", "news_source_unknown", value=source_id
            )
    searched = [known[s] for s in sources] if sources else list(known.values())
    folded: list[str] = []
    for index, category in enumerate(categories):
        key = next(
            (
                k
                for ct, snap in searched
                if (k := ct.topic_key(runtime.live, snap, "news_category", category))
            ),
            None,
        )
        if key is None:
            raise BadParameter(f"topics.news[{index}]", "news_category_unknown", value=category)
        if key not in folded:
            folded.append(key)
    unique_sources = list(dict.fromkeys(sources))
    pairs = len(folded) * len(unique_sources)
    if pairs > budget:
        raise BadParameter("topics.news_sources", "news_pairs_too_many", maximum=budget)
    return {"news": folded, "news_sources": unique_sources}


def _coordinate(value: Any, field: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadParameter(field, "not_a_number", value=str(value)[:40])
    number = float(value)
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise BadParameter(field, "out_of_range", minimum=-limit, maximum=limit, value=number)
    return number


def check_waste(value: Any, runtime: Runtime) -> dict[str, Any] | None:
    """``{lat, lon, zones}`` as stored (zones: ``source:zone`` ids), or None (no reminder)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadParameter("topics.waste", "waste_point_expected")
    for key in value:
        # zones: what a GET answered, sent back as is; looked up again from the point.
        if key not in ("lat", "lon", "zones"):
            where = f"topics.waste.{str(key)[:MAX_SOURCE_ID_CHARS]}"
            raise BadParameter(where, "unknown_parameter_accepted", accepted="lat, lon")
    if "lat" not in value or "lon" not in value:
        raise BadParameter("topics.waste", "waste_point_expected")
    lat = _coordinate(value["lat"], "topics.waste.lat", 90.0)
    lon = _coordinate(value["lon"], "topics.waste.lon", 180.0)
    zones: list[str] = []
    for source_id in sorted(runtime.connectors):
        snapshot = runtime.live.snapshot(source_id)
        if snapshot is None:
            continue
        connector_type = runtime.connector_types.get(snapshot.source_type)
        if connector_type is None:
            continue
        found = sorted(connector_type.zones_at(runtime.live, source_id, lat, lon))
        zones += [f"{source_id}:{zone}" for zone in found[:MAX_WASTE_ZONES]]
    if not zones:
        raise BadParameter("topics.waste", "waste_outside_zones")
    return {"lat": lat, "lon": lon, "zones": zones}


def check_extra_topics(topics: Mapping[str, Any], runtime: Runtime, budget: int) -> dict[str, Any]:
    """The news and waste topics of a request, checked (see the module's docstring)."""
    out = check_news(topics, runtime, budget)
    out["waste"] = check_waste(topics.get("waste"), runtime)
    return out


def follows_extra(topics: Mapping[str, Any]) -> bool:
    return bool(topics.get("news") or topics.get("news_sources") or topics.get("waste"))

"""What every bike source type shares: its records, index, endpoint and feed freshness."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aggregator.api.features_layers import FeatureKind
from aggregator.freshness import ContentStale, StaleReason, describe_age
from aggregator.model import Snapshot
from connectors.places.geo import PlaceIndex

from .model import BikeNetwork

#: The name of the per-snapshot index every bike source type builds.
INDEX_NAME = "bike_stations"


def build_index(snapshot: Snapshot) -> PlaceIndex:
    """The stations of one snapshot, ready for "nearest first" queries."""
    network: BikeNetwork = snapshot.data
    return PlaceIndex(network.stations)


class BikeSource:
    """Mixin of the connector types whose snapshots are a :class:`BikeNetwork`."""

    serves_bike_stations = True

    @classmethod
    def index_builders(cls) -> Mapping[str, Callable[[Snapshot], Any]]:
        return {INDEX_NAME: build_index}

    @classmethod
    def register_routes(cls, router: Any) -> None:
        from .routes import register_bike_routes

        register_bike_routes(router)

    @classmethod
    def feature_kind(cls) -> FeatureKind:
        from .features import BIKE_STATIONS

        return BIKE_STATIONS

    @classmethod
    def records(cls, snapshot: Snapshot) -> list[dict[str, Any]]:
        network: BikeNetwork = snapshot.data
        return network.stations

    @classmethod
    def live_status(cls, snapshot: Snapshot, now: datetime) -> Mapping[str, Any]:
        """The publisher's own freshness, added to the source's status."""
        network: BikeNetwork = snapshot.data
        age = network.feed_age_s(now)
        return {
            "feed_age_s": round(age, 1) if age is not None else None,
            "feed_stale": network.is_stale(now),
        }

    @classmethod
    def content_staleness(cls, snapshot: Snapshot, now: datetime) -> ContentStale | None:
        """Outdated when the publisher's ``last_updated`` is older than the source's
        ``max_age`` (or the feed's ttl, when longer)."""
        network: BikeNetwork = snapshot.data
        if not network.is_stale(now):
            return None
        age = network.feed_age_s(now) or 0.0
        limit = max(network.max_age_s, float(network.ttl_s or 0))
        return ContentStale(
            StaleReason.CONTENT_OUTDATED,
            f"the feed was last updated {describe_age(age)} ago (limit {describe_age(limit)})",
            network.last_updated,
        )

"""What every event connector type adds to the API: the combined event index and the
/v1/events, /v1/agenda and /v1/categories endpoints (registered once, whichever type
comes first)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aggregator.api.features_layers import FeatureKind
from aggregator.model import Snapshot

EVENT_TYPES = frozenset({"ics", "openagenda", "opendatasoft"})
INDEX_NAME = "events"


def build_event_index(snapshots: dict[str, Snapshot], previous: Any) -> Any:
    """One index over every event source, deduplicated across them."""
    from .index import EventIndex

    records = {source_id: snapshot.data for source_id, snapshot in snapshots.items()}
    index = EventIndex(records, built_at=datetime.now(UTC), previous=previous)
    index.generation = {source_id: s.version for source_id, s in snapshots.items()}
    return index


class EventSourceType:
    """Mixed into each event connector type, before the connector base class."""

    @classmethod
    def combined_indexes(cls) -> Mapping[str, tuple[frozenset[str], Any]]:
        return {INDEX_NAME: (EVENT_TYPES, build_event_index)}

    @classmethod
    def notices(cls, snapshot: Any) -> list[Any]:
        from .notices import agenda_notices

        return agenda_notices(snapshot.data if isinstance(snapshot.data, list) else ())

    @classmethod
    def register_routes(cls, router: Any) -> None:
        from .routes import register_event_routes

        register_event_routes(router)

    @classmethod
    def feature_kind(cls) -> FeatureKind:
        from .features import EVENTS

        return EVENTS

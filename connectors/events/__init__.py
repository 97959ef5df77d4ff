"""Event connectors (``ics``, ``openagenda``, ``opendatasoft``) and the event index.

Every type produces the same occurrence records (:mod:`.model`); :class:`EventIndex`
serves them to the ``/v1/events``, ``/v1/agenda`` and ``/v1/categories`` endpoints.
"""

from connectors.events.ics import IcsConfig, IcsConnector, expand_calendar
from connectors.events.index import EventIndex, EventPage, EventQuery, category_key
from connectors.events.model import ACCESSIBILITY_CODES, CHANNELS, STATUSES, make_occurrence
from connectors.events.openagenda import OpenAgendaConfig, OpenAgendaConnector, OpenAgendaError
from connectors.events.opendatasoft import (
    OpendatasoftConfig,
    OpendatasoftConnector,
    OpendatasoftError,
)

__all__ = [
    "ACCESSIBILITY_CODES",
    "CHANNELS",
    "STATUSES",
    "EventIndex",
    "EventPage",
    "EventQuery",
    "IcsConfig",
    "IcsConnector",
    "OpenAgendaConfig",
    "OpenAgendaConnector",
    "OpenAgendaError",
    "OpendatasoftConfig",
    "OpendatasoftConnector",
    "OpendatasoftError",
    "category_key",
    "expand_calendar",
    "make_occurrence",
]

"""What a handler returns; the conventions middleware turns it into a response."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiResult:
    """Data plus what the middleware needs to render it.

    ``sources`` are the ids of the sources the data came from: their freshness goes
    into ``meta`` and their refresh intervals into ``Cache-Control``.
    """

    data: Any
    sources: Sequence[str] = ()
    language: str | None = None
    #: False when some text of ``data`` is not in ``language`` (it says its own language, e.g.
    #: an event's ``text_languages``): no ``Content-Language`` then, which would claim it is.
    content_language: bool = True
    #: Paged answers always carry ``meta.next_cursor`` (null on the last page).
    paginated: bool = False
    next_cursor: str | None = None
    status: int = 200
    meta: dict[str, Any] = field(default_factory=dict)
    #: Seconds a client may reuse the answer; None derives it from the sources.
    max_age: int | None = None
    #: False for answers that must never be cached (health, readiness).
    cacheable: bool = True
    #: False to send ``data`` alone as the body (e.g. a GeoJSON FeatureCollection, which
    #: carries ``meta`` as a foreign member instead), with ``media_type``.
    enveloped: bool = True
    media_type: str = "application/json"
    #: The ``references`` member beside ``data`` (``include=references``: each line and stop
    #: the items name by id, once); None leaves it out.
    references: dict[str, Any] | None = None

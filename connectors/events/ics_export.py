"""``/v1/events.ics`` and ``/v1/agenda.ics``: the occurrences as a calendar to subscribe to.

A resident adds the URL to their phone once; the phone re-reads it now and then. So each
occurrence keeps its UID across refreshes (its occurrence id), says when it last changed
(``LAST-MODIFIED`` from the publisher's update time, and ``SEQUENCE`` derived from it, so that
it only ever grows), a cancelled occurrence stays in the calendar as ``STATUS:CANCELLED`` (a
phone removes or strikes it, rather than keeping a stale copy), and the time zone of the
deployment travels as a ``VTIMEZONE``. The calendar is written with the icalendar library
(folding, escaping); the tests read it back with icalendar and with the ``ical`` library in
strict mode.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from icalendar import Calendar, Event, vGeo

from aggregator import __version__
from aggregator.api.csv_export import Terms, add_licence_links, source_terms
from aggregator.api.i18n import negotiate_language
from aggregator.api.messages import EXPORT_TERMS, message
from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter
from aggregator.config.licences import SHARE_ALIKE
from aggregator.runtime import Runtime, runtime_of

from .index import EventIndex, EventQuery

#: Without from/to, a subscribed calendar shows the last week and the coming three months.
DEFAULT_PAST = dt.timedelta(days=7)
DEFAULT_FUTURE = dt.timedelta(days=90)
#: At most this many occurrences in one calendar (a phone would choke on more).
MAX_OCCURRENCES = 5000
PAGE = 100
#: RFC 5545 STATUS for each of our occurrence statuses.
ICS_STATUS = {
    "scheduled": "CONFIRMED",
    "rescheduled": "CONFIRMED",
    "moved_online": "CONFIRMED",
    "full": "CONFIRMED",
    "postponed": "TENTATIVE",
    "cancelled": "CANCELLED",
}
#: SEQUENCE counts minutes since this instant: it grows whenever the publisher's update
#: time does, and fits a 32-bit integer until well after 2100.
SEQUENCE_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def occurrences(index: EventIndex, query: EventQuery) -> Iterator[dict[str, Any]]:
    """Every occurrence the query matches, in start order, page after page."""
    after = None
    served = 0
    while served < MAX_OCCURRENCES:
        # A copy of the query for each page keeps its commune mask (``within``) with it.
        page = index.query(dataclasses.replace(query, after=after, limit=PAGE))
        for record, _distance in page.items:
            yield record
            served += 1
        if page.next_position is None:
            return
        after = page.next_position


def sources_of(record: Mapping[str, Any]) -> list[str]:
    """The sources of an occurrence: two when duplicates of two sources were merged."""
    return [s["source"] for s in record.get("sources") or []] or [record["source"]]


def terms_text(terms: Mapping[str, Terms], language: str) -> str | None:
    """ "Sources and their terms of reuse: ..." and, for share-alike licences (ODbL...), that
    what is derived from them must be shared alike; None when no source declares terms."""
    items = [
        ", ".join(part for part in (source, t.licence, t.attribution) if part)
        for source, t in terms.items()
        if t.licence or t.attribution
    ]
    if not items:
        return None
    text = message(EXPORT_TERMS, "terms", language, terms="; ".join(items))
    alike = [source for source, t in terms.items() if t.licence in SHARE_ALIKE]
    if alike:
        text += " " + message(EXPORT_TERMS, "share_alike", language, sources=", ".join(alike))
    return text


def calendar_of(
    records: Iterator[Mapping[str, Any]], *, name: str, zone: ZoneInfo, language: str
) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", f"-//Beffroi//{__version__}//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", zone.key)
    for record in records:
        calendar.add_component(_vevent(record, zone, language))
    calendar.add_missing_timezones()
    return calendar


def _vevent(record: Mapping[str, Any], zone: ZoneInfo, language: str) -> Event:
    event = Event()
    event.add("uid", record["id"])
    event.add("summary", _text(record["title"], language) or record["id"])
    if record["all_day"]:
        start = dt.date.fromisoformat(record["start_date"])
        end_date = record["end_date"]
        # DTEND of an all-day event is the day after the last one (RFC 5545, 3.6.1).
        end = dt.date.fromisoformat(end_date) + dt.timedelta(days=1) if end_date else None
        event.add("dtstart", start)
        if end is not None:
            event.add("dtend", end)
    else:
        event.add("dtstart", _local(record["start"], zone))
        if record["end"]:
            event.add("dtend", _local(record["end"], zone))
    event.add("status", ICS_STATUS.get(record["status"], "CONFIRMED"))
    updated = record.get("updated_at")
    if updated:
        modified = dt.datetime.fromisoformat(updated).astimezone(dt.UTC)
        event.add("last-modified", modified)
        event.add("dtstamp", modified)
        event.add("sequence", max(0, int((modified - SEQUENCE_EPOCH).total_seconds() // 60)))
    else:
        # DTSTAMP is required; without an update time, a fixed one keeps the entry stable.
        event.add("dtstamp", SEQUENCE_EPOCH)
        event.add("sequence", 0)
    description = _text(record["description"], language)
    if description:
        event.add("description", description)
    location = record.get("location") or {}
    where = ", ".join(
        str(location[key]) for key in ("name", "address", "city") if location.get(key)
    )
    if where:
        event.add("location", where)
    if location.get("lat") is not None and location.get("lon") is not None:
        event.add("geo", vGeo((location["lat"], location["lon"])))
    if record.get("url"):
        event.add("url", record["url"])
    if record.get("categories"):
        event.add("categories", list(record["categories"]))
    return event


def _local(value: str, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(zone)


def _text(texts: Mapping[str, str] | None, language: str) -> str | None:
    """The text in ``language``, else in any language the source gave."""
    if not texts:
        return None
    return texts.get(language) or next(iter(texts.values()))


def export_query(query: Mapping[str, str], runtime: Runtime, channel: str | None) -> EventQuery:
    """The JSON list's filters, with a calendar's default window and no page size."""
    from .routes import _query  # the same filters and checks as the JSON list

    for name in ("limit", "cursor", "sort", "sync", "updated_since"):
        if name in query:
            raise BadParameter(name, "not_in_calendar_export")
    params = QueryParams(query)
    start = params.datetime("from", runtime.clock.now() - DEFAULT_PAST, runtime.timezone)
    window = {"from": start.isoformat()}
    if "to" not in query:
        window["to"] = (start + DEFAULT_PAST + DEFAULT_FUTURE).isoformat()
    event_query, _scope = _query(QueryParams({**query, **window}), runtime, channel)
    return event_query


async def _export(request: web.Request, channel: str | None, name: str) -> web.Response:
    # The events' combined index and its commune filter, shared with the JSON routes.
    from .routes import _in_commune, _index

    runtime = runtime_of(request)
    language = negotiate_language(request, runtime.languages)
    query = export_query(request.query, runtime, channel)
    index = _index(runtime)
    records = (
        occurrences(index, _in_commune(query, runtime, index)) if index is not None else iter(())
    )
    used: dict[str, None] = {}

    def noting_sources() -> Iterator[Mapping[str, Any]]:
        for record in records:
            used.update(dict.fromkeys(sources_of(record)))
            yield record

    calendar = calendar_of(noting_sources(), name=name, zone=runtime.timezone, language=language)
    terms = source_terms(runtime, used)
    described = terms_text(terms, language)
    if described:
        # A saved calendar keeps no HTTP header: its description names the terms (RFC 7986's
        # DESCRIPTION, and X-WR-CALDESC, which more calendar apps show).
        calendar.add("description", described)
        calendar.add("x-wr-caldesc", described)
    response = web.Response(body=calendar.to_ical(), content_type="text/calendar", charset="utf-8")
    add_licence_links(response, terms.values())
    response.headers["Content-Language"] = language
    # Calendar apps re-read subscriptions every few hours at most; a short cache is enough.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


async def events_calendar(request: web.Request) -> web.Response:
    return await _export(request, None, "Events")


async def agenda_calendar(request: web.Request) -> web.Response:
    return await _export(request, "agenda", "Agenda")

"""The openagenda connector against a local server replaying real OpenAgenda v2 shapes."""

from __future__ import annotations

import copy

import orjson
import pytest
from upstream_server import Reply

from aggregator.fetch import Fetcher
from connectors.events.openagenda import OpenAgendaConfig, OpenAgendaConnector, OpenAgendaError
from events.helpers import FIXTURES, context

PATH = "/v2/agendas/41630080/events"
KEY = "oa_pk_secret_1234567890"


def real_event() -> dict:
    """The detailed event of the real fixture (Erwane/openagenda-api, MIT)."""
    return orjson.loads((FIXTURES / "events_event.json").read_bytes())["event"]


def listed_event() -> dict:
    """The event as it appears in a real list page."""
    return orjson.loads((FIXTURES / "events_events.json").read_bytes())["events"][0]


def page(events: list, after=None, **extra) -> Reply:
    body = {"total": len(events), "events": events, "after": after, "success": True} | extra
    return Reply(body=orjson.dumps(body), content_type="application/json")


def connector(upstream) -> OpenAgendaConnector:
    config = OpenAgendaConfig.model_validate(
        {
            "id": "oa",
            "type": "openagenda",
            "agenda_uid": "41630080",
            "api_key": KEY,
            "base_url": upstream.url("/v2"),
            "page_size": 1,
        }
    )
    return OpenAgendaConnector(config, context())


def second_event() -> dict:
    event = copy.deepcopy(real_event())
    event |= {"uid": 777, "title": {"fr": "Bal populaire"}, "status": 6}
    event["timings"] = [{"begin": "2025-07-14T21:00:00+02:00", "end": "2025-07-15T01:00:00+02:00"}]
    return event


async def test_first_load_pages_with_the_cursor_and_keeps_the_key_out_of_urls(upstream):
    """Two pages joined by the ``after`` cursor; the key travels in a header only."""
    upstream.route(
        PATH, [page([real_event()], after=[1736420010000, 9906334]), page([second_event()])]
    )
    oa = connector(upstream)
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        fetched = await oa.fetch(fetcher, None)
    requests = upstream.requests(PATH)
    assert len(requests) == 2
    assert all(r["key"] == KEY for r in requests)
    assert all(KEY not in str(r.query) for r in requests) and KEY not in fetched.url
    assert requests[0].query.getall("relative[]") == ["current", "upcoming"]
    assert requests[1].query.getall("after[]") == ["1736420010000", "9906334"]
    result = oa.parse(fetched.body)
    assert result.record_count == 3  # two timings of the real event, one of the second
    first = result.data[0]
    assert first["id"] == "oa:9906334:20250106T100000Z"
    assert first["title"] == {"en": "My event", "fr": "Mon évènement"}
    assert first["description"]["fr"] == "Description longue"
    assert first["start"] == "2025-01-06T11:00:00+01:00"
    assert first["timezone"] == "Europe/Paris"
    assert first["location"]["lat"] == 48.854969 and first["location"]["city"] == "Paris"
    assert first["accessibility"] == ["hearing", "mental"]
    assert first["age"] == {"min": 7, "max": 121}
    assert first["keywords"]["fr"] == ["mon", "évènement"]
    assert first["price"]["text"] == {"en": "price en", "fr": "price fr"}
    assert result.data[2]["status"] == "cancelled"
    assert result.stats["mode"] == "full"


async def test_incremental_sync_applies_updates_and_removals(upstream):
    """After a full load, a delta asks updatedAt[gte] with removed=null and applies tombstones."""
    upstream.route(
        PATH,
        [
            page([real_event(), second_event()]),
            page(
                [
                    {"uid": 777, "removed": True, "updatedAt": "2025-01-10T10:00:00.000Z"},
                    real_event() | {"status": 4, "updatedAt": "2025-01-10T10:00:00.000Z"},
                ]
            ),
        ],
    )
    oa = connector(upstream)
    oa.config = oa.config.model_copy(update={"page_size": 50})
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        await oa.fetch(fetcher, None)
        fetched = await oa.fetch(fetcher, None)
    delta = upstream.requests(PATH)[1].query
    assert delta["removed"] == "null"
    assert delta["sort"] == "updatedAt.asc"
    assert delta["updatedAt[gte]"].endswith("Z")
    result = oa.parse(fetched.body)
    assert {r["uid"] for r in result.data} == {"9906334"}
    assert {r["status"] for r in result.data} == {"postponed"}
    assert result.stats["mode"] == "incremental" and result.stats["removed"] == 1


async def test_list_page_shape_maps_too(upstream):
    """A real list-page event (no detailed fields, no timings) parses without error."""
    upstream.route(PATH, page([listed_event()]))
    oa = connector(upstream)
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        fetched = await oa.fetch(fetcher, None)
    result = oa.parse(fetched.body)
    assert result.issue_count == 0


async def test_error_page_is_a_clear_failure_and_keeps_the_previous_state(upstream):
    """``{"success": false}`` raises an OpenAgendaError; the merged set is left untouched."""
    upstream.route(
        PATH,
        [
            page([real_event()]),
            Reply(
                body=b'{"success": false, "message": "invalid key"}',
                content_type="application/json",
            ),
            page([]),
        ],
    )
    oa = connector(upstream)
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        await oa.fetch(fetcher, None)
        with pytest.raises(OpenAgendaError, match="invalid key"):
            await oa.fetch(fetcher, None)
        fetched = await oa.fetch(fetcher, None)
    assert oa.parse(fetched.body).record_count == 2
    assert KEY not in str(upstream.requests(PATH)[1].query)


async def test_html_error_page_is_a_clear_failure(upstream):
    """A proxy's HTML page instead of JSON is reported as such."""
    upstream.route(PATH, Reply(body=b"<html>maintenance</html>", content_type="text/html"))
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        with pytest.raises(OpenAgendaError, match="not JSON"):
            await connector(upstream).fetch(fetcher, None)

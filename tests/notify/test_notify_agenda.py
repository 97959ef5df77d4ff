"""Agenda items as notifications: an item added, then moved and cancelled, reaches the
followers of the agenda (and of its category) once per change, in their language."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.runtime import RUNTIME

CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Test//Council//FR
BEGIN:VEVENT
UID:conseil-2026-03@mairie.example
DTSTAMP:20260201T090000Z
DTSTART;TZID=Europe/Paris:{start}
DTEND;TZID=Europe/Paris:20260320T230000
SUMMARY:Conseil municipal
LOCATION:Hôtel de Ville
STATUS:{status}
END:VEVENT
END:VCALENDAR
"""


def calendar(start: str, status: str) -> Reply:
    text = CALENDAR.format(start=start, status=status)
    return Reply(body=text.replace("\n", "\r\n").encode())


async def test_agenda_items_added_changed_and_cancelled(database: str, upstream, push, vapid):
    upstream.route("/agenda.ics", calendar("20260319T180000", "CONFIRMED"))
    runtime = runtime_from(
        f"""
        clock: {{fixed: "2026-03-01T12:00:00+01:00"}}
        notifications:
          enabled: true
          database: {database}
          vapid_private_key: {vapid[0]}
          allow_private_push_endpoints: true
          interval: 0.2s
          deep_links: {{event: "https://app.city.example/agenda/{{id}}"}}
        connectors:
          - id: mairie
            type: ics
            channel: agenda
            categories: [conseil]
            url: "{upstream.url("/agenda.ics")}"
        """
    )
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        for name, topics, lang in (
            ("all", {"agenda": True}, "fr"),
            ("council", {"agenda": True, "categories": ["conseil"]}, "en"),
            ("sport", {"agenda": True, "categories": ["sport"]}, "fr"),
        ):
            answer = await client.post(
                "/v1/subscriptions",
                json={"target": push.target(name), "topics": topics, "lang": lang},
            )
            assert answer.status == 201, await answer.text()
        notifier = client.server.app[RUNTIME].notifier
        assert notifier is not None

        await runtime.poll_once("mairie")
        await eventually(lambda: len(push.messages("all")) == 1 and push.messages("council"))
        added = push.messages("all")[0].message
        assert added["kind"] == "agenda"
        assert added["title"] == "Agenda : Conseil municipal"
        assert added["body"] == "2026-03-19 18:00"
        assert added["url"].startswith("https://app.city.example/agenda/mairie%3Aconseil-2026-03")
        assert push.messages("council")[0].message["title"] == "Agenda: Conseil municipal"

        # Polled again unchanged: nothing new.
        await runtime.poll_once("mairie")
        await notifier.step()

        upstream.route("/agenda.ics", calendar("20260320T180000", "CANCELLED"))
        await runtime.poll_once("mairie")
        await eventually(lambda: len(push.messages("all")) == 2)
        cancelled = push.messages("all")[1]
        assert cancelled.message["body"] == "Annulé · 2026-03-20 18:00"
        assert cancelled.headers["urgency"] == "high"
        assert cancelled.headers["topic"] == push.messages("all")[0].headers["topic"]
        await eventually(lambda: len(push.messages("council")) == 2)
        assert push.messages("council")[1].message["body"] == "Cancelled · 2026-03-20 18:00"
        assert push.messages("sport") == []
        assert len(push.messages("all")) == 2

"""Sync tokens on /v1/events and /v1/agenda: real deltas, by content, paged, filtered.

The upstreams are real aiohttp servers on 127.0.0.1 serving the demo's real event data (the
Paris OpenAgenda export via Opendatasoft, the machBar calendar), changed between polls.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import CONNECTOR_TYPES, config_from, eventually, runtime_from, sync_all
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.runtime import Runtime

DATA = Path(__file__).parents[1] / "config" / "demo-data"
ICS = (DATA / "machbar-potsdam-2019.ics").read_text(encoding="utf-8")
PARIS = (DATA / "openagenda-paris-events-ods-v1.json").read_bytes()
SECRET = "test-cursor-secret-shared-by-processes"


def _config(upstream, store: str = "") -> str:
    return f"""
server:
  cursor_secret: {SECRET}
{store}
defaults:
  languages: [fr, en]
# The machBar calendar is of 2019: its one-off events are in the window of this clock.
clock:
  fixed: 2019-03-01T12:00:00+01:00
connectors:
  - id: paris-events
    type: opendatasoft
    export_url: {upstream.url("/paris.json")}
    timezone: Europe/Paris
  - id: machbar
    type: ics
    url: {upstream.url("/machbar.ics")}
"""


def _blocks(ics: str) -> tuple[str, list[str], str]:
    """The calendar split into its head, its VEVENT blocks and its tail."""
    head, _, rest = ics.partition("BEGIN:VEVENT")
    parts = ("BEGIN:VEVENT" + rest).split("END:VEVENT")
    events = [p + "END:VEVENT" for p in parts[:-1]]
    return head, events, parts[-1]


def _uid(block: str) -> str:
    found = re.search(r"^UID:(.+?)\r?$", block, re.M)
    assert found is not None
    return found.group(1).strip()


def _single_events(events: list[str]) -> list[str]:
    """The VEVENTs that are one occurrence on their own (no rule, no override of a series),
    between the clock and the end of the calendar's expansion window."""
    uids = [_uid(b) for b in events]

    def start(block: str) -> str:
        found = re.search(r"^DTSTART[^:]*:(\d{8})", block, re.M)
        return found.group(1) if found else ""

    return [
        b
        for b in events
        if "RRULE" not in b
        and "RECURRENCE-ID" not in b
        and uids.count(_uid(b)) == 1
        and "20190302" <= start(b) <= "20190801"
    ]


HEAD, EVENTS, TAIL = _blocks(ICS)
CHANGED, REMOVED = _single_events(EVENTS)[:2]
ADDED = CHANGED.replace(_uid(CHANGED), "sync-test-new-event@beffroi.test").replace(
    "SUMMARY:", "SUMMARY:Atelier Zeppelin "
)


def edited_ics() -> str:
    """The feed after an edit upstream: one event renamed, one removed, one added."""
    events = [
        b.replace("SUMMARY:", "SUMMARY:Renamed ") if b is CHANGED else b
        for b in EVENTS
        if b is not REMOVED
    ]
    return HEAD + "".join(events) + ADDED + TAIL


async def poll(runtime) -> None:
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()


async def sync(client, query: str, token: str = "start", limit: int = 100) -> dict:
    return await sync_all(client, "/v1/events", query, token, limit)


@pytest.fixture
async def served(upstream):
    upstream.route("/paris.json", Reply(body=PARIS, content_type="application/json"))
    upstream.route("/machbar.ics", Reply(body=ICS.encode(), content_type="text/calendar"))
    runtime = runtime_from(_config(upstream))
    await poll(runtime)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        yield runtime, client


def occurrences(runtime, uid: str) -> set[str]:
    index = runtime.live.combined("events")
    return {r["id"] for r in index.records if r.get("uid") == uid}


async def test_a_delta_shows_exactly_what_changed_upstream(served, upstream):
    """Start, then: identical content -> empty delta; one event added, one renamed, one
    removed upstream -> exactly those, with a tombstone for the removed one."""
    runtime, client = served
    start = await sync(client, "")
    assert set(start["changed"]) == {r["id"] for r in runtime.live.combined("events").records}
    assert start["removed"] == []
    # The same events again, in different bytes (the calendar's description changed):
    # a new snapshot, an index rebuilt, and no record changed.
    upstream.route(
        "/machbar.ics",
        Reply(body=ICS.replace("X-WR-CALNAME:", "X-WR-CALNAME:v2 ").encode()),
    )
    before = runtime.live.combined("events")
    await poll(runtime)
    assert runtime.live.combined("events") is not before  # a new index, the same records
    same = await sync(client, "", start["token"])
    assert same["changed"] == {} and same["removed"] == []

    removed = occurrences(runtime, _uid(REMOVED))
    renamed = occurrences(runtime, _uid(CHANGED))
    upstream.route("/machbar.ics", Reply(body=edited_ics().encode()))
    await poll(runtime)
    added = occurrences(runtime, "sync-test-new-event@beffroi.test")
    assert len(removed) == len(renamed) == len(added) == 1
    delta = await sync(client, "", same["token"])
    assert set(delta["changed"]) == renamed | added
    assert all("Renamed" in str(delta["changed"][i]["title"]) for i in renamed)
    assert delta["removed"] == [{"id": i, "reason": "deleted"} for i in sorted(removed)]
    # Nothing since: the new token's delta is empty.
    after = await sync(client, "", delta["token"])
    assert after["changed"] == {} and after["removed"] == []


async def test_a_sync_is_paged_with_the_token_on_the_last_page(served):
    """Small pages cover every occurrence once; only the last page carries the token."""
    _runtime, client = served
    whole = await sync(client, "")
    paged = await sync(client, "", limit=7)
    assert paged["pages"] == -(-len(whole["changed"]) // 7)
    assert paged["changed"].keys() == whole["changed"].keys()


async def test_a_sync_goes_with_a_place_and_a_text(served, upstream):
    """lat/lon/radius and q select what the list would; a record renamed out of q is a
    filtered_out tombstone for that client."""
    runtime, client = served
    where = "&lat=48.8566&lon=2.3522&radius=5000&q=exposition"
    window = "&from=2018-01-01T00:00:00Z&to=2018-12-31T00:00:00Z"
    listed = await client.get(f"/v1/events?limit=100{where}{window}")
    expected = {r["id"] for r in (await listed.json())["data"]}
    assert len(expected) > 1  # the Paris export has exhibitions in the centre
    synced = await sync(client, where + window)
    assert set(synced["changed"]) == expected

    word = "&q=zeppelin"  # only in the added event's title
    first = await sync(client, word)
    assert first["changed"] == {}
    upstream.route("/machbar.ics", Reply(body=edited_ics().encode()))
    await poll(runtime)
    added = occurrences(runtime, "sync-test-new-event@beffroi.test")
    assert added
    second = await sync(client, word, first["token"])
    assert set(second["changed"]) == added
    # Renamed back out of the filter: a tombstone saying so.
    upstream.route("/machbar.ics", Reply(body=edited_ics().replace("Zeppelin", "Ballon").encode()))
    await poll(runtime)
    third = await sync(client, word, second["token"])
    assert third["changed"] == {}
    assert third["removed"] == [{"id": i, "reason": "filtered_out"} for i in sorted(added)]


async def test_a_token_is_bound_to_its_filters_and_checked(served):
    """Another query, an altered token, the retired updated_since: 400s naming the parameter."""
    _runtime, client = served
    token = (await sync(client, "&q=concert"))["token"]
    for query, parameter in (
        (f"sync={token}&q=atelier", "sync"),
        (f"sync={token[:-2]}xx&q=concert", "sync"),
        ("sync=start&sort=distance&lat=48.85&lon=2.35", "sort"),
        ("updated_since=2000-01-01T00:00:00Z", "updated_since"),
    ):
        response = await client.get(f"/v1/events?{query}")
        assert response.status == 400, query
        assert (await response.json())["errors"][0]["parameter"] == parameter


async def test_a_token_of_a_forgotten_log_asks_for_a_full_resync(served, upstream):
    """A memory store does not outlive its process: a token of the old one is a 410
    sync_expired, in the asked language, telling the client to start again."""
    _runtime, client = served
    token = (await sync(client, ""))["token"]
    restarted = runtime_from(_config(upstream))
    await poll(restarted)
    async with TestClient(TestServer(create_app(restarted, poll=False))) as other:
        response = await other.get(f"/v1/events?sync={token}&lang=fr")
        assert response.status == 410
        problem = await response.json()
        assert problem["code"] == "sync_expired"
        assert "sync=start" in problem["detail"] and problem["detail_language"] == "fr"


async def test_the_agenda_syncs_its_own_channel(served):
    """/v1/agenda takes sync too; its token is not the events list's."""
    _runtime, client = served
    response = await client.get("/v1/agenda?sync=start")
    body = await response.json()
    assert response.status == 200 and body["data"] == {"changed": [], "removed": []}
    token = body["meta"]["sync_token"]
    assert (await client.get(f"/v1/events?sync={token}")).status == 400


def _caught_up(follower: Runtime, poller: Runtime) -> bool:
    return all(
        (mine := follower.live.snapshot(s)) is not None
        and mine.version == poller.live.snapshot(s).version  # type: ignore[union-attr]
        for s in poller.connectors
    )


async def test_with_redis_a_token_works_on_another_process_and_after_a_restart(
    upstream, redis_server
):
    """The change log lives in Redis: a token issued by one API process is answered by
    another, and by a process started after the first one stopped."""
    upstream.route("/paris.json", Reply(body=PARIS))
    upstream.route("/machbar.ics", Reply(body=ICS.encode()))
    text = _config(
        upstream, f"store:\n  backend: redis\n  url: {redis_server.url}\n  key_prefix: 'st:'"
    )
    poller = Runtime(config_from(text), CONNECTOR_TYPES)  # type: ignore[arg-type]
    api = Runtime(config_from(text), CONNECTOR_TYPES, role="api")  # type: ignore[arg-type]
    async with (
        TestClient(TestServer(create_app(poller, poll=False))) as first,
        TestClient(TestServer(create_app(api, poll=False))) as second,
    ):
        await poll(poller)
        await eventually(lambda: _caught_up(api, poller))
        await api.live.settled()
        token = (await sync(first, ""))["token"]
        same = await sync(second, "", token)
        assert same["changed"] == {} and same["removed"] == []

        removed = occurrences(poller, _uid(REMOVED))
        upstream.route("/machbar.ics", Reply(body=edited_ics().encode()))
        await poll(poller)
        await eventually(lambda: _caught_up(api, poller))
        await api.live.settled()
        delta = await sync(second, "", same["token"])
        added = occurrences(api, "sync-test-new-event@beffroi.test")
        assert removed and added
        assert set(delta["changed"]) == occurrences(api, _uid(CHANGED)) | added
        assert {r["id"] for r in delta["removed"]} == removed
        token = delta["token"]
    restarted = Runtime(config_from(text), CONNECTOR_TYPES, role="api")  # type: ignore[arg-type]
    async with TestClient(TestServer(create_app(restarted, poll=False))) as third:
        await restarted.live.settled()
        after = await sync(third, "", token)
        assert after["changed"] == {} and after["removed"] == []


async def test_with_the_memory_store_a_token_outlives_a_configuration_reload(served, upstream):
    """A reload keeps the store, so the change log: a token from before still works, and
    sources re-read with the same content change nothing."""
    from aggregator.reload import apply_config

    runtime, client = served
    token = (await sync(client, ""))["token"]
    text = _config(upstream).replace(
        "timezone: Europe/Paris\n", "timezone: Europe/Paris\n    title: Paris\n"
    )
    report = await apply_config(runtime, config_from(text))
    assert report.changed == ["paris-events"], report
    await poll(runtime)
    after = await sync(client, "", token)
    assert after["changed"] == {} and after["removed"] == []

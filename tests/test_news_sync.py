"""Sync tokens on /v1/news: real deltas over every feed, by content, paged, filtered.

The upstreams are real aiohttp servers on 127.0.0.1 serving real feeds
(tests/fixtures/news/PROVENANCE.md): The Guardian's RSS and a JSON Feed, the RSS edited
between polls as a council's web team would (an item renamed, one withdrawn, one added).
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

FIXTURES = Path(__file__).parent / "fixtures" / "news"
RSS = (FIXTURES / "guardian.rss").read_text(encoding="utf-8")
BLOG = (FIXTURES / "3960.json").read_bytes()
SECRET = "test-cursor-secret-shared-by-processes"
NEW_GUID = "https://www.theguardian.com/beffroi-test/2018/feb/01/new-item"


def _config(upstream, store: str = "") -> str:
    return f"""
server:
  cursor_secret: {SECRET}
{store}
defaults: {{timezone: Europe/Paris}}
clock: {{fixed: "2026-03-02T09:00:00+01:00"}}
connectors:
  - {{id: guardian, type: news, url: '{upstream.url("/guardian.rss")}'}}
  - {{id: blog, type: news, url: '{upstream.url("/blog.json")}'}}
"""


def _items(rss: str) -> tuple[str, list[str], str]:
    """The feed split into its head, its <item> blocks and its tail."""
    head, _, rest = rss.partition("<item>")
    parts = ("<item>" + rest).split("</item>")
    return head, [p + "</item>" for p in parts[:-1]], parts[-1]


def _guid(block: str) -> str:
    found = re.search(r"<guid[^>]*>([^<]+)</guid>", block)
    assert found is not None
    return found.group(1)


HEAD, ITEMS, TAIL = _items(RSS)
RENAMED, WITHDRAWN = ITEMS[3], ITEMS[4]
ADDED = re.sub(r"<guid[^>]*>[^<]+</guid>", f"<guid>{NEW_GUID}</guid>", ITEMS[5]).replace(
    "<title>", "<title>Zeppelin landing on the town square: "
)


def edited_rss(word: str = "Zeppelin") -> str:
    """The feed after an edit: one item renamed, one withdrawn, one added at the top."""
    items = [
        b.replace("<title>", "<title>Corrected: ") if b is RENAMED else b
        for b in ITEMS
        if b is not WITHDRAWN
    ]
    return HEAD + ADDED.replace("Zeppelin", word) + "".join(items) + TAIL


def news_id(guid: str) -> str:
    return f"guardian:{guid}"


async def poll(runtime) -> None:
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    await runtime.live.settled()


async def sync(client, query: str = "", token: str = "start", limit: int = 100) -> dict:
    return await sync_all(client, "/v1/news", query, token, limit)


def all_ids(runtime) -> set[str]:
    return {
        item["id"]
        for source in ("guardian", "blog")
        for item in runtime.live.snapshot(source).data["items"]
    }


@pytest.fixture
async def served(upstream):
    upstream.route("/guardian.rss", Reply(body=RSS.encode()))
    upstream.route("/blog.json", Reply(body=BLOG))
    runtime = runtime_from(_config(upstream))
    await poll(runtime)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        yield runtime, client


async def test_a_delta_shows_exactly_what_changed_upstream(served, upstream):
    """Start: every item of both feeds. The same items in other bytes: an empty delta. An
    item renamed, one withdrawn, one added upstream: exactly those, the withdrawn one as a
    tombstone; the new item is also served by /v1/news/{id}."""
    runtime, client = served
    start = await sync(client)
    assert set(start["changed"]) == all_ids(runtime) and len(start["changed"]) == 55 + 20
    assert start["removed"] == []
    assert "content_html" not in next(iter(start["changed"].values()))  # the list's shape

    # New bytes, same items: the channel's date moved.
    upstream.route("/guardian.rss", Reply(body=RSS.replace("20:15:15", "21:00:00").encode()))
    before = runtime.live.snapshot("guardian").version
    await poll(runtime)
    assert runtime.live.snapshot("guardian").version != before
    same = await sync(client, token=start["token"])
    assert same["changed"] == {} and same["removed"] == []

    upstream.route("/guardian.rss", Reply(body=edited_rss().encode()))
    await poll(runtime)
    delta = await sync(client, token=same["token"])
    renamed = news_id(_guid(RENAMED))
    assert set(delta["changed"]) == {renamed, news_id(NEW_GUID)}
    assert delta["changed"][renamed]["title"].startswith("Corrected: ")
    assert delta["removed"] == [{"id": news_id(_guid(WITHDRAWN)), "reason": "deleted"}]
    after = await sync(client, token=delta["token"])
    assert after["changed"] == {} and after["removed"] == []

    detail = await client.get(f"/v1/news/{news_id(NEW_GUID)}")
    assert detail.status == 200
    assert (await detail.json())["data"]["title"].startswith("Zeppelin landing")
    gone = await client.get(f"/v1/news/{news_id(_guid(WITHDRAWN))}")
    assert gone.status == 404


async def test_a_sync_is_paged_with_the_token_on_the_last_page(served):
    """Small pages cover every item once; only the last page carries the token."""
    _runtime, client = served
    whole = await sync(client)
    paged = await sync(client, limit=7)
    assert paged["pages"] == -(-len(whole["changed"]) // 7) == 11
    assert paged["changed"].keys() == whole["changed"].keys()


async def test_a_sync_goes_with_the_list_filters(served, upstream):
    """source, q and category select what the list would; an item renamed out of q is a
    filtered_out tombstone for that client."""
    runtime, client = served
    listed = await client.get("/v1/news?source=guardian&category=US%20news&limit=100")
    expected = {r["id"] for r in (await listed.json())["data"]}
    assert 1 < len(expected) < 55
    synced = await sync(client, "&source=guardian&category=US%20news")
    assert set(synced["changed"]) == expected

    word = "&q=zeppelin"
    first = await sync(client, word)
    assert first["changed"] == {}
    upstream.route("/guardian.rss", Reply(body=edited_rss().encode()))
    await poll(runtime)
    second = await sync(client, word, first["token"])
    assert set(second["changed"]) == {news_id(NEW_GUID)}
    # The renamed item changed outside the filter, the withdrawn one is gone: tombstones
    # the client drops if it has them (the log cannot tell what a client was sent).
    assert {(r["id"], r["reason"]) for r in second["removed"]} == {
        (news_id(_guid(RENAMED)), "filtered_out"),
        (news_id(_guid(WITHDRAWN)), "deleted"),
    }
    upstream.route("/guardian.rss", Reply(body=edited_rss("Balloon").encode()))
    await poll(runtime)
    third = await sync(client, word, second["token"])
    assert third["changed"] == {}
    assert third["removed"] == [{"id": news_id(NEW_GUID), "reason": "filtered_out"}]


async def test_tokens_are_checked_and_updated_since_points_to_sync(served):
    """Other filters, an altered token, another list's token, updated_since: 400s naming
    the parameter, with a stable code."""
    _runtime, client = served
    token = (await sync(client, "&q=trump"))["token"]
    places = await client.get("/v1/places?sync=start")  # no places source: an empty sync
    assert places.status == 200, await places.text()
    other = (await places.json())["meta"]["sync_token"]
    cases = [
        (f"sync={token}&q=memo", "sync", "sync_other_query"),
        (f"sync={token[:-3]}abc&q=trump", "sync", "sync_token_unknown"),
        ("sync=not-a-token", "sync", "sync_token_unknown"),
        ("updated_since=2018-01-01T00:00:00Z", "updated_since", "updated_since_replaced"),
        (f"sync={other}", "sync", "sync_other_query"),
    ]
    for query, parameter, code in cases:
        response = await client.get(f"/v1/news?{query}")
        assert response.status == 400, query
        error = (await response.json())["errors"][0]
        assert (error["parameter"], error["code"]) == (parameter, code), query


async def test_a_token_of_a_forgotten_log_asks_for_a_full_resync(served, upstream):
    """A memory store does not outlive its process: the old token is a 410 sync_expired."""
    _runtime, client = served
    token = (await sync(client))["token"]
    restarted = runtime_from(_config(upstream))
    await poll(restarted)
    async with TestClient(TestServer(create_app(restarted, poll=False))) as other:
        response = await other.get(f"/v1/news?sync={token}&lang=en")
        assert response.status == 410
        problem = await response.json()
        assert problem["code"] == "sync_expired" and "sync=start" in problem["detail"]


async def test_a_process_without_a_feed_others_have_asks_to_retry(served):
    """While this process lacks a feed whose status knows a snapshot (a process still
    catching up), a sync is a 503 sync_not_ready with Retry-After, not an answer without
    that feed's items; once it has it again, nothing changed."""
    runtime, client = served
    token = (await sync(client))["token"]
    snapshot = runtime.live.snapshot("blog")
    runtime.live.drop("blog")
    for query in ("sync=start", f"sync={token}"):
        response = await client.get(f"/v1/news?{query}")
        assert response.status == 503, query
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["code"] == "sync_not_ready"
    runtime.live.adopt(snapshot)
    after = await sync(client, token=token)
    assert after["changed"] == {} and after["removed"] == []


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
    another, and by a process started after both stopped."""
    upstream.route("/guardian.rss", Reply(body=RSS.encode()))
    upstream.route("/blog.json", Reply(body=BLOG))
    text = _config(
        upstream, f"store:\n  backend: redis\n  url: {redis_server.url}\n  key_prefix: 'ns:'"
    )
    poller = Runtime(config_from(text), CONNECTOR_TYPES)  # type: ignore[arg-type]
    api = Runtime(config_from(text), CONNECTOR_TYPES, role="api")  # type: ignore[arg-type]
    async with (
        TestClient(TestServer(create_app(poller, poll=False))) as first,
        TestClient(TestServer(create_app(api, poll=False))) as second,
    ):
        await poll(poller)
        await eventually(lambda: _caught_up(api, poller))
        token = (await sync(first))["token"]
        same = await sync(second, token=token)
        assert same["changed"] == {} and same["removed"] == []

        upstream.route("/guardian.rss", Reply(body=edited_rss().encode()))
        await poll(poller)
        await eventually(lambda: _caught_up(api, poller))
        delta = await sync(second, token=same["token"])
        assert set(delta["changed"]) == {news_id(_guid(RENAMED)), news_id(NEW_GUID)}
        assert delta["removed"] == [{"id": news_id(_guid(WITHDRAWN)), "reason": "deleted"}]
        # The first process answers the second one's token: nothing since.
        again = await sync(first, token=delta["token"])
        assert again["changed"] == {} and again["removed"] == []
        token = delta["token"]
    restarted = Runtime(config_from(text), CONNECTOR_TYPES, role="api")  # type: ignore[arg-type]
    async with TestClient(TestServer(create_app(restarted, poll=False))) as third:
        await eventually(lambda: _caught_up(restarted, poller))
        after = await sync(third, token=token)
        assert after["changed"] == {} and after["removed"] == []

"""The news connector type and /v1/news, on real feeds (tests/fixtures/news/PROVENANCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import CONNECTOR_TYPES, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from connectors.news.connector import NewsConnector

FIXTURES = Path(__file__).parent / "fixtures" / "news"
assert CONNECTOR_TYPES["news"] is NewsConnector  # registered through its entry point


def feed(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def config(upstream, *feeds: tuple[str, str]) -> str:
    entries = "".join(
        f"  - {{id: {source}, type: news, url: '{upstream.url('/' + name)}'}}\n"
        for source, name in feeds
    )
    return (
        "defaults: {timezone: Europe/Paris}\n"
        'clock: {fixed: "2026-03-02T09:00:00+01:00"}\n'
        f"connectors:\n{entries}"
    )


async def loaded(upstream, *feeds: tuple[str, str]):
    runtime = runtime_from(config(upstream, *feeds))
    for source, _name in feeds:
        outcome = (await runtime.poll_once(source)).outcome
        assert outcome == "changed", runtime.statuses[source].last_error
    return runtime


@pytest.fixture
async def served(upstream):
    for name in ("guardian.rss", "reddit-home.rss", "3960.json", "uolNoticias.rss"):
        upstream.route("/" + name, Reply(body=feed(name)))
    runtime = await loaded(
        upstream,
        ("guardian", "guardian.rss"),
        ("reddit", "reddit-home.rss"),
        ("blog", "3960.json"),
        ("uol", "uolNoticias.rss"),
    )
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        yield runtime, client


async def get_json(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


def items(runtime, source):
    return runtime.live.snapshot(source).data["items"]


async def test_rss_with_html_descriptions_is_sanitised_with_images_and_categories(served):
    """The Guardian's RSS: HTML descriptions become safe text, media:content the image."""
    runtime, _client = served
    title = "Trump State of the Union address promised unity but emphasized discord"
    first = next(i for i in items(runtime, "guardian") if i["title"] == title)
    assert "<" not in first["summary"] and first["summary"].startswith("The president’s")
    assert first["image"]["url"].startswith("https://i.guim.co.uk/img/media/")
    assert {"Donald Trump", "US news"} <= set(first["categories"])
    assert first["link"].startswith("https://www.theguardian.com/")
    assert first["published"] == "2018-01-31T07:26:05+00:00"
    assert len(items(runtime, "guardian")) == 55


async def test_atom_xhtml_content_keeps_safe_markup_only(served):
    """reddit's Atom: xhtml content, its table and images dropped, the links kept safe."""
    runtime, _client = served
    entry = items(runtime, "reddit")[0]
    assert entry["title"] == "How the British as seen by Americans and Europeans"
    html = entry["content_html"]
    assert '<a href="https://www.reddit.com/user/AngryRedditorsBelow"' in html
    assert "<table" not in html and "<img" not in html and "<div" not in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert entry["categories"] == ["/r/funny"]


async def test_json_feed_items_are_mapped(served):
    """A JSON Feed 1.1: id, image, tags, dates with their offset normalised to UTC."""
    runtime, _client = served
    first = items(runtime, "blog")[0]
    assert first["id"] == "blog:user/posts/2020-02-21-lecker-lecker/index.md"
    assert first["published"] == "2020-02-21T17:08:06+00:00"
    assert first["categories"] == ["Lustiges"]
    assert first["image"] == {"url": "https://cdn.3960.org/favicon-192x192.png", "type": None}
    assert runtime.live.snapshot("blog").stats["format"] == "jsonfeed"


async def test_a_feed_declared_utf8_but_written_in_windows_1252_reads_right(served):
    """UOL's feed says UTF-8 and is Windows-1252: the accents come out right, with an issue."""
    runtime, _client = served
    first = next(i for i in items(runtime, "uol") if i["title"].startswith("Ibope"))
    assert "simulações de 2º turno" in first["title"]
    # No guid and no date: ids are the hash of the link, stable from poll to poll.
    assert first["id"].startswith("uol:h") and first["published"] is None
    assert any("ill-formed" in issue for issue in runtime.statuses["uol"].issue_samples)


async def test_duplicate_guids_are_dropped_and_counted(upstream):
    """Taverncast's real podcast feed repeats a guid: one item kept, the repeat counted."""
    upstream.route("/taverncast.rss", Reply(body=feed("itunes-missing-image.rss")))
    runtime = await loaded(upstream, ("tavern", "taverncast.rss"))
    snapshot = runtime.live.snapshot("tavern")
    assert snapshot.stats["entries"] == 131 and snapshot.stats["duplicates"] == 1
    ids = [item["id"] for item in snapshot.data["items"]]
    assert len(ids) == len(set(ids)) == 130
    issues = runtime.statuses["tavern"].issue_samples
    assert any("repeat an earlier item's guid" in i and "geekistry-2.mp3" in i for i in issues)


async def test_conditional_get_and_a_broken_feed_keep_the_last_good_items(upstream):
    """A 304 keeps the items; a body that is no feed fails the poll, the items stay served."""
    headers = {"ETag": '"v1"'}
    upstream.route(
        "/news.xml",
        [
            Reply(body=feed("guardian.rss"), headers=headers),
            Reply(body=feed("guardian.rss"), headers=headers),
            Reply(body=feed("unrecognized.rss"), headers={"ETag": '"v2"'}),
        ],
    )
    runtime = await loaded(upstream, ("city", "news.xml"))
    assert (await runtime.poll_once("city")).outcome == "unchanged"
    assert upstream.requests("/news.xml")[1]["If-None-Match"] == '"v1"'
    result = await runtime.poll_once("city")
    assert result.outcome == "failed"
    status = runtime.statuses["city"]
    assert "not an RSS, Atom or JSON feed" in (status.last_error or "")
    assert len(items(runtime, "city")) == 55


async def test_news_newest_first_filtered_and_paged(served):
    """Newest first across sources; source, q (accent-insensitive), category, since, cursor."""
    _runtime, client = served
    body = await get_json(client, "/v1/news?limit=5")
    published = [i["published"] for i in body["data"]]
    assert published == sorted(published, reverse=True) and len(published) == 5
    assert body["data"][0]["source"] == "blog" and "content_html" not in body["data"][0]
    seen = {i["id"] for i in body["data"]}
    cursor = body["meta"]["next_cursor"]
    while cursor:
        page = await get_json(client, f"/v1/news?limit=5&cursor={cursor}")
        assert not seen & {i["id"] for i in page["data"]}
        seen |= {i["id"] for i in page["data"]}
        cursor = page["meta"]["next_cursor"]
    assert len(seen) == body["meta"]["total"] == 55 + 24 + 20 + 15

    found = await get_json(client, "/v1/news?q=simulacoes&source=uol")
    assert [i["source"] for i in found["data"]] == ["uol"]
    assert "simulações" in found["data"][0]["title"]
    funny = await get_json(client, "/v1/news?category=/r/funny")
    assert funny["data"] and all("/r/funny" in i["categories"] for i in funny["data"])
    recent = await get_json(client, "/v1/news?since=2018-01-31T00:00:00Z&limit=100")
    assert recent["data"] and all(i["published"] >= "2018-01-31" for i in recent["data"])


async def test_one_item_with_its_content_and_clear_errors(served):
    _runtime, client = served
    listing = await get_json(client, "/v1/news?source=reddit&limit=1")
    item_id = listing["data"][0]["id"]
    detail = await get_json(client, f"/v1/news/{item_id}")
    assert detail["data"]["id"] == item_id and "<a href=" in detail["data"]["content_html"]
    missing = await get_json(client, "/v1/news/reddit:nope", status=404)
    assert "reddit:nope" in missing["detail"]
    unknown = await get_json(client, "/v1/news?source=elsewhere", status=400)
    assert "elsewhere" in unknown["detail"]
    refused = await get_json(client, "/v1/news?page=2", status=400)
    assert "page" in refused["detail"]


async def test_home_shows_the_latest_news(served):
    _runtime, client = served
    body = await get_json(client, "/v1/home?lat=50.63&lon=3.06")
    news = body["data"]["news"]
    assert len(news["items"]) == 3 and news["unavailable"] is None
    assert news["items"][0]["source"] == "blog"  # 2020: the newest of the four feeds


async def test_a_category_folds_the_same_for_lists_subscriptions_and_notices(upstream):
    """A label cut at 100 characters can end with a space: the list filter, the check of a
    subscribed category and the notices' topics all see the same folded key."""
    from aggregator.notify.topics import news_key
    from connectors.news.connector import INDEX_NAME, build_index

    long_label = "Été " + "x" * 95 + " suite"  # cut after the 100th character: a space
    kept = long_label[:100]
    assert kept.endswith(" ")
    body = feed("guardian.rss").replace(b">Donald Trump<", f">{long_label}<".encode(), 1)
    upstream.route("/guardian.rss", Reply(body=body))
    runtime = await loaded(upstream, ("guardian", "guardian.rss"))
    snapshot = runtime.live.snapshot("guardian")
    (item,) = [r for r in items(runtime, "guardian") if kept in r["categories"]]
    folded = "ete " + "x" * 95
    assert folded in runtime.live.index("guardian", INDEX_NAME, build_index).categories
    assert NewsConnector.topic_key(runtime.live, snapshot, "news_category", kept) == folded
    (notice,) = [n for n in NewsConnector.notices(snapshot) if n.subject == item["id"]]
    assert news_key(folded, None) in notice.topics
    assert news_key(folded, "guardian") in notice.topics
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        listed = await get_json(client, f"/v1/news?category={kept.strip()}")
        assert [i["id"] for i in listed["data"]] == [item["id"]]

"""An upstream answering every poll with new cookies cannot grow the fetcher's memory: feeds
need no cookies, and the shared client refuses them all."""

from __future__ import annotations

from upstream_server import Reply

from aggregator.fetch import Fetcher


async def test_set_cookie_floods_are_refused(upstream):
    replies = [
        Reply(body=b"ok", headers={"Set-Cookie": f"c{i}={'x' * 3000}; Path=/"}, conditional=False)
        for i in range(200)
    ]
    upstream.route("/feed", replies)
    async with Fetcher() as fetcher:
        for _ in range(200):
            result = await fetcher.fetch(upstream.url("/feed"), timeout=30, max_bytes=1000)
            assert result.body == b"ok"
        assert len(fetcher._client.cookies.jar) == 0
    # Nothing was sent back either: the upstream never saw a Cookie header.
    assert upstream.hits("/feed") == 200
    assert not any("Cookie" in request.headers for request in upstream.requests("/feed"))

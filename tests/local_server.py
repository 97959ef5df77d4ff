"""The plumbing every local server of the tests shares: a real aiohttp server on a free port of
127.0.0.1, started and stopped as an async context manager (or by ``start``/``close``).

A subclass only says what it serves (:meth:`LocalServer.add_routes`); the scripted upstream,
the Web Push service and the Google/FCM fakes are all such servers.
"""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LocalServer:
    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def start(self) -> None:
        app = web.Application()
        self.add_routes(app.router)
        # A short shutdown grace: handlers still waiting (a scripted delay) are cancelled.
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

"""Helpers shared by tests: build a real config and runtime from YAML text."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aggregator.config import BeffroiConfig, parse_config
from aggregator.registry import config_models, discover_connector_types
from aggregator.runtime import Runtime

CONNECTOR_TYPES = discover_connector_types()


def config_from(
    text: str, *, base_dir: Path | None = None, environ: dict | None = None
) -> BeffroiConfig:
    """A validated config from YAML text, with the installed connector types."""
    return parse_config(
        textwrap.dedent(text),
        filename="test.yaml",
        connector_types=config_models(CONNECTOR_TYPES),
        environ=environ or {},
        base_dir=base_dir,
    )


def runtime_from(text: str, **kwargs: object) -> Runtime:
    return Runtime(config_from(text, **kwargs), CONNECTOR_TYPES)  # type: ignore[arg-type]


async def eventually(condition: Callable[[], bool], *, within: float = 60.0) -> None:
    """Wait until ``condition()`` holds; fail with a clear message after ``within`` seconds.

    Not a timing assertion: the bound only stops a broken test from hanging.
    """
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)


async def sync_all(client: Any, path: str, query: str, token: str, limit: int) -> dict:
    """Every page of one sync of the list at ``path`` (``sync=start`` or a token): the changed
    records by id, the tombstones, the new token and how many pages it took; each page but
    the last has a cursor and no token."""
    changed: dict[str, dict] = {}
    removed: list[dict] = []
    cursor = ""
    pages = 0
    while True:
        response = await client.get(f"{path}?sync={token}&limit={limit}{query}{cursor}")
        assert response.status == 200, await response.text()
        body = await response.json()
        pages += 1
        for record in body["data"]["changed"]:
            changed[record["id"]] = record
        removed.extend(body["data"]["removed"])
        if body["meta"]["next_cursor"] is None:
            assert body["meta"]["sync_token"]
            return {
                "changed": changed,
                "removed": removed,
                "token": body["meta"]["sync_token"],
                "pages": pages,
            }
        assert body["meta"]["sync_token"] is None
        cursor = f"&cursor={body['meta']['next_cursor']}"

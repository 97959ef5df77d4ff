"""Helpers shared by tests: build a real config and runtime from YAML text."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

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


async def eventually(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    """Wait until ``condition()`` holds; fail with a clear message after ``within`` seconds.

    Not a timing assertion: the bound only stops a broken test from hanging.
    """
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)

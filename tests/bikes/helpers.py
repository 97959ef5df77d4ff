"""Shared by the bike, car-park and Lille config tests: connector types and fixtures."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

from support import CONNECTOR_TYPES

from aggregator.config import BeffroiConfig, parse_config
from aggregator.connector import Connector
from aggregator.registry import config_models
from aggregator.runtime import Runtime
from connectors.bikes import BikeStationsConnector, GbfsConnector
from connectors.parkings import ParkingsConnector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "bikes"

# Registered through their entry points, like every connector type.
TYPES: dict[str, type[Connector]] = CONNECTOR_TYPES
assert TYPES["gbfs"] is GbfsConnector and TYPES["bike_stations"] is BikeStationsConnector
assert TYPES["parkings"] is ParkingsConnector


def fixture(name: str) -> bytes:
    """A fixture's bytes; ``.gz`` files are served as their (original) decompressed content."""
    data = (FIXTURES / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def config_from(text: str, *, base_dir: Path | None = None) -> BeffroiConfig:
    return parse_config(
        textwrap.dedent(text),
        filename="test.yaml",
        connector_types=config_models(TYPES),
        environ={},
        base_dir=base_dir,
    )


def runtime_from(text: str, *, base_dir: Path | None = None) -> Runtime:
    return Runtime(config_from(text, base_dir=base_dir), TYPES)

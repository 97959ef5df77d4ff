"""Every schema of /v1/openapi.json is typed the way client generators need (openapi_lint.py):
the whole document, whatever routes and connector types it gathers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from openapi_lint import schema_problems
from support import runtime_from

from aggregator.api.app import build_router
from aggregator.api.openapi import openapi_bytes

CONFIG_DIR = Path(__file__).parents[1] / "config"


@pytest.mark.parametrize(
    "config",
    [
        pytest.param("connectors: []", id="no-source"),
        pytest.param((CONFIG_DIR / "demo.yaml").read_text(), id="demo"),
    ],
)
def test_the_whole_document_is_typed(config: str) -> None:
    runtime = runtime_from(config, base_dir=CONFIG_DIR)
    document = orjson.loads(openapi_bytes(build_router(runtime), runtime))
    assert len(document["paths"]) > 20
    assert schema_problems(document) == []


def test_the_lint_names_each_breach() -> None:
    """Each rule catches what it is for (the document above must pass all of them)."""
    bad = {
        "Untyped": {"type": "object", "properties": {"x": {}}},
        "EmptyObject": {"type": "object"},
        "NoType": {"description": "anything"},
        "ArrayOfNothing": {"type": "object", "properties": {"list": {"type": "array"}}},
        "Mixed": {
            "type": ["array", "object", "null"],
            "items": {"type": "string"},
            "additionalProperties": {"type": "string"},
        },
        "OpenRecord": {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "additionalProperties": True,
        },
        "Extended": {"type": "object", "allOf": [{"$ref": "#/components/schemas/Base"}]},
        "FreeStatus": {"type": "object", "properties": {"status": {"type": "string"}}},
        "UntypedEnum": {"enum": ["a", "b"]},
        "Required": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
    }
    document = {
        "components": {"schemas": bad},
        "paths": {
            "/shapes": {
                "get": {
                    "parameters": [{"name": "p", "in": "query", "schema": {}}],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"type": "array"}},
                                "application/geo+json": {"schema": {"type": "object"}},
                            }
                        }
                    },
                }
            }
        },
    }
    problems = "\n".join(schema_problems(document))
    expected = [
        "Untyped/x: no schema",
        "EmptyObject: object without typed properties",
        "NoType: untyped schema",
        "ArrayOfNothing/list: array without items",
        "Mixed: type ['array', 'object', 'null'] mixes",
        "OpenRecord: additionalProperties without a schema",
        "Extended: allOf",
        "Extended: object without typed properties",
        "FreeStatus/status: a fixed vocabulary without its enum",
        "UntypedEnum: enum without a type",
        "Required: required 'b' is not among its properties",
        "GET /shapes parameter p: no schema",
        "GET /shapes 200 application/json: array without items",
        "GET /shapes 200 application/geo+json: object without typed properties",
        "GET /shapes 200: one operation, one body shape",
    ]
    for breach in expected:
        assert breach in problems, breach
    assert len(schema_problems(document)) == len(expected)

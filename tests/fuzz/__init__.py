"""Hostile-input suite: schemathesis on the OpenAPI document, hypothesis on parsers, bounds."""

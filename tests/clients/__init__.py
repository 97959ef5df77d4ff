"""Clients generated from /v1/openapi.json, checked against the demo server."""

"""Waste collection: the ``waste`` connector type and ``GET /v1/waste/collections``."""

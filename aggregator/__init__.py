"""Beffroi's core: configuration, scheduling, store, indexes and the HTTP API.

The core never imports a specific connector: connector types are found through the
``beffroi.connectors`` entry-point group (see :mod:`aggregator.registry`).
"""

__version__ = "0.2.0.dev0"

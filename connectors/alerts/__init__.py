"""Alerts read from documents other than GTFS-realtime (``mapped_alerts``)."""
